"""Near-duplicate detection (MinHash LSH, embeddings) and diversity figures."""

from __future__ import annotations

import numpy as np
import pytest

from dialc_runtime.quality.dedup import Item, find_duplicates, shingles
from dialc_runtime.quality.diversity import distinct_n, diversity, mean_pairwise_similarity

ORIGINAL = (
    "The customer is looking for a two-bedroom flat in Chaoyang close to the subway, with a "
    "monthly budget of at most 2,800 yuan, and would like to move in before the end of May."
)
NEAR = (
    "The customer is looking for a two-bedroom apartment in Chaoyang close to the subway, with "
    "a monthly budget of at most 2,800 yuan, and would like to move in before the end of May."
)
EXACT = (  # differs only in case, spacing and punctuation
    "  the customer is looking for a TWO-BEDROOM flat in Chaoyang close to the subway, with a "
    "monthly budget of at most 2,800 yuan and would like to move in before the end of May!"
)
DIFFERENT = (
    "The seller wants the transfer completed within thirty days and asks the buyer to arrange "
    "the mortgage approval letter from the bank before signing the contract."
)
ZH = "客户想在朝阳区地铁附近租一套两居室，月租预算不超过两千八百元，希望五月底之前入住。"
ZH_NEAR = "客户想在朝阳区地铁附近租一套两居室，月租预算不超过两千八百元，希望五月底以前入住。"
ZH_OTHER = "卖方希望三十天内完成过户，并请买方在签约前向银行申请贷款审批函。"


def verdicts(texts: list[str], **params: object) -> list[tuple[bool | None, str | None]]:
    items = [Item(f"r{i}", t) for i, t in enumerate(texts)]
    found = find_duplicates(items, {"threshold": 0.85, **params})
    return [(v.passed, v.extra.get("duplicate_of")) for v in found]


def test_exact_and_near_copies_are_caught_and_different_text_is_not() -> None:
    result = verdicts([ORIGINAL, EXACT, NEAR, DIFFERENT])
    assert result == [(True, None), (False, "r0"), (False, "r0"), (True, None)]


def test_reason_names_the_original() -> None:
    items = [Item("p-1", ORIGINAL), Item("p-2", NEAR)]
    second = find_duplicates(items, {"threshold": 0.85})[1]
    assert second.score == 0.0 and second.detail.startswith("near-duplicate of p-1 (jaccard 0.")


def test_chinese_uses_character_shingles() -> None:
    assert "朝阳" in shingles(ZH) and "朝阳区" not in shingles(ZH)
    assert verdicts([ZH, ZH_NEAR, ZH_OTHER]) == [(True, None), (False, "r0"), (True, None)]


def test_threshold_matters() -> None:
    assert verdicts([ORIGINAL, NEAR], threshold=0.99) == [(True, None), (True, None)]


def test_first_occurrence_wins_and_copies_point_to_the_original() -> None:
    result = verdicts([DIFFERENT, ORIGINAL, NEAR, ORIGINAL])
    assert result == [(True, None), (True, None), (False, "r1"), (False, "r1")]


def test_scopes_are_compared_separately() -> None:
    items = [Item("a", ORIGINAL, "d1"), Item("b", ORIGINAL, "d2"), Item("c", ORIGINAL, "d1")]
    found = find_duplicates(items, {"threshold": 0.85})
    assert [v.passed for v in found] == [True, True, False]


@pytest.mark.parametrize("method", ["minhash", "embedding"])
def test_best_of_n_siblings_are_alternatives_not_copies(method: str) -> None:
    """Candidates of one prompt (a group) never fail as copies of each other, but still of other prompts."""
    vectors = {ORIGINAL: [1.0, 0.0], EXACT: [1.0, 0.0], NEAR: [0.99, 0.141], DIFFERENT: [0.0, 1.0]}

    def embed(texts: list[str]) -> np.ndarray:
        rows = np.array([vectors[t] for t in texts])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    items = [Item("p1#0", ORIGINAL, "", "p1"), Item("p1#1", EXACT, "", "p1"), Item("p1#2", NEAR, "", "p1"),
             Item("p2#0", DIFFERENT, "", "p2"), Item("p2#1", NEAR, "", "p2"), Item("p3", ORIGINAL)]
    found = find_duplicates(items, {"method": method, "threshold": 0.85}, embed=embed)
    assert [v.passed for v in found] == [True, True, True, True, False, False]
    assert found[4].extra["duplicate_of"].startswith("p1#") and found[5].extra["duplicate_of"] == "p1#0"


def test_embedding_method_with_a_fake_encoder() -> None:
    vectors = {ORIGINAL: [1.0, 0.0], NEAR: [0.99, 0.141], DIFFERENT: [0.0, 1.0]}

    def embed(texts: list[str]) -> np.ndarray:
        rows = np.array([vectors[t] for t in texts])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    texts = {"a": ORIGINAL, "b": NEAR, "c": DIFFERENT, "z": ZH, "y": ZH}
    items = [Item(key, text) for key, text in texts.items()]
    found = find_duplicates(items, {"method": "embedding", "threshold": 0.9}, embed=embed)
    assert [v.passed for v in found] == [True, False, True, True, False]  # CJK by MinHash
    assert "cosine" in found[1].detail and "jaccard" in found[4].detail


@pytest.mark.slow
def test_embedding_method_with_the_packaged_minilm() -> None:
    paraphrase = (
        "The client wants a 2-bedroom apartment in Chaoyang near a subway station, paying no more "
        "than 2800 yuan per month, and hopes to move in before late May."
    )
    found = verdicts([ORIGINAL, paraphrase, DIFFERENT], method="embedding", threshold=0.8)
    assert found == [(True, None), (False, "r0"), (True, None)]
    # the same paraphrase is too far apart for MinHash: only the embedding sees it
    assert verdicts([ORIGINAL, paraphrase]) == [(True, None), (True, None)]


def test_diversity_figures() -> None:
    assert distinct_n(["a b c", "d e f"], 1) == 1.0
    assert distinct_n(["a b", "a b"], 2) == 0.5
    assert mean_pairwise_similarity([ORIGINAL, ORIGINAL]) == 1.0
    assert mean_pairwise_similarity([ORIGINAL, DIFFERENT]) < 0.1
    many = [f"text number {i} about {i % 7}" for i in range(60)]  # 1770 pairs: sampled
    assert mean_pairwise_similarity(many, seed=1) == mean_pairwise_similarity(many, seed=1)
    figures = diversity([ORIGINAL, NEAR, DIFFERENT])
    assert figures["texts"] == 3 and 0 < figures["distinct_2"] < 1

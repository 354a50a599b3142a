"""Texts in record order → one Verdict each: the first occurrence passes, later near-copies fail."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from dialc_runtime.quality.text import is_cjk_text, ngrams, normalise, tokens
from dialc_runtime.quality.verdict import Verdict

NUM_PERM = 128  # MinHash permutations: estimate error about 1/sqrt(128) ≈ 0.09
MINHASH_SEED = 1  # fixed: the same texts always give the same duplicates
WORD_N = 2  # word shingles: labels are short, and one changed word spoils n of the n-grams
CHAR_N = 2  # character shingles for CJK text (a CJK character carries about a word)
UNIQUE = Verdict(1.0, True, "unique")  # one object for every unique record (verdicts are frozen)


@dataclass(frozen=True, slots=True)
class Item:
    """One text to deduplicate; only items with the same scope are compared, and never two items of one
    non-empty group (the candidates of one prompt under best-of-N: alternatives, of which one is kept)."""

    id: str
    text: str
    scope: str = ""
    group: str = ""


def shingles(text: str, word_n: int = WORD_N, char_n: int = CHAR_N) -> set[str]:
    """Word n-grams for spaced scripts, character n-grams for CJK text."""
    if is_cjk_text(text):
        chars = list(re.sub(r"[\W_]+", "", normalise(text)))
        return {"".join(g) for g in ngrams(chars, char_n)}
    return {" ".join(g) for g in ngrams(tokens(text), word_n)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _fingerprint(text: str) -> str:
    """Equal for texts that differ only in case, width, spacing or punctuation."""
    return hashlib.sha256(" ".join(tokens(text)).encode()).hexdigest()


def _duplicate(original: str, similarity: float, how: str) -> Verdict:
    what = "exact duplicate" if similarity >= 1.0 else "near-duplicate"
    detail = f"{what} of {original} ({how} {similarity:.2f})"
    return Verdict(0.0, False, detail, {"duplicate_of": original})


def candidate_threshold(threshold: float) -> float:
    """LSH finds candidates a little below the threshold (MinHash estimates are noisy, and LSH
    cannot band above ~0.97); the exact Jaccard similarity then decides."""
    return min(0.9, max(0.05, threshold - 0.1))


@cache
def lsh_params(threshold: float) -> tuple[int, int]:
    """(bands, rows) of an LSH index at this threshold: datasketch integrates for them, so once per threshold."""
    from datasketch import MinHashLSH

    index = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    return index.b, index.r


@cache
def sketch_template() -> Any:
    """The MinHash permutations and scheme of (NUM_PERM, MINHASH_SEED), generated once, shared by every sketch."""
    from datasketch import MinHash

    template = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED)
    return template.permutations, template.scheme


class MinhashDeduper:
    """Items one at a time → their verdicts, against the originals seen so far (MinHash LSH over shingles; LSH
    candidates are confirmed with the exact Jaccard similarity). The index lives on disk
    (quality/minhash_index.py): memory holds the group of grouped originals only. Use it as a context manager."""

    def __init__(self, threshold: float = 0.85, word_n: int = WORD_N, char_n: int = CHAR_N) -> None:
        from dialc_runtime.quality.minhash_index import DiskIndex

        self.threshold, self.word_n, self.char_n = threshold, word_n, char_n
        self.perms, self.scheme = sketch_template()
        self.index = DiskIndex(*lsh_params(candidate_threshold(threshold)))
        self.groups: dict[str, str] = {}  # original id → its group, for grouped originals only
        self.n = 0

    def __enter__(self) -> MinhashDeduper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.index.close()

    def verdict(self, item: Item) -> Verdict:
        """The item's verdict; a unique item becomes an original the later ones are compared with."""
        from datasketch import MinHash

        n, index, groups = self.n, self.index, self.groups
        self.n += 1
        fingerprint = f"{item.scope}\0{_fingerprint(item.text)}"
        original = index.exact(fingerprint)
        if original is not None and item.group and groups.get(original) == item.group:
            return Verdict(1.0, True, f"unique (as its sibling {original})")
        if original is not None:
            return _duplicate(original, 1.0, "jaccard")
        grams = shingles(item.text, self.word_n, self.char_n)
        sketch = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, permutations=self.perms, scheme=self.scheme)
        sketch.update_batch([g.encode() for g in grams])
        digests = index.band_digests(item.scope, sketch.hashvalues)
        best, best_sim = "", 0.0
        for other_id, other_text in index.candidates(digests):
            if item.group and groups.get(other_id) == item.group:
                continue
            similarity = jaccard(grams, shingles(other_text, self.word_n, self.char_n))
            if similarity > best_sim:
                best, best_sim = other_id, similarity
        if best and best_sim >= self.threshold:
            return _duplicate(best, best_sim, "jaccard")
        index.insert(n, item.id, item.text, fingerprint, digests)
        if item.group:
            groups[item.id] = item.group
        return UNIQUE


def minhash_duplicates(
    items: Sequence[Item], threshold: float = 0.85, word_n: int = WORD_N, char_n: int = CHAR_N
) -> list[Verdict]:
    """MinhashDeduper over a list: one verdict per item, in order."""
    with MinhashDeduper(threshold, word_n, char_n) as deduper:
        return [deduper.verdict(item) for item in items]


Embedder = Callable[[list[str]], Any]  # texts → array (n, d) of L2-normalised vectors


def embedding_duplicates(
    items: Sequence[Item], threshold: float = 0.9, embed: Embedder | None = None
) -> list[Verdict]:
    """Cosine similarity of sentence embeddings against every earlier original in the same scope."""
    import numpy as np

    if embed is None:
        from dialc_runtime.quality.embed import embed as default_embed

        embed = default_embed
    vectors = np.asarray(embed([item.text for item in items])) if items else np.zeros((0, 1))
    kept: dict[str, list[int]] = {}
    members: dict[tuple[str, str], list[int]] = {}  # (scope, group) → its originals' indices
    verdicts: list[Verdict] = []
    for n, item in enumerate(items):
        earlier = kept.setdefault(item.scope, [])
        if earlier:
            sims = vectors[earlier] @ vectors[n]
            siblings = members.get((item.scope, item.group), []) if item.group else []
            if siblings:  # never compared with a sibling (siblings ⊂ earlier, both ascending)
                sims[np.searchsorted(earlier, siblings)] = -np.inf
            best = int(np.argmax(sims))
            if float(sims[best]) >= threshold:
                similarity = min(1.0, float(sims[best]))
                verdicts.append(_duplicate(items[earlier[best]].id, similarity, "cosine"))
                continue
        earlier.append(n)
        if item.group:
            members.setdefault((item.scope, item.group), []).append(n)
        verdicts.append(UNIQUE)
    return verdicts


def find_duplicates(
    items: Sequence[Item], params: dict[str, Any], embed: Embedder | None = None
) -> list[Verdict]:
    """`method`: minhash (default) or embedding (English model: CJK texts still go by MinHash)."""
    threshold = float(params.get("threshold", 0.85))
    word_n, char_n = int(params.get("ngram", WORD_N)), int(params.get("char_ngram", CHAR_N))
    if params.get("method", "minhash") != "embedding":
        return minhash_duplicates(items, threshold, word_n, char_n)
    cjk = [is_cjk_text(item.text) for item in items]
    spaced = [item for item, c in zip(items, cjk, strict=True) if not c]
    chars = [item for item, c in zip(items, cjk, strict=True) if c]
    by_embedding = iter(embedding_duplicates(spaced, threshold, embed))
    by_minhash = iter(minhash_duplicates(chars, threshold, word_n, char_n))
    return [next(by_minhash) if c else next(by_embedding) for c in cjk]

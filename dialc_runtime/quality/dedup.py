"""Texts in record order → one Verdict each: the first occurrence passes, later near-copies fail."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dialc_runtime.quality.text import is_cjk_text, ngrams, normalise, tokens
from dialc_runtime.quality.verdict import Verdict

NUM_PERM = 128  # MinHash permutations: estimate error about 1/sqrt(128) ≈ 0.09
MINHASH_SEED = 1  # fixed: the same texts always give the same duplicates
WORD_N = 2  # word shingles: labels are short, and one changed word spoils n of the n-grams
CHAR_N = 2  # character shingles for CJK text (a CJK character carries about a word)


@dataclass(frozen=True)
class Item:
    """One text to deduplicate; only items with the same scope are compared."""

    id: str
    text: str
    scope: str = ""


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


def minhash_duplicates(
    items: Sequence[Item], threshold: float = 0.85, word_n: int = WORD_N, char_n: int = CHAR_N
) -> list[Verdict]:
    """MinHash LSH over shingles; LSH candidates are confirmed with the exact Jaccard similarity."""
    from datasketch import MinHash, MinHashLSH

    indexes: dict[str, Any] = {}
    originals: dict[str, tuple[set[str], str]] = {}  # key → (shingles, record id)
    exact: dict[tuple[str, str], str] = {}
    verdicts: list[Verdict] = []
    for n, item in enumerate(items):
        fingerprint = (item.scope, _fingerprint(item.text))
        if fingerprint in exact:
            verdicts.append(_duplicate(exact[fingerprint], 1.0, "jaccard"))
            continue
        grams = shingles(item.text, word_n, char_n)
        sketch = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED)
        sketch.update_batch([g.encode() for g in grams])
        lsh = indexes.get(item.scope) or indexes.setdefault(
            item.scope, MinHashLSH(threshold=candidate_threshold(threshold), num_perm=NUM_PERM)
        )
        best, best_sim = "", 0.0
        for key in sorted(lsh.query(sketch)):
            similarity = jaccard(grams, originals[key][0])
            if similarity > best_sim:
                best, best_sim = originals[key][1], similarity
        if best and best_sim >= threshold:
            verdicts.append(_duplicate(best, best_sim, "jaccard"))
            continue
        key = f"{n:09d}"  # ids may repeat across scopes; the LSH key must not
        lsh.insert(key, sketch)
        originals[key] = (grams, item.id)
        exact[fingerprint] = item.id
        verdicts.append(Verdict(1.0, True, "unique"))
    return verdicts


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
    verdicts: list[Verdict] = []
    for n, item in enumerate(items):
        earlier = kept.setdefault(item.scope, [])
        if earlier:
            sims = vectors[earlier] @ vectors[n]
            best = int(np.argmax(sims))
            if float(sims[best]) >= threshold:
                similarity = min(1.0, float(sims[best]))
                verdicts.append(_duplicate(items[earlier[best]].id, similarity, "cosine"))
                continue
        earlier.append(n)
        verdicts.append(Verdict(1.0, True, "unique"))
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

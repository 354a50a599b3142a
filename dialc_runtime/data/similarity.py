"""Two short texts → a similarity in [0, 1] (word / CJK-character shingle Jaccard), for task dedup."""

from __future__ import annotations

from dialc_runtime.quality.dedup import jaccard, shingles


def similarity(a: str, b: str) -> float:
    return jaccard(shingles(a, word_n=1, char_n=2), shingles(b, word_n=1, char_n=2))


def is_near_copy(text: str, others: list[str], threshold: float) -> str | None:
    """The first of `others` at least `threshold` similar to `text`, or None."""
    for other in others:
        if similarity(text, other) >= threshold:
            return other
    return None

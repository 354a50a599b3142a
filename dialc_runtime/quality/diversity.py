"""Texts → diversity figures: distinct-1/distinct-2 and the mean pairwise similarity (sampled)."""

from __future__ import annotations

import random
from typing import Any

from dialc_runtime.quality.dedup import jaccard, shingles
from dialc_runtime.quality.text import ngrams, tokens

MAX_PAIRS = 500  # pairs sampled for the mean similarity: O(n²) pairs would not scale


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams / all n-grams across the texts (1.0 = nothing repeats); holds the distinct ones only."""
    distinct: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        grams = ngrams(tokens(text), n)
        total += len(grams)
        distinct.update(grams)
    return len(distinct) / total if total else 0.0


def mean_pairwise_similarity(texts: list[str], seed: int = 0, max_pairs: int = MAX_PAIRS) -> float:
    """Mean Jaccard similarity of shingle sets over (a seeded sample of) all pairs."""
    n = len(texts)
    if n < 2:
        return 0.0
    total = n * (n - 1) // 2
    if total <= max_pairs:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    else:
        rng = random.Random(seed)
        pairs = []
        for _ in range(max_pairs):
            i, j = sorted(rng.sample(range(n), 2))
            pairs.append((i, j))
    cache: dict[int, set[str]] = {}

    def grams(i: int) -> set[str]:
        if i not in cache:
            cache[i] = shingles(texts[i], 2, 2)
        return cache[i]

    return sum(jaccard(grams(i), grams(j)) for i, j in pairs) / len(pairs)


def diversity(texts: list[str], seed: int = 0) -> dict[str, Any]:
    """The figures a report shows next to a dedup dimension."""
    return {
        "texts": len(texts),
        "distinct_1": round(distinct_n(texts, 1), 4),
        "distinct_2": round(distinct_n(texts, 2), 4),
        "mean_pairwise_similarity": round(mean_pairwise_similarity(texts, seed), 4),
    }

"""Texts → diversity figures: distinct-1/distinct-2 and the mean pairwise similarity (sampled)."""

from __future__ import annotations

import random
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dialc_runtime.quality.dedup import jaccard, shingles
from dialc_runtime.quality.text import ngrams, tokens

MAX_PAIRS = 500  # pairs sampled for the mean similarity: O(n²) pairs would not scale


class NgramCount:
    """Distinct and total n-grams of texts as they come (holds the distinct ones only)."""

    def __init__(self, n: int) -> None:
        self.n, self.total = n, 0
        self.distinct: set[tuple[str, ...]] = set()

    def add(self, words: list[str]) -> None:
        grams = ngrams(words, self.n)
        self.total += len(grams)
        self.distinct.update(grams)

    def ratio(self) -> float:
        """Distinct n-grams / all n-grams (1.0 = nothing repeats)."""
        return len(self.distinct) / self.total if self.total else 0.0


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams / all n-grams across the texts (1.0 = nothing repeats); holds the distinct ones only."""
    count = NgramCount(n)
    for text in texts:
        count.add(tokens(text))
    return count.ratio()


def mean_pairwise_similarity(texts: Sequence[str], seed: int = 0, max_pairs: int = MAX_PAIRS) -> float:
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
    return _figures(texts, distinct_n(texts, 1), distinct_n(texts, 2), seed)


def _figures(texts: Sequence[str], distinct_1: float, distinct_2: float, seed: int) -> dict[str, Any]:
    return {
        "texts": len(texts),
        "distinct_1": round(distinct_1, 4),
        "distinct_2": round(distinct_2, 4),
        "mean_pairwise_similarity": round(mean_pairwise_similarity(texts, seed), 4),
    }


class SpooledTexts(Sequence[str]):
    """Texts appended one at a time and read back by position from a temporary SQLite file: the sampled
    pairs of mean_pairwise_similarity are drawn once all texts are known, without holding them in memory."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="dialc-texts-")
        self.db = sqlite3.connect(Path(self._dir.name) / "texts.sqlite", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE texts (n INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        self.db.execute("BEGIN")
        self.n = 0

    def append(self, text: str) -> None:
        self.db.execute("INSERT INTO texts VALUES (?, ?)", (self.n, text))
        self.n += 1

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if not isinstance(i, int) or not 0 <= i < self.n:
            raise IndexError(i)
        return self.db.execute("SELECT text FROM texts WHERE n = ?", (i,)).fetchone()[0]

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()


class DiversityTally:
    """diversity() over texts that stream by: distinct n-grams counted as they come, the texts spooled to disk
    for the sampled pairs. `figures()` once every text is added; the same figures as diversity(texts)."""

    def __init__(self) -> None:
        self.texts = SpooledTexts()
        self.unigrams, self.bigrams = NgramCount(1), NgramCount(2)

    def add(self, text: str) -> None:
        self.texts.append(text)
        words = tokens(text)
        self.unigrams.add(words)
        self.bigrams.add(words)

    def figures(self, seed: int = 0) -> dict[str, Any]:
        try:
            return _figures(self.texts, self.unigrams.ratio(), self.bigrams.ratio(), seed)
        finally:
            self.close()

    def close(self) -> None:
        """Remove the spooled texts (figures() does, once computed)."""
        self.texts.close()

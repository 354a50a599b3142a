"""Streamed dedup and diversity give exactly what the held (list) versions give."""

from __future__ import annotations

import random
from typing import Any

from dialc_runtime.quality.diversity import DiversityTally, diversity
from dialc_runtime.steps.score import _dedup_held, score_dedup

WORDS = ["flat", "station", "budget", "viewing", "deposit", "parking", "garden", "lease", "quiet",
         "balcony", "kitchen", "school"]


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    base = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(max(1, n // 3))]
    return [rng.choice(base) if rng.random() < 0.4 else " ".join(rng.choice(WORDS) for _ in range(6))
            for _ in range(n)]


def test_the_diversity_tally_matches_diversity_over_a_list() -> None:
    for n in (0, 1, 7, 30, 400):  # all pairs (n ≤ 32) and sampled pairs
        texts = _texts(n, n)
        tally = DiversityTally()
        for text in texts:
            tally.add(text)
        assert tally.figures() == diversity(texts)


def test_streamed_minhash_dedup_gives_the_held_verdicts_and_figures() -> None:
    rng = random.Random(5)
    labels: list[dict[str, Any]] = []
    for i, text in enumerate(_texts(300, 9)):
        kind = rng.choice(["text", "choice"])
        labels.append({"id": f"p{i:04d}", "ok": rng.random() > 0.05, "dialogue_id": f"d{i % 7}",
                       "output": {"kind": kind}, "answer": text, "value": text})
    dim = {"name": "novel", "method": "minhash", "threshold": 0.8}
    streamed, figures = score_dedup(iter(labels), dim)
    got = list(streamed)
    held_figures: dict[str, Any] = {}
    held = list(_dedup_held(labels, dim, held_figures))
    assert [(k, v.record(k)) for k, v in got] == [(k, v.record(k)) for k, v in held]
    assert figures == held_figures and figures["texts"] == sum(1 for r in labels if r["ok"])
    assert any(v.passed is False for _, v in got)  # there were duplicates to find

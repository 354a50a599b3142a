"""Draws held as columns: read back, shuffled and compared exactly as a list of Draw objects would be."""

from __future__ import annotations

import random

import pytest

from dialc_runtime.data.sampling import Draw, Draws


def random_draws(r: random.Random, n: int) -> list[Draw]:
    axes = [(("tone", r.choice(["formal", "terse"])), ("detail", r.choice(["brief", "thorough"]))) for _ in range(n)]
    return [
        Draw(
            f"d-{r.randint(0, 400):05d}",
            r.choice(["rental", "purchase"]),
            r.choice(["t1", "t2", "t3"]),
            r.choice(["analysis", "summarization"]),
            r.choice([(), axes[i]]),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("seed", range(4))
def test_draws_as_columns_read_back_and_shuffle_as_a_list_does(seed: int) -> None:
    r = random.Random(seed)
    plain = random_draws(r, 700)  # > 256 distinct dialogues: the codes widen
    draws = Draws()
    draws.extend(plain[:300])
    draws.extend(plain[300:])
    assert len(draws) == len(plain) and list(draws) == plain and draws == plain
    assert draws[-1] == plain[-1] and draws[5:9] == plain[5:9]
    random.Random(seed).shuffle(plain)
    draws.shuffle(random.Random(seed))
    assert list(draws) == plain and draws == plain
    assert draws != plain[:-1] and draws != [*plain[:-1], Draw("x", "y", "z", "w", ())]
    with pytest.raises(IndexError):
        draws[len(plain)]

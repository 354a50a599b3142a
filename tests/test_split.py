"""dialc_runtime.data.split: dialogue id → train / hold-out, stable across runs, machines and versions."""

from __future__ import annotations

import math

import pytest

from dialc_runtime.data.split import holdout_point, is_holdout

IDS = [f"dlg-{i}" for i in range(20_000)]


def held(fraction: float, seed: int, ids: list[str] = IDS) -> set[str]:
    return {d for d in ids if is_holdout(d, fraction, seed)}


def test_the_split_is_pinned_across_versions() -> None:
    """A changed hash would silently move dialogues between train and hold-out: evaluations of
    adapters trained before the change would then be scored on their own training data."""
    ids = [f"re-{i:04d}" for i in range(1, 21)]
    assert sorted(held(0.3, 42, ids)) == ["re-0002", "re-0007", "re-0008", "re-0010", "re-0011", "re-0012",
                                          "re-0016", "re-0017"]
    assert holdout_point("re-0001", 42) == pytest.approx(0.5382248305142256, abs=1e-15)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.2, 0.5, 0.9])
def test_the_held_out_share_is_close_to_the_fraction(fraction: float) -> None:
    share = len(held(fraction, 7)) / len(IDS)
    sigma = math.sqrt(fraction * (1 - fraction) / len(IDS))
    assert abs(share - fraction) < 4 * sigma  # binomial: fails by chance about once in 16 000


def test_points_are_uniform_over_the_unit_interval() -> None:
    points = [holdout_point(d, 3) for d in IDS]
    assert all(0.0 <= p < 1.0 for p in points)
    per_decile = [0] * 10
    for p in points:
        per_decile[int(p * 10)] += 1
    expected = len(IDS) / 10
    assert all(abs(n - expected) < 5 * math.sqrt(expected) for n in per_decile), per_decile


def test_the_seed_reshuffles_independently() -> None:
    a, b = held(0.2, 1), held(0.2, 2)
    assert a != b
    overlap = len(a & b) / len(IDS)  # independent splits overlap in about fraction² of the ids
    assert abs(overlap - 0.04) < 0.01


def test_growing_the_fraction_only_moves_dialogues_into_the_hold_out() -> None:
    smaller, bigger = held(0.1, 42), held(0.2, 42)
    assert smaller < bigger


def test_the_decision_depends_on_the_id_alone() -> None:
    """Records of one dialogue are all on the same side, whichever order they are seen in."""
    first = [is_holdout(d, 0.3, 5) for d in IDS[:500]]
    again = [is_holdout(d, 0.3, 5) for d in reversed(IDS[:500])]
    assert first == again[::-1]


def test_fraction_limits() -> None:
    assert not held(0.0, 1, IDS[:1000])
    assert held(1.0, 1, IDS[:1000]) == set(IDS[:1000])
    for bad in (-0.01, 1.01, math.nan):
        with pytest.raises(ValueError, match="hold-out fraction must be in"):
            is_holdout("x", bad, 0)

"""dialc_runtime.data.sampling arithmetic: weights → exact integer counts per cell, within capacities and quotas.

(draw_prompts end to end, its balance and reproducibility, is tested in test_data_steps.py.)
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dialc.mix import allocate, cell_weights, largest_remainder
from dialc_runtime.data.sampling import declared_weights

Cell = tuple[str, str]
weights_st = st.dictionaries(st.sampled_from("abcdefgh"), st.floats(0.01, 100), min_size=1, max_size=8)
FAST = settings(max_examples=200, deadline=None)


@FAST
@given(weights_st, st.integers(1, 10_000))
def test_largest_remainder_sums_exactly_and_stays_within_one_of_the_exact_share(
    weights: dict[str, float], total: int
) -> None:
    counts = largest_remainder(weights, total)
    assert sum(counts.values()) == total
    mass = sum(weights.values())
    for k, w in weights.items():
        assert abs(counts[k] - total * w / mass) < 1


def test_largest_remainder_breaks_ties_by_key_not_by_chance() -> None:
    assert largest_remainder({"b": 1, "a": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainder({"a": 2, "b": 1}, 0) == {"a": 0, "b": 0}
    assert largest_remainder({"a": 0, "b": 0}, 5) == {"a": 0, "b": 0}  # nothing to share by


def cells_st() -> st.SearchStrategy[tuple[dict[Cell, float], dict[Cell, int]]]:
    keys = st.lists(st.tuples(st.sampled_from("rbs"), st.sampled_from("xyz")), min_size=1, max_size=9, unique=True)
    return keys.flatmap(lambda ks: st.tuples(
        st.fixed_dictionaries({k: st.floats(0.01, 10) for k in ks}),
        st.fixed_dictionaries({k: st.integers(0, 50) for k in ks}),
    ))


@FAST
@given(cells_st(), st.integers(1, 400))
def test_allocation_fills_up_to_count_without_exceeding_any_capacity(
    cells: tuple[dict[Cell, float], dict[Cell, int]], count: int
) -> None:
    weights, capacity = cells
    alloc = allocate(weights, capacity, count, 0)
    assert all(0 <= alloc[c] <= capacity[c] for c in weights)
    assert sum(alloc.values()) == min(count, sum(capacity.values()))  # a full cell passes its share on


@FAST
@given(cells_st(), st.integers(1, 400), st.integers(0, 10))
def test_min_per_never_exceeds_count_or_a_capacity(cells: tuple[dict[Cell, float], dict[Cell, int]], count: int,
                                                   min_per: int) -> None:
    weights, capacity = cells
    alloc = allocate(weights, capacity, count, min_per, (0, 1))
    assert sum(alloc.values()) == min(count, sum(capacity.values()))  # quotas move prompts, never add them
    assert all(0 <= alloc[c] <= capacity[c] for c in weights)
    if any(min_per * len({c[k] for c in weights}) > count for k in (0, 1)):
        return  # an impossible minimum: validate and the sample step refuse it before allocating
    for value in {c[0] for c in weights}:  # the first key's minimum holds wherever capacity allows
        room = sum(capacity[c] for c in weights if c[0] == value)
        got = sum(n for c, n in alloc.items() if c[0] == value)
        assert got >= min(min_per, room)


def test_a_full_cell_passes_its_share_to_the_others_by_weight() -> None:
    weights = {("s", "x"): 1.0, ("s", "y"): 3.0, ("s", "z"): 1.0}
    capacity = {("s", "x"): 100, ("s", "y"): 2, ("s", "z"): 100}
    assert allocate(weights, capacity, 10, 0) == {("s", "x"): 4, ("s", "y"): 2, ("s", "z"): 4}


def test_cell_weights_by_dialogue_share_or_declared_scenario_weights() -> None:
    dialogues = [{"scenario": "rent"}, {"scenario": "rent"}, {"scenario": "buy"}]
    tasks: list[dict[str, Any]] = [{"category": "extract", "weight": 2}, {"category": "reply", "scenarios": ["buy"]}]
    # not balanced on scenario: a scenario weighs what its dialogues do; tasks add up per category
    assert cell_weights(dialogues, tasks, {}, []) == {
        ("buy", "extract"): 2.0, ("buy", "reply"): 1.0, ("rent", "extract"): 4.0}
    # balanced: the declared scenario weights replace the dialogue counts
    balanced = cell_weights(dialogues, tasks, {"rent": 1, "buy": 3}, ["scenario"])
    assert balanced == {("buy", "extract"): 6.0, ("buy", "reply"): 3.0, ("rent", "extract"): 2.0}
    assert declared_weights(balanced, {}, "scenario") == {"buy": 9.0, "rent": 2.0}
    assert declared_weights(balanced, {}, "category") == {"extract": 8.0, "reply": 3.0}
    assert declared_weights(balanced, {"tone": {"formal": 2.0}}, "tone") == {"formal": 2.0}


def test_a_task_with_zero_weight_never_makes_a_cell() -> None:
    tasks: list[dict[str, Any]] = [{"category": "extract", "weight": 0}, {"category": "reply"}]
    assert cell_weights([{"scenario": "rent"}], tasks, {}, []) == {("rent", "reply"): 1.0}

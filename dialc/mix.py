"""Cell weights, capacities, count and min_per → prompts per (scenario, category) cell, and what a mix can hold.

The arithmetic of `sample`, shared by `validate` (when the corpus is readable) and the sample step, so
both say the same about a mix: counts proportional to the declared weights, never above a cell's
capacity (its distinct dialogue × task × expression combinations), at least `min_per` prompts per
value of each balance key, and never more than `count` in all.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

Cell = tuple[str, str]  # (scenario, category)
CELL_KEYS = ("scenario", "category")  # what each position of a cell is


def largest_remainder(weights: dict[Any, float], total: int) -> dict[Any, int]:
    """Integer counts proportional to weights that sum exactly to total (Hamilton's method)."""
    mass = sum(weights.values())
    if total <= 0 or mass <= 0:
        return {k: 0 for k in weights}
    exact = {k: total * w / mass for k, w in weights.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(counts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), str(k)))[:left]:
        counts[k] += 1
    return counts


def apportion(weights: dict[Any, float], total: int, minimum: int = 0) -> dict[Any, int]:
    """Counts proportional to weights summing to total, then each weighted value raised to `minimum`
    by taking from the most over-served value above it (the weights stay as they are where no minimum bites)."""
    counts = largest_remainder(weights, total)
    while True:
        short = [k for k in sorted(counts, key=str) if counts[k] < minimum and weights[k] > 0]
        donors = [k for k in counts if counts[k] > minimum and weights[k] > 0]
        if not short or not donors:
            return counts
        donor = max(donors, key=lambda k: (counts[k] / weights[k], str(k)))
        counts[donor] -= 1
        counts[short[0]] += 1


def cell_weights(dialogues: list[dict[str, Any]], tasks: list[dict[str, Any]], scenario_weights: dict[str, float],
                 balance: list[str]) -> dict[Cell, float]:
    """(scenario, category) → weight: declared scenario weight (if balanced on scenario, else its share of
    dialogues) × the category's total task weight among tasks applicable to that scenario."""
    per_scenario = Counter(d["scenario"] for d in dialogues)
    weights: dict[Cell, float] = {}
    for scenario, n in sorted(per_scenario.items()):
        s_weight = scenario_weights.get(scenario, 1.0) if "scenario" in balance and scenario_weights else float(n)
        for task in tasks:
            if task.get("scenarios") and scenario not in task["scenarios"]:
                continue
            key = (scenario, task["category"])
            weights[key] = weights.get(key, 0.0) + s_weight * float(task.get("weight", 1.0))
    return {k: w for k, w in weights.items() if w > 0}


def allocate(weights: dict[Cell, float], capacity: dict[Cell, int], count: int, min_per: int = 0,
             keys: tuple[int, ...] = ()) -> dict[Cell, int]:
    """Counts per cell summing to at most `count`: by weight, never above a cell's capacity (a full cell
    passes its share on), then at least `min_per` for each value of the balanced cell positions `keys`
    (0 = scenario, 1 = category), moved from cells whose values stay above it."""
    alloc = _fill(weights, capacity, count)
    if min_per > 0 and keys:
        _raise_minimums(alloc, weights, capacity, min_per, keys)
    return alloc


def _fill(weights: dict[Cell, float], capacity: dict[Cell, int], count: int) -> dict[Cell, int]:
    alloc = {c: 0 for c in weights}
    remaining = count
    while remaining > 0:
        open_cells = {c: w for c, w in weights.items() if alloc[c] < capacity[c]}
        if not open_cells:
            break
        moved = 0
        for cell, n in largest_remainder(open_cells, remaining).items():
            take = min(n, capacity[cell] - alloc[cell])
            alloc[cell] += take
            moved += take
        remaining -= moved
        if moved == 0:
            break
    return alloc


def _totals(alloc: dict[Cell, int], index: int) -> Counter[str]:
    totals: Counter[str] = Counter()
    for cell, n in alloc.items():
        totals[cell[index]] += n
    return totals


def _raise_minimums(alloc: dict[Cell, int], weights: dict[Cell, float], capacity: dict[Cell, int],
                    min_per: int, keys: tuple[int, ...]) -> None:
    """Move one prompt at a time into a value below `min_per`, from a cell whose values all stay at or
    above it, until every value has its minimum or nothing can move (capacity or count too small)."""
    while True:
        totals = {k: _totals(alloc, k) for k in keys}
        short = [(k, v) for k in keys for v in sorted({c[k] for c in weights}) if totals[k][v] < min_per]
        if not any(_move_one(alloc, weights, capacity, totals, min_per, k, v) for k, v in short):
            return  # each move lowers the total shortfall by one, so this ends


def _move_one(alloc: dict[Cell, int], weights: dict[Cell, float], capacity: dict[Cell, int],
              totals: dict[int, Counter[str]], min_per: int, index: int, value: str) -> bool:
    """One prompt into the most under-served cell of `value`, from the most over-served cell that keeps
    every value at or above `min_per` (sharing the receiver's value on a key leaves that total as it is)."""
    receivers = [c for c in weights if c[index] == value and alloc[c] < capacity[c]]
    for receiver in sorted(receivers, key=lambda c: (-weights[c] / (alloc[c] + 1), c)):
        donors = [c for c in weights if alloc[c] > 0 and c[index] != value
                  and all(c[k] == receiver[k] or totals[k][c[k]] > min_per for k in totals)]
        if donors:
            donor = max(donors, key=lambda c: (alloc[c] / weights[c], c))
            alloc[donor] -= 1
            alloc[receiver] += 1
            return True
    return False


def holdable_count(weights: dict[Cell, float], capacity: dict[Cell, int]) -> int:
    """The largest count whose proportional share fits every cell's capacity (the declared mix holds)."""
    mass = sum(weights.values())
    if mass <= 0:
        return 0
    n = min(math.floor(capacity[c] * mass / w) for c, w in weights.items()) + len(weights)
    while n > 0 and any(k > capacity[c] for c, k in largest_remainder(weights, n).items()):
        n -= 1
    return n


def short_cells(weights: dict[Cell, float], capacity: dict[Cell, int], count: int) -> list[tuple[Cell, int, int]]:
    """(cell, its share of count, its capacity) for each cell that cannot hold its share."""
    share = largest_remainder(weights, count)
    return [(c, share[c], capacity[c]) for c in sorted(weights) if share[c] > capacity[c]]


def minimum_shortfall(values: dict[str, int], count: int, min_per: int) -> str | None:
    """Why `min_per` prompts per value of each balance key cannot fit in `count` (None when they can)."""
    for key, n in values.items():
        if min_per * n > count:
            return (f"min_per = {min_per} for each of the {n} {key} values needs {min_per * n} prompts, "
                    f"but count is {count}")
    return None

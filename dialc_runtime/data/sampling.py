"""Dialogues × tasks × expression axes + weights → production-prompt draws, balanced and reproducible."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dialc.plan import SampleParams
from dialc_runtime.data.seeds import rng

MAX_TRIES = 50  # redraws per prompt before a cell is considered exhausted


@dataclass(frozen=True)
class Draw:
    """One production prompt's ingredients."""

    dialogue: str  # dialogue id
    scenario: str
    task: str  # task id
    category: str
    expression: tuple[tuple[str, str], ...]  # (axis, value) pairs in axis order


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


def cell_weights(dialogues: list[dict[str, Any]], tasks: list[dict[str, Any]], scenario_weights: dict[str, float],
                 balance: list[str]) -> dict[tuple[str, str], float]:
    """(scenario, category) → weight: declared scenario weight (if balanced on scenario, else its share of
    dialogues) × the category's total task weight among tasks applicable to that scenario."""
    per_scenario = Counter(d["scenario"] for d in dialogues)
    weights: dict[tuple[str, str], float] = {}
    for scenario, n in sorted(per_scenario.items()):
        s_weight = scenario_weights.get(scenario, 1.0) if "scenario" in balance and scenario_weights else float(n)
        for task in tasks:
            if task.get("scenarios") and scenario not in task["scenarios"]:
                continue
            key = (scenario, task["category"])
            weights[key] = weights.get(key, 0.0) + s_weight * float(task.get("weight", 1.0))
    return {k: w for k, w in weights.items() if w > 0}


def allocate(weights: dict[tuple[str, str], float], capacity: dict[tuple[str, str], int], count: int,
             min_per: int) -> dict[tuple[str, str], int]:
    """Counts per cell: quotas first, the rest by weight, never above a cell's capacity."""
    alloc = {c: min(min_per, capacity[c]) for c in weights}
    remaining = count - sum(alloc.values())
    while remaining > 0:
        open_cells = {c: w for c, w in weights.items() if alloc[c] < capacity[c]}
        if not open_cells:
            break
        extra = largest_remainder(open_cells, remaining)
        moved = 0
        for cell, n in extra.items():
            take = min(n, capacity[cell] - alloc[cell])
            alloc[cell] += take
            moved += take
        remaining -= moved
        if moved == 0:
            break
    return alloc


def draw_prompts(dialogues: list[dict[str, Any]], tasks: list[dict[str, Any]], axes: dict[str, dict[str, float]],
                 params: SampleParams, seed: int) -> list[Draw]:
    """All draws, without replacement of (dialogue, task, expression), shuffled into a stable order."""
    balance = list(params.balance)
    scenario_weights = {k: v.weight for k, v in params.scenarios.items()}
    weights = cell_weights(dialogues, tasks, scenario_weights, balance)
    by_scenario: dict[str, list[str]] = {}
    for d in dialogues:
        by_scenario.setdefault(d["scenario"], []).append(d["id"])
    combos = math.prod(len(v) for v in axes.values()) if axes else 1
    capacity = {c: len(by_scenario[c[0]]) * _applicable(tasks, *c) * combos for c in weights}
    alloc = allocate(weights, capacity, params.count, params.min_per)
    fixed = _balanced_axis_values(axes, [a for a in balance if a in axes], sum(alloc.values()), seed)
    draws: list[Draw] = []
    for cell in sorted(alloc):
        slots, fixed = fixed[:alloc[cell]], fixed[alloc[cell]:]
        draws.extend(_draw_cell(cell, slots, by_scenario[cell[0]], tasks, axes, seed))
    order = rng(seed, "order")
    order.shuffle(draws)
    return draws


def _applicable(tasks: list[dict[str, Any]], scenario: str, category: str) -> int:
    return sum(1 for t in tasks if t["category"] == category and (not t.get("scenarios") or scenario in t["scenarios"]))


def _draw_cell(cell: tuple[str, str], slots: list[dict[str, str]], dialogue_ids: list[str],
               tasks: list[dict[str, Any]], axes: dict[str, dict[str, float]], seed: int) -> list[Draw]:
    """len(slots) distinct draws; a slot fixes the values of the balanced axes for its draw."""
    scenario, category = cell
    pool = [t for t in tasks if t["category"] == category and (not t.get("scenarios") or scenario in t["scenarios"])]
    task_weights = [float(t.get("weight", 1.0)) or 1e-9 for t in pool]
    r = rng(seed, "cell", scenario, category)
    seen: set[Draw] = set()
    out: list[Draw] = []
    for slot in slots:
        draw: Draw | None = None
        for _ in range(MAX_TRIES):
            task = r.choices(pool, weights=task_weights)[0]
            expression = tuple((axis, slot[axis] if axis in slot else r.choices(list(v), weights=list(v.values()))[0])
                               for axis, v in axes.items())
            draw = Draw(r.choice(dialogue_ids), scenario, task["id"], category, expression)
            if draw not in seen:
                break
        else:
            draw = _first_unseen(seen, dialogue_ids, pool, axes, slot, scenario, category)
            if draw is None:  # this slot's fixed axis values are used up here: relax them
                draw = _first_unseen(seen, dialogue_ids, pool, axes, {}, scenario, category)
        if draw is None:
            break  # the cell is exhausted
        seen.add(draw)
        out.append(draw)
    return out


def _first_unseen(seen: set[Draw], dialogue_ids: list[str], pool: list[dict[str, Any]],
                  axes: dict[str, dict[str, float]], slot: dict[str, str], scenario: str,
                  category: str) -> Draw | None:
    """Exhaustive fallback when random redraws keep colliding (a nearly full cell)."""
    values = [[(a, slot[a])] if a in slot else [(a, v) for v in vals] for a, vals in axes.items()]
    for d, t in itertools.product(dialogue_ids, pool):
        for expr in itertools.product(*values):
            draw = Draw(d, scenario, t["id"], category, tuple(expr))
            if draw not in seen:
                return draw
    return None


def _balanced_axis_values(axes: dict[str, dict[str, float]], balanced: list[str], total: int,
                          seed: int) -> list[dict[str, str]]:
    """One slot per draw fixing each balanced axis, counts exactly proportional to the weights."""
    slots: list[dict[str, str]] = [{} for _ in range(total)]
    for axis in balanced:
        counts = largest_remainder(axes[axis], total)
        values = [v for v, n in sorted(counts.items()) for _ in range(n)]
        rng(seed, "axis", axis).shuffle(values)
        for slot, value in zip(slots, values, strict=True):
            slot[axis] = value
    return slots


def balance_report(draws: list[Draw], weights: dict[str, float], key: str) -> dict[str, Any]:
    """Declared vs achieved proportions of one key and the chi-square goodness-of-fit p-value."""
    from scipy.stats import chisquare

    achieved = Counter(_key_of(d, key) for d in draws)
    names = sorted(set(weights) | set(achieved))
    mass = sum(weights.get(n, 0.0) for n in names) or 1.0
    total = len(draws)
    expected = [total * weights.get(n, 0.0) / mass for n in names]
    observed = [achieved.get(n, 0) for n in names]
    usable = [(o, e) for o, e in zip(observed, expected, strict=True) if e > 0]
    p: float | None = None
    if len(usable) > 1 and sum(o for o, _ in usable) > 0:
        scale = sum(o for o, _ in usable) / sum(e for _, e in usable)  # chisquare needs equal sums
        p = float(chisquare([o for o, _ in usable], [e * scale for _, e in usable]).pvalue)
    return {"declared": {n: round(weights.get(n, 0.0) / mass, 4) for n in names},
            "achieved": {n: round(achieved.get(n, 0) / total, 4) if total else 0 for n in names},
            "p_value": None if p is None or math.isnan(p) else round(p, 4)}


def declared_weights(cells: dict[tuple[str, str], float], axes: dict[str, dict[str, float]],
                     key: str) -> dict[str, float]:
    """The proportions a balance key should show, from the cell weights (or the axis weights)."""
    if key in ("scenario", "category"):
        index = 0 if key == "scenario" else 1
        totals: dict[str, float] = {}
        for cell, w in cells.items():
            totals[cell[index]] = totals.get(cell[index], 0.0) + w
        return totals
    return dict(axes.get(key, {}))


def _key_of(draw: Draw, key: str) -> str:
    if key == "scenario":
        return draw.scenario
    if key == "category":
        return draw.category
    return dict(draw.expression).get(key, "")

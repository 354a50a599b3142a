"""Dialogues × tasks × expression axes + weights → production-prompt draws, balanced and reproducible."""

from __future__ import annotations

import itertools
import math
import random
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from dialc.mix import CELL_KEYS, Cell, allocate, apportion, cell_weights
from dialc.plan import SampleParams
from dialc_runtime.data.seeds import rng
from dialc_runtime.quality.columns import Column

MAX_TRIES = 50  # redraws per prompt before a cell is considered exhausted


@dataclass(frozen=True, slots=True)
class Draw:
    """One production prompt's ingredients (the sample step holds them as columns: Draws)."""

    dialogue: str  # dialogue id
    scenario: str
    task: str  # task id
    category: str
    expression: tuple[tuple[str, str], ...]  # (axis, value) pairs in axis order


def cell_capacity(dialogues: list[dict[str, Any]], tasks: list[dict[str, Any]], axes: dict[str, dict[str, float]],
                  params: SampleParams) -> tuple[dict[Cell, float], dict[Cell, int]]:
    """(weight, capacity) of every (scenario, category) cell: capacity = its distinct dialogue × task ×
    expression combinations, the most prompts it can give without repeating one."""
    scenario_weights = {k: v.weight for k, v in params.scenarios.items()}
    weights = cell_weights(dialogues, tasks, scenario_weights, list(params.balance))
    per_scenario = Counter(d["scenario"] for d in dialogues)
    combos = math.prod(len(v) for v in axes.values()) if axes else 1
    return weights, {c: per_scenario[c[0]] * _applicable(tasks, *c) * combos for c in weights}


def balanced_cell_keys(balance: list[str]) -> tuple[int, ...]:
    """The cell positions (0 scenario, 1 category) whose values `min_per` applies to."""
    return tuple(i for i, key in enumerate(CELL_KEYS) if key in balance)


def draw_prompts(dialogues: list[dict[str, Any]], tasks: list[dict[str, Any]], axes: dict[str, dict[str, float]],
                 params: SampleParams, seed: int) -> Draws:
    """All draws, without replacement of (dialogue, task, expression), shuffled into a stable order."""
    balance = list(params.balance)
    weights, capacity = cell_capacity(dialogues, tasks, axes, params)
    by_scenario: dict[str, list[str]] = {}
    for d in dialogues:
        by_scenario.setdefault(d["scenario"], []).append(d["id"])
    alloc = allocate(weights, capacity, params.count, params.min_per, balanced_cell_keys(balance))
    fixed = _balanced_axis_values(axes, [a for a in balance if a in axes], sum(alloc.values()), seed,
                                  params.min_per)
    draws = Draws()
    for cell in sorted(alloc):
        slots, fixed = fixed[:alloc[cell]], fixed[alloc[cell]:]
        draws.extend(_draw_cell(cell, slots, by_scenario[cell[0]], tasks, axes, seed))
    draws.shuffle(rng(seed, "order"))
    return draws


class Draws(Sequence[Draw]):
    """Draws held as columns (each field's distinct values once, a small code per draw: a few bytes a draw
    instead of an object), read back as Draw objects equal to those added."""

    FIELDS = ("dialogue", "scenario", "task", "category", "expression")

    def __init__(self) -> None:
        self.columns = [Column() for _ in self.FIELDS]

    def extend(self, draws: Iterable[Draw]) -> None:
        for draw in draws:
            for column, name in zip(self.columns, self.FIELDS, strict=True):
                column.append(getattr(draw, name))

    def shuffle(self, r: random.Random) -> None:
        """Reorder the draws as r.shuffle would a list of them (the same swaps: they depend on the length only)."""
        order = array("q", range(len(self)))
        r.shuffle(order)
        for column in self.columns:
            column.codes = array(column.codes.typecode, (column.codes[i] for i in order))

    def __len__(self) -> int:
        return len(self.columns[0])

    @overload
    def __getitem__(self, i: int) -> Draw: ...
    @overload
    def __getitem__(self, i: slice) -> list[Draw]: ...
    def __getitem__(self, i: int | slice) -> Draw | list[Draw]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return Draw(*(column.get(i % len(self)) for column in self.columns))

    def __iter__(self) -> Iterator[Draw]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # compared by content, like a list


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
    expressions: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}  # one object per combination
    for slot in slots:
        draw: Draw | None = None
        for _ in range(MAX_TRIES):
            task = r.choices(pool, weights=task_weights)[0]
            expression = tuple((axis, slot[axis] if axis in slot else r.choices(list(v), weights=list(v.values()))[0])
                               for axis, v in axes.items())
            expression = expressions.setdefault(expression, expression)
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
                          seed: int, min_per: int = 0) -> list[dict[str, str]]:
    """One slot per draw fixing each balanced axis, counts proportional to the weights (at least
    `min_per` per value)."""
    if not balanced:  # one empty slot shared by every draw (slots are only read): none held per draw
        empty: dict[str, str] = {}
        return [empty] * total
    slots: list[dict[str, str]] = [{} for _ in range(total)]
    for axis in balanced:
        counts = apportion(axes[axis], total, min_per)
        values = [v for v, n in sorted(counts.items()) for _ in range(n)]
        rng(seed, "axis", axis).shuffle(values)
        for slot, value in zip(slots, values, strict=True):
            slot[axis] = value
    return slots


def balance_report(draws: Sequence[Draw], weights: dict[str, float], key: str) -> dict[str, Any]:
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

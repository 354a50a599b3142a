"""Plan + dbt-style selectors (`name`, `+name`, `name+`, `+name+`) → the step ids they pick."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import networkx as nx

from dialc_runtime.errors import SelectionError

if TYPE_CHECKING:
    from dialc.plan import Plan


def resolve_name(plan: Plan, name: str) -> str:
    """A step id, or a bare step name when exactly one step has it."""
    ids = [s.id for s in plan.steps]
    if name in ids:
        return name
    matches = [s.id for s in plan.steps if s.name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise SelectionError(f"step name {name!r} is ambiguous: {', '.join(matches)}")
    close = difflib.get_close_matches(name, ids + [s.name for s in plan.steps], n=1)
    hint = f" (did you mean {_spell(plan, close[0])}?)" if close else ""
    raise SelectionError(f"unknown step {name!r}{hint}; steps: {', '.join(ids)}")


def _spell(plan: Plan, match: str) -> str:
    """How to select a close match: a name several steps share would only be ambiguous, so its ids."""
    ids = [s.id for s in plan.steps if s.name == match]
    if match in (s.id for s in plan.steps) or len(ids) == 1:
        return repr(match)
    return " or ".join(map(repr, ids))


def select_steps(plan: Plan, selectors: list[str] | None) -> set[str]:
    """The union of what each selector picks; every step when `selectors` is None."""
    if selectors is None:
        return {s.id for s in plan.steps}
    graph = plan.graph()
    chosen: set[str] = set()
    for selector in selectors:
        parts = selector.split()
        if not parts:
            raise SelectionError("empty step selector")
        for part in parts:
            chosen |= _select_one(plan, graph, part)
    return chosen


def _select_one(plan: Plan, graph: nx.DiGraph, selector: str) -> set[str]:
    up = selector.startswith("+")
    down = selector.endswith("+")
    name = selector.strip("+")
    if not name or "+" in name:
        raise SelectionError(f"bad selector {selector!r}: use name, +name, name+ or +name+")
    step_id = resolve_name(plan, name)
    picked = {step_id}
    if up:
        picked |= nx.ancestors(graph, step_id)
    if down:
        picked |= nx.descendants(graph, step_id)
    return picked

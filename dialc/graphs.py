"""A directed graph as adjacency dicts → its first cycle, found as networkx.find_cycle finds it (no networkx import).

`dialc validate` checks for dependency cycles on every run; importing networkx for that would cost more
than the whole check of a normal spec. Only the compiler (plan DAG, topological order) uses networkx.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import Any, TypeVar

Node = TypeVar("Node", bound=Hashable)


def find_cycle(successors: Mapping[Node, Mapping[Node, Any]]) -> list[Node] | None:
    """The nodes of the first cycle a depth-first search meets, or None for a DAG.

    Start nodes in insertion order, out-edges in insertion order: the cycle networkx.find_cycle
    returns for a DiGraph built in the same order, listed from the node the search re-entered."""
    finished: set[Node] = set()
    for start in successors:
        if start not in finished:
            cycle = _search(successors, start, finished)
            if cycle is not None:
                return cycle
    return None


def _search(successors: Mapping[Node, Mapping[Node, Any]], start: Node, finished: set[Node]) -> list[Node] | None:
    path = [start]
    on_path = {start}
    pending: list[Iterator[Node]] = [iter(successors.get(start, ()))]
    while pending:
        head = next(pending[-1], _DONE)
        if head is _DONE:  # every out-edge of path[-1] explored: backtrack
            pending.pop()
            node = path.pop()
            on_path.discard(node)
            finished.add(node)
        elif head in on_path:
            return path[path.index(head):]
        elif head not in finished:  # a finished node reaches no node on the path (else a cycle was met)
            path.append(head)
            on_path.add(head)
            pending.append(iter(successors.get(head, ())))
    return None


_DONE: Any = object()

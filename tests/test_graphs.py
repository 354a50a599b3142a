"""Adjacency dicts → dialc.graphs.find_cycle: the same cycle networkx.find_cycle reports, without networkx."""

from __future__ import annotations

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from dialc.graphs import find_cycle

edges = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=20)


def networkx_cycle(nodes: int, pairs: list[tuple[int, int]]) -> list[int] | None:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(nodes))
    graph.add_edges_from(pairs)
    try:
        return [u for u, _ in nx.find_cycle(graph)]
    except nx.NetworkXNoCycle:
        return None


def adjacency(nodes: int, pairs: list[tuple[int, int]]) -> dict[int, dict[int, None]]:
    graph: dict[int, dict[int, None]] = {n: {} for n in range(nodes)}
    for u, v in pairs:
        graph[u][v] = None
    return graph


@settings(max_examples=400, deadline=None)
@given(pairs=edges)
def test_same_cycle_as_networkx(pairs: list[tuple[int, int]]) -> None:
    assert find_cycle(adjacency(8, pairs)) == networkx_cycle(8, pairs)


def test_examples() -> None:
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None
    assert find_cycle({"a": {"a": 1}}) == ["a"]
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"b": 1}}) == ["b", "c"]
    assert find_cycle({"x": {}, "y": {"z": 1}, "z": {"y": 1}}) == ["y", "z"]

"""Plan: the compiler's output and the runtime's input, a DAG of steps serialised as canonical JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field

from dialc.source import Span

PLAN_FORMAT = 1


class Step(BaseModel):
    """One node of the plan: `id` is `<kind>.<name>`; `params` are canonical and JSON-only."""

    model_config = ConfigDict(frozen=True)
    id: str
    kind: str
    name: str
    params: dict[str, Any]
    inputs: list[str] = Field(default_factory=list)  # ids of the steps this one reads, in order
    span: Span | None = None
    # where parts of the step were declared (e.g. each expect test): for messages only, so not part
    # of the fingerprint or the cache key — moving lines in a spec must not invalidate a run
    locations: dict[str, list[str]] = Field(default_factory=dict)
    fingerprint: str = ""  # sha256 of kind, name, params and the inputs' fingerprints


class Plan(BaseModel):
    """The whole pipeline as steps in a stable topological order, with its settings."""

    format: int = PLAN_FORMAT
    pipeline: str
    spec: str
    settings: dict[str, Any] = Field(default_factory=dict)  # seed, output directory …
    steps: list[Step]

    def graph(self) -> nx.DiGraph:
        """Edges go from a dependency to its dependent (dbt style)."""
        g = nx.DiGraph()
        for step in self.steps:
            g.add_node(step.id, step=step)
        for step in self.steps:
            for dep in step.inputs:
                g.add_edge(dep, step.id)
        return g

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_json(self) -> str:
        return canonical_json(self.model_dump(mode="json"))


def canonical_json(value: Any) -> str:
    """Same value → same bytes: sorted keys, fixed separators, UTF-8 kept readable."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2) + "\n"


def digest(value: Any) -> str:
    """sha256 of a JSON value's compact canonical form."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(kind: str, name: str, params: dict[str, Any], input_fingerprints: list[str]) -> str:
    """A step's identity: what it is, how it is configured, and what it reads."""
    return digest({"kind": kind, "name": name, "params": params, "inputs": input_fingerprints})

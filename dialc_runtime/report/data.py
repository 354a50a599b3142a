"""Run directory → RunView: run results, plan params and step records, read defensively."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.results import RunResults, StepResult, load_results
from dialc_runtime.engine.store import Store, load_record

NO_DATA = ("skipped", "pending")  # statuses whose step wrote nothing in this run


@dataclass
class RunView:
    """One run as the report sees it; every accessor returns something empty rather than raise."""

    run_dir: Path
    results: RunResults
    plan: dict[str, Any] = field(default_factory=dict)
    store: Store | None = None
    problems: list[str] = field(default_factory=list)  # what could not be read, for the page
    memo: dict[str, Any] = field(default_factory=dict)  # figures accumulated once per page (never records)

    def steps(self, kind: str) -> list[StepResult]:
        """This run's steps of one kind, in plan order."""
        return [s for s in self.results.steps if s.kind == kind]

    def step(self, step_id: str) -> StepResult | None:
        return next((s for s in self.results.steps if s.id == step_id), None)

    def plan_step(self, step_id: str) -> dict[str, Any]:
        """A step as plan.json has it ({} when unknown)."""
        for s in self.plan.get("steps", []):
            if isinstance(s, dict) and s.get("id") == step_id:
                return s
        return {}

    def params(self, step_id: str) -> dict[str, Any]:
        """A step's params from plan.json ({} when unknown)."""
        return self.plan_step(step_id).get("params") or {}

    def name(self, step_id: str) -> str:
        """A step's name (a score step's is its dimension's), from plan.json, else the id's tail."""
        return str(self.plan_step(step_id).get("name") or step_id.partition(".")[2])

    def stream(self, step: StepResult | None) -> Iterator[Any]:
        """Every stored record of the step's key (a failed step's partial output included), read page by page
        and never kept: the report accumulates the figures it needs, so its memory does not grow with the run."""
        if step is None or not step.key or step.status in NO_DATA or self.store is None:
            return
        try:
            for _, record in self.store.records(step.key):
                yield _unprompted(record)
        except (sqlite3.Error, ValueError) as exc:
            said = f"records of {step.id}: {exc}"
            self.problems += [said] if said not in self.problems else []

    def stream_dicts(self, step: StepResult | None) -> Iterator[dict[str, Any]]:
        return (r for r in self.stream(step) if isinstance(r, dict))

    def stream_own(self, step: StepResult | None) -> Iterator[dict[str, Any]]:
        """The fields the step itself wrote, record by record, for a section that reads nothing else: a record
        that refers to its input record (engine/refs.py) is not resolved, so the inputs are not read again."""
        if step is None or not step.key or step.status in NO_DATA or self.store is None:
            return
        try:
            for _, data in self.store.rows(step.key):
                record = load_record(data)
                if isinstance(record, dict):
                    yield record
        except (sqlite3.Error, ValueError) as exc:
            said = f"records of {step.id}: {exc}"
            self.problems += [said] if said not in self.problems else []

    def records(self, step: StepResult | None) -> list[Any]:
        """Every stored record of the step, as a list: for steps with a handful of records (evaluate, study)."""
        return list(self.stream(step))

    def dicts(self, step: StepResult | None) -> list[dict[str, Any]]:
        return list(self.stream_dicts(step))

    def artifact(self, step: StepResult | None, name: str) -> Path | None:
        """A file in the step's artifact directory, if it exists."""
        if step is None or not step.key:
            return None
        path = RunLayout(self.run_dir).artifact_dir(step.key) / name
        return path if path.is_file() else None


UNREPORTED = ("messages", "output", "lineage", "label_model", "value")  # record fields no section reads


def _unprompted(record: Any) -> Any:
    """A record as the report keeps it: without the fields no section shows (the rendered prompt is the bulk
    of a prompt's record), so a large run's report holds a fraction of its records."""
    if isinstance(record, dict) and any(k in record for k in UNREPORTED):
        return {k: v for k, v in record.items() if k not in UNREPORTED}
    return record


def _read_plan(run_dir: Path, problems: list[str]) -> dict[str, Any]:
    path = RunLayout(run_dir).plan
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path}: {exc}")
        return {}
    return data if isinstance(data, dict) else {}


def _open_store(run_dir: Path, problems: list[str]) -> Store | None:
    try:
        return Store.existing(run_dir)
    except (sqlite3.Error, RuntimeError) as exc:
        problems.append(f"record store: {exc}")
        return None


def load_view(run_dir: Path) -> RunView | None:
    """None when there are no run results; raises ValueError when they cannot be read."""
    path = RunLayout(Path(run_dir)).results
    if not path.is_file():
        return None
    try:
        results = load_results(path)
    except (OSError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: {type(exc).__name__}: {exc}") from exc
    problems: list[str] = []
    plan = _read_plan(Path(run_dir), problems)
    return RunView(Path(run_dir), results, plan, _open_store(Path(run_dir), problems), problems)


@contextmanager
def open_view(run_dir: Path) -> Iterator[RunView | None]:
    """load_view, closing the store afterwards."""
    view = load_view(run_dir)
    try:
        yield view
    finally:
        if view is not None and view.store is not None:
            view.store.close()


def dimension_names(view: RunView) -> list[str]:
    """Quality dimensions: those configured on filter steps, then any other score.* step."""
    names: list[str] = []
    for step in view.steps("filter"):
        names += [n for n in view.params(step.id).get("dimensions") or {} if n not in names]
    for step in view.steps("score"):
        name = view.name(step.id)
        if name not in names:
            names.append(name)
    return names


def dimension_config(view: RunView, name: str) -> dict[str, Any]:
    """{kind, weight, gate, …} of a dimension, from its score step's params and the filter's."""
    config: dict[str, Any] = {}
    step = view.step(f"score.{name}")
    if step is not None:
        config.update(view.params(step.id).get("dimension") or {})
    for filt in view.steps("filter"):
        config.update((view.params(filt.id).get("dimensions") or {}).get(name) or {})
    return config


def dimension_scores(view: RunView, name: str) -> list[dict[str, Any]]:
    """Per-record verdicts {id, score, passed, detail, …} as a list (see stream_scores)."""
    return list(stream_scores(view, name))


def stream_scores(view: RunView, name: str) -> Iterator[dict[str, Any]]:
    """Per-record verdicts {id, score, passed, detail, …}: the score step's records, or else
    the `quality` entries of the filter's records; streamed."""
    found = False
    for record in view.stream_dicts(view.step(f"score.{name}")):
        found = True
        yield record
    if found:
        return
    for filt in view.steps("filter"):
        for r in view.stream_dicts(filt):
            verdict = (r.get("quality") or {}).get(name)
            if isinstance(verdict, dict):
                yield {"id": r.get("id"), **verdict}


def labelled_by_id(view: RunView, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Id → record of the given ids in the richest per-record view: the filter's records, or else the
    labels (the later of two records with one id wins); only the wanted records kept."""
    for kind in ("filter", "label"):
        found, out = False, dict[str, dict[str, Any]]()
        for step in view.steps(kind):
            keyed = _keyed_by_id(view, step, ids)
            if keyed is not None:
                found, out = True, {**out, **keyed}
                continue
            for r in view.stream_dicts(step):
                found = True
                if str(r.get("id")) in ids:
                    out[str(r.get("id"))] = r
        if found:
            return out
    return {}


def _keyed_by_id(view: RunView, step: StepResult, ids: set[str]) -> dict[str, dict[str, Any]] | None:
    """The wanted records of a step whose records are keyed by their id (a filter's), read by key; None when
    some are not found so (the step is then streamed)."""
    if not ids or view.store is None or not step.key or step.status in NO_DATA:
        return None
    try:
        found = view.store.records_by_key(step.key, sorted(ids))
    except (sqlite3.Error, ValueError):
        return None
    out = {key: _unprompted(r) for key, r in found.items() if isinstance(r, dict) and str(r.get("id")) == key}
    return out if len(out) == len(ids) else None


def first_with_metrics(view: RunView, kind: str) -> StepResult | None:
    """The first step of a kind that left metrics (ran, was cached, or was blocked)."""
    return next((s for s in view.steps(kind) if s.metrics), None)


def why_missing(view: RunView, kind: str) -> str:
    """ "not run" plus the reason, for a section whose step has nothing to show."""
    steps = view.steps(kind)
    if not steps:
        return f"not run (no {kind} step in this run)"
    s = steps[0]
    why = f"{s.status}: {s.message}" if s.message else s.status
    return f"not run ({s.id} {why})"

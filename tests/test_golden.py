"""Specs (specs/*.dial, tests/specs/*.dial) → plans, compared byte for byte with tests/golden/.

`pytest tests/test_golden.py --update-golden` rewrites the golden files; review the diff like
code. Also: compiling is deterministic (twice, and across processes with different hash seeds),
and a step's fingerprint changes exactly when its parameters or an upstream step's change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from dialc.compiler import compile_plan
from dialc.frontend import run_frontend
from dialc.plan import PARAMS, ROLES, Plan, StepKind

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
SPECS = sorted((ROOT / "specs").glob("*.dial")) + sorted((ROOT / "tests" / "specs").glob("*.dial"))
REALESTATE = Path("specs/realestate.dial")


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # plans name files relative to the working directory


def compile_spec(path: Path, overrides: list[str] | None = None) -> Plan:
    """Front end + compiler, insisting the spec is clean: no errors, no warnings."""
    front = run_frontend(path, overrides)
    shown = [f"{d.span.location() if d.span else ''} {d.severity}: {d.message} [{d.code}]"
             for d in front.diags.items]
    assert not shown, "\n".join(shown)
    assert front.ir is not None
    return compile_plan(front.ir, front.path)


def test_spec_names_are_unique() -> None:
    assert len({p.stem for p in SPECS}) == len(SPECS)
    assert len(SPECS) >= 8


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_golden_plan(spec: Path, request: pytest.FixtureRequest) -> None:
    text = compile_spec(spec.relative_to(ROOT)).to_json()
    golden = GOLDEN / f"{spec.stem}.plan.json"
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
        return
    assert golden.is_file(), f"no golden file: run pytest {__file__} --update-golden"
    assert text == golden.read_text(encoding="utf-8"), (
        f"{spec.name} compiles to a different plan than {golden.name}; if intended, "
        "rerun with --update-golden and review the diff")


def test_no_stale_golden_files() -> None:
    expected = {f"{p.stem}.plan.json" for p in SPECS}
    assert {p.name for p in GOLDEN.glob("*.plan.json")} <= expected


def test_golden_plans_are_canonical() -> None:
    for golden in GOLDEN.glob("*.plan.json"):
        text = golden.read_text(encoding="utf-8")
        assert Plan.model_validate_json(text).to_json() == text, golden.name


def test_plan_shape() -> None:
    plan = compile_spec(REALESTATE)
    graph = plan.graph()
    assert nx.is_directed_acyclic_graph(graph)
    ids = [s.id for s in plan.steps]
    assert len(ids) == len(set(ids)) and all(s.id == f"{s.kind}.{s.name}" for s in plan.steps)
    position = {step_id: i for i, step_id in enumerate(ids)}
    assert all(position[dep] < position[s.id] for s in plan.steps for dep in s.input_ids)
    assert all(len(s.fingerprint) == 64 for s in plan.steps)
    # every input is read under one of the roles its kind declares, and every kind's params are typed
    assert all(set(s.inputs) <= set(ROLES[StepKind(s.kind)]) for s in plan.steps)
    assert all(isinstance(s.params, PARAMS[StepKind(s.kind)]) for s in plan.steps)
    assert {"ingest", "tasks", "evolve", "expressions", "sample", "label", "score", "filter",
            "export", "finetune", "evaluate"} <= {s.kind for s in plan.steps}


# ---- determinism ----------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [REALESTATE, Path("specs/support.dial")], ids=lambda p: p.stem)
def test_compile_twice_same_bytes(spec: Path) -> None:
    assert compile_spec(spec).to_json() == compile_spec(spec).to_json()


def test_compile_in_fresh_processes_same_bytes() -> None:
    expected = compile_spec(REALESTATE).to_json()
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-m", "dialc", "compile", str(REALESTATE)], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=120, check=True)
        assert out.stdout == expected, f"PYTHONHASHSEED={seed} changed the plan"


# ---- fingerprints ---------------------------------------------------------------------------
def _changes(base: Plan, other: Plan) -> tuple[set[str], set[str]]:
    """(steps whose params changed, steps whose fingerprint changed)."""
    before = {s.id: s for s in base.steps}
    assert set(before) == {s.id for s in other.steps}
    params = {s.id for s in other.steps if s.params != before[s.id].params}
    prints = {s.id for s in other.steps if s.fingerprint != before[s.id].fingerprint}
    return params, prints


def _downstream(plan: Plan, roots: set[str]) -> set[str]:
    graph = plan.graph()
    return set(roots).union(*(nx.descendants(graph, r) for r in roots))


def test_param_change_propagates_to_dependents_only() -> None:
    base = compile_spec(REALESTATE)
    changed = compile_spec(REALESTATE, ["sample.prompts.count=30"])
    params, prints = _changes(base, changed)
    assert params == {"sample.prompts"}
    assert prints == _downstream(base, params)
    upstream = {"ingest.dialogues", "tasks.tasks", "evolve.evolved", "expressions.style"}
    assert upstream.isdisjoint(prints)
    assert {"label.labels", "filter.quality", "finetune.domain", "evaluate.after"} <= prints


@pytest.mark.parametrize("override", [
    "model.small.temperature=0.1",
    "label.labels.seed=5",
    "quality.quality.top_k=3",
    "finetune.domain.epochs=3",
    "evaluate.after.max_drop=1.5",
    "expressions.style.tone={formal: 1}",
    "evolve.evolved.rounds=2",
    "source.dialogues.pii_scrub=false",
])
def test_fingerprints_change_exactly_downstream(override: str) -> None:
    base = compile_spec(REALESTATE)
    params, prints = _changes(base, compile_spec(REALESTATE, [override]))
    assert params, f"{override} changed no step"
    assert prints == _downstream(base, params)


def test_unchanged_spec_keeps_every_fingerprint() -> None:
    base = compile_spec(REALESTATE)
    same = compile_spec(REALESTATE, ["sample.prompts.count=36"])  # the value already in the spec
    assert _changes(base, same) == (set(), set())


def test_pipeline_seed_reaches_every_step_without_its_own_seed() -> None:
    base = compile_spec(REALESTATE)
    params, prints = _changes(base, compile_spec(REALESTATE, ["pipeline.seed=43"]))
    seeded = {s.id for s in base.steps if "seed" in s.params}
    assert seeded <= params
    assert prints == _downstream(base, params)

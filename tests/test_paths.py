"""Spec paths → plan and cache: the same spec from any working directory has the same keys and run dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_kit import compile_spec, write_project
from typer.testing import CliRunner

from dialc.plan import Plan, resolve_paths
from dialc_runtime.engine.executor import Resolver, execute
from dialc_runtime.engine.registry import default_registry

DATA_STEPS = ["+sample.prompts"]  # ingest, tasks, expressions, sample: no model needed


def keys(plan: Plan) -> dict[str, str | None]:
    """Cache keys of the steps that read no input (the others need a store to be known)."""
    resolver = Resolver(plan, None, default_registry(), check=False)
    return {s.id: resolver.key(s) for s in plan.steps if not s.input_ids}


def test_plan_and_keys_do_not_depend_on_the_working_directory(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_project(tmp_path / "project" / "specs")
    monkeypatch.chdir(spec.parent)
    here = compile_spec(Path(spec.name))
    here_keys = keys(here)  # a key hashes the files' contents: compute it where the plan was made
    assert here.run_dir() == Path("runs/kit")
    monkeypatch.chdir(tmp_path)
    parent = compile_spec(spec.relative_to(tmp_path))
    assert [s.params_json() for s in here.steps] == [s.params_json() for s in parent.steps]
    assert [s.fingerprint for s in here.steps] == [s.fingerprint for s in parent.steps]
    assert here.steps[0].params_json()["path"] == "dialogues.jsonl"  # as written, relative to the spec
    assert here_keys == keys(parent) and all(here_keys.values())
    assert parent.run_dir() == Path("project/specs/runs/kit")


def test_run_from_the_parent_folder_reuses_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_project(tmp_path / "specs")
    monkeypatch.chdir(spec.parent)
    plan = compile_spec(Path(spec.name))
    first = execute(plan, plan.run_dir(), select=DATA_STEPS, quiet=True)
    assert first.ok and {s.status for s in first.steps} == {"ok"}
    monkeypatch.chdir(tmp_path)
    plan = compile_spec(Path("specs") / spec.name)
    again = execute(plan, plan.run_dir(), select=DATA_STEPS, quiet=True)
    assert {s.status for s in again.steps} == {"cached"}, [(s.id, s.status) for s in again.steps]
    assert (tmp_path / "specs" / "runs" / "kit" / "store.sqlite").is_file()
    assert not (tmp_path / "runs").exists()


def test_steps_see_paths_resolved_from_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_project(tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    plan = compile_spec(Path("specs") / spec.name)
    ingest = resolve_paths(plan.steps[0].params, plan.spec_dir())
    assert ingest.path == "specs/dialogues.jsonl" and ingest.files == ["specs/dialogues.jsonl"]
    model = next(s for s in plan.steps if s.kind == "label").params
    assert resolve_paths(model, plan.spec_dir()) == model  # absolute and builtin paths stay


def test_status_and_show_find_the_run_from_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dialc.cli import app

    spec = write_project(tmp_path / "specs")
    monkeypatch.chdir(spec.parent)
    plan = compile_spec(Path(spec.name))
    execute(plan, plan.run_dir(), select=DATA_STEPS, quiet=True)
    monkeypatch.chdir(tmp_path)
    status = CliRunner().invoke(app, ["status", "specs/kit.dial"])
    assert status.exit_code == 0 and "done" in status.stdout and "stale" not in status.stdout
    shown = CliRunner().invoke(app, ["show", "sample.prompts:000001", "--spec", "specs/kit.dial"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == "prompts-000001"

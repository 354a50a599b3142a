"""Executor behaviour on fake plans: caching, selection, failures, status, dry runs, accounting."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from runtime_fakes import FakeRegistry, make_plan

from dialc_runtime.engine.executor import execute, status
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.registry import ModuleRegistry
from dialc_runtime.engine.results import load_results
from dialc_runtime.engine.store import Store
from dialc_runtime.errors import SelectionError, UnknownStepKind

# gen.a → map.b → map.c ; gen.x ; join.y(map.b, gen.x)
DAG: list[tuple[str, dict[str, Any], list[str]]] = [
    ("gen.a", {"n": 5}, []),
    ("map.b", {"salt": "1"}, ["gen.a"]),
    ("map.c", {"salt": "2"}, ["map.b"]),
    ("gen.x", {"n": 3, "salt": "x"}, []),
    ("join.y", {}, ["map.b", "gen.x"]),
]


def dag(**edits: dict[str, Any]) -> Any:
    """DAG with some steps' params replaced: dag(**{"map.b": {...}})."""
    return make_plan([(i, edits.get(i, p), ins) for i, p, ins in DAG])


def records(run_dir: Path, step_id: str) -> list[tuple[str, Any]]:
    key = load_results(RunLayout(run_dir).results).step(step_id).key
    with Store(run_dir) as store:
        return list(store.records(key or ""))


@pytest.fixture
def reg() -> FakeRegistry:
    return FakeRegistry()


def test_second_run_reuses_everything(tmp_path: Path, reg: FakeRegistry) -> None:
    first = execute(dag(), tmp_path, registry=reg, quiet=True)
    assert first.by_status("ok") == [s for s, _, _ in DAG]
    again = execute(dag(), tmp_path, registry=reg, quiet=True)
    assert again.by_status("cached") == [s for s, _, _ in DAG]
    assert all(n == 1 for n in reg.calls.values())
    assert again.step("map.c").records == 5 and again.step("map.b").metrics == {"n": 5}


def test_editing_params_reruns_that_step_and_its_dependents(
    tmp_path: Path, reg: FakeRegistry
) -> None:
    execute(dag(), tmp_path, registry=reg, quiet=True)
    reg.calls.clear()
    res = execute(dag(**{"map.b": {"salt": "changed"}}), tmp_path, registry=reg, quiet=True)
    assert set(reg.calls) == {"map.b", "map.c", "join.y"}
    assert res.by_status("cached") == ["gen.a", "gen.x"]


def test_same_output_stops_the_rerun_early(tmp_path: Path, reg: FakeRegistry) -> None:
    execute(dag(), tmp_path, registry=reg, quiet=True)
    reg.calls.clear()
    # `note` changes map.b's key but not its output: dependents keep their cache
    execute(dag(**{"map.b": {"salt": "1", "note": "x"}}), tmp_path, registry=reg, quiet=True)
    assert set(reg.calls) == {"map.b"}


def test_version_bump_and_seed_change_invalidate(tmp_path: Path, reg: FakeRegistry) -> None:
    execute(dag(), tmp_path, registry=reg, quiet=True)
    reg.calls.clear()
    reg.modules["join"].VERSION = "2"
    execute(dag(), tmp_path, registry=reg, quiet=True)
    assert set(reg.calls) == {"join.y"}
    reg.calls.clear()
    plan = make_plan(DAG, seed=8)  # steps without a seed param get the pipeline seed
    execute(plan, tmp_path, registry=reg, quiet=True)
    assert set(reg.calls) == {s for s, _, _ in DAG}
    assert execute(plan, tmp_path, registry=reg, quiet=True).by_status("ok") == []


def test_listed_file_contents_are_part_of_the_key(
    tmp_path: Path, reg: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("specs").mkdir()  # listed files are relative to the spec's folder (the fake plan's is specs/)
    Path("specs/notes.txt").write_text("one", encoding="utf-8")
    plan = make_plan([("gen.a", {"n": 2}, []), ("files.f", {"files": ["notes.txt"]}, ["gen.a"])])
    execute(plan, Path("run"), registry=reg, quiet=True)
    execute(plan, Path("run"), registry=reg, quiet=True)
    assert reg.calls["files.f"] == 1
    Path("specs/notes.txt").write_text("two", encoding="utf-8")
    execute(plan, Path("run"), registry=reg, quiet=True)
    assert reg.calls["files.f"] == 2 and reg.calls["gen.a"] == 1
    assert records(Path("run"), "files.f") == [("specs/notes.txt", {"text": "two"})]  # what the step read


def test_recompute_forces_a_step(tmp_path: Path, reg: FakeRegistry) -> None:
    execute(dag(), tmp_path, registry=reg, quiet=True)
    reg.calls.clear()
    res = execute(dag(), tmp_path, registry=reg, quiet=True, recompute=["b"])
    assert set(reg.calls) == {"map.b"}  # same output: dependents stay cached
    assert res.step("map.b").status == "ok"
    reg.calls.clear()
    execute(dag(), tmp_path, registry=reg, quiet=True, recompute=["b+"])
    assert set(reg.calls) == {"map.b", "map.c", "join.y"}
    with pytest.raises(SelectionError, match="not selected"):
        execute(dag(), tmp_path, registry=reg, select=["c"], recompute=["a"])


def test_tampered_record_is_detected_and_recomputed(tmp_path: Path, reg: FakeRegistry) -> None:
    execute(dag(), tmp_path, registry=reg, quiet=True)
    good = records(tmp_path, "map.b")
    key = load_results(RunLayout(tmp_path).results).step("map.b").key
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        db.execute(
            "UPDATE records SET data = '{\"v\":\"forged\"}' WHERE step_key = ? AND rkey = '00002'",
            (key,),
        )
    reg.calls.clear()
    res = execute(dag(), tmp_path, registry=reg, quiet=True)
    assert set(reg.calls) == {"map.b"}
    assert "corrupt" in res.step("map.b").warnings[0]
    assert records(tmp_path, "map.b") == good


def test_tampered_file_is_detected_and_recomputed(tmp_path: Path, reg: FakeRegistry) -> None:
    plan = make_plan(
        [("gen.a", {"n": 2}, []), ("files.f", {}, ["gen.a"]), ("map.g", {}, ["gen.a"])]
    )
    execute(plan, tmp_path, registry=reg, quiet=True)
    layout = RunLayout(tmp_path)
    out = layout.artifact_dir(load_results(layout.results).step("files.f").key or "") / "out.txt"
    good = out.read_text()
    out.write_text("tampered")
    execute(plan, tmp_path, registry=reg, quiet=True)
    assert reg.calls["files.f"] == 2 and out.read_text() == good
    out.unlink()  # a missing file is corrupt too
    execute(plan, tmp_path, registry=reg, quiet=True)
    assert reg.calls["files.f"] == 3 and reg.calls["gen.a"] == 1


def test_corrupt_unselected_upstream_is_never_used(tmp_path: Path, reg: FakeRegistry) -> None:
    execute(dag(), tmp_path, registry=reg, quiet=True)
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        db.execute("DELETE FROM records WHERE step_id = 'map.b' AND rkey = '00000'")
    res = execute(dag(), tmp_path, registry=reg, quiet=True, select=["c"], recompute=["c"])
    assert res.step("map.c").status == "failed"
    assert "map.b" in res.step("map.c").message and "corrupt" in res.step("map.c").message


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("map.b", {"map.b"}),
        ("b", {"map.b"}),
        ("+b", {"gen.a", "map.b"}),
        ("b+", {"map.b", "map.c", "join.y"}),
        ("+y+", {"gen.a", "map.b", "gen.x", "join.y"}),
        ("a x", {"gen.a", "gen.x"}),
    ],
)
def test_selectors(tmp_path: Path, reg: FakeRegistry, selector: str, expected: set[str]) -> None:
    execute(dag(), tmp_path, registry=reg, quiet=True)
    res = execute(dag(), tmp_path, registry=reg, quiet=True, select=[selector])
    assert set(res.selected) == expected and {s.id for s in res.steps} == expected


def test_bad_selectors_say_what_exists(tmp_path: Path, reg: FakeRegistry) -> None:
    with pytest.raises(SelectionError, match=r"unknown step 'mapb'.*map\.b.*gen\.a, map\.b"):
        execute(dag(), tmp_path, registry=reg, select=["mapb"])
    plan = make_plan([("gen.a", {"n": 1}, []), ("map.a", {}, ["gen.a"])])
    with pytest.raises(SelectionError, match="ambiguous: gen.a, map.a"):
        execute(plan, tmp_path, registry=reg, select=["a"])
    assert not RunLayout(tmp_path).plan.exists()


def test_selected_step_uses_cached_upstream_or_fails_clearly(
    tmp_path: Path, reg: FakeRegistry
) -> None:
    res = execute(dag(), tmp_path / "fresh", registry=reg, quiet=True, select=["c"])
    assert res.step("map.c").status == "failed"
    assert "map.b is not selected and it has no cached output" in res.step("map.c").message
    execute(dag(), tmp_path / "run", registry=reg, quiet=True)
    reg.calls.clear()
    res = execute(
        dag(**{"map.c": {"salt": "3"}}), tmp_path / "run", registry=reg, quiet=True, select=["c"]
    )
    assert res.step("map.c").status == "ok" and set(reg.calls) == {"map.c"}


def test_failures_block_dependents_only(tmp_path: Path, reg: FakeRegistry) -> None:
    plan = make_plan(
        [
            ("gen.a", {"n": 2}, []),
            ("fail.f", {"message": "3 rows have no id"}, ["gen.a"]),
            ("map.after", {}, ["fail.f"]),
            ("map.deeper", {}, ["map.after"]),
            ("map.other", {}, ["gen.a"]),
        ]
    )
    res = execute(plan, tmp_path, registry=reg, quiet=True)
    assert [s.status for s in res.steps] == ["ok", "failed", "skipped", "skipped", "ok"]
    assert res.step("fail.f").diagnostic() == (
        'specs/fake.dial:2:3: error: step "fail.f" failed: 3 rows have no id'
    )
    assert res.step("map.deeper").message == "upstream map.after skipped"
    assert not res.ok
    saved = json.loads(RunLayout(tmp_path).results.read_text())
    assert saved["format"] == 1 and saved["steps"][1]["span"]["line"] == 2
    assert saved["totals"]["steps"] == {"ok": 2, "failed": 1, "skipped": 2}


def test_internal_error_keeps_the_traceback(tmp_path: Path, reg: FakeRegistry) -> None:
    plan = make_plan([("boom.b", {}, []), ("gen.ok", {"n": 1}, [])])
    res = execute(plan, tmp_path, registry=reg, quiet=True)
    b = res.step("boom.b")
    assert (
        b.status == "failed" and b.internal and b.message == "ZeroDivisionError: division by zero"
    )
    assert "Traceback" in RunLayout(tmp_path).log("boom.b").read_text()
    assert b.log == "logs/boom.b.log"  # relative to the run directory, as run_results.json says
    assert "internal error" in (b.diagnostic() or "") and res.step("gen.ok").status == "ok"


def test_unknown_kind_fails_that_step(tmp_path: Path, reg: FakeRegistry) -> None:
    res = execute(make_plan([("nope.n", {}, [])]), tmp_path, registry=reg, quiet=True)
    nope = res.step("nope.n")
    assert nope.status == "failed" and not nope.internal
    assert (
        nope.message == "no implementation for step kind 'nope' (registered kinds: block, boom, "
        "fail, files, gen, join, llm, map)"
    )
    with pytest.raises(UnknownStepKind, match="no module dialc_runtime.steps.no_such_kind"):
        ModuleRegistry().get("no_such_kind")


def test_blocked_step_blocks_dependents_with_its_message(tmp_path: Path, reg: FakeRegistry) -> None:
    plan = make_plan(
        [
            ("block.review", {"message": "review reviews/tasks.review"}, []),
            ("map.next", {}, ["block.review"]),
        ]
    )
    res = execute(plan, tmp_path, registry=reg, quiet=True)
    assert res.step("block.review").status == "blocked"
    assert res.step("block.review").message == "review reviews/tasks.review"
    # below a gate is blocked too, not a failure: the run is not failed (issue 9)
    assert res.step("map.next").status == "blocked" and res.step("map.next").blocked_by == "block.review"
    assert res.step("map.next").message == "upstream block.review blocked"
    assert res.step("map.next").diagnostic() is None  # the gate's own line says it
    assert res.ok and res.by_status("blocked") == ["block.review", "map.next"]
    execute(plan, tmp_path, registry=reg, quiet=True)
    assert reg.calls["block.review"] == 2  # a blocked step is asked again next run


def test_status_without_running(tmp_path: Path, reg: FakeRegistry) -> None:
    def states(plan: Any) -> dict[str, str]:
        return {s.id: s.state for s in status(plan, tmp_path, registry=reg)}

    assert set(states(dag()).values()) == {"pending"}
    execute(dag(), tmp_path, registry=reg, quiet=True)
    execute(dag(), tmp_path, registry=reg, quiet=True, select=["c"])
    assert set(states(dag()).values()) == {"done"}
    edited = dag(**{"map.b": {"salt": "9"}})
    assert states(edited) == {
        "gen.a": "done",
        "map.b": "stale",
        "map.c": "stale",
        "gen.x": "done",
        "join.y": "stale",
    }
    execute(edited, tmp_path, registry=reg, quiet=True)
    assert states(dag())["map.b"] == "cached"  # the original output is still stored
    assert sum(reg.calls.values()) == 5 + 3


def test_dry_run_reports_and_writes_nothing(tmp_path: Path, reg: FakeRegistry) -> None:
    execute(dag(), tmp_path, registry=reg, quiet=True, select=["+b"])
    before = sorted(p.name for p in tmp_path.iterdir())
    res = execute(dag(), tmp_path, registry=reg, dry_run=True)
    assert {s.id: s.status for s in res.steps} == {
        "gen.a": "cached",
        "map.b": "cached",
        "map.c": "pending",
        "gen.x": "pending",
        "join.y": "pending",
    }
    assert res.totals()["estimate"] == {"model_calls": 1 + 3 + 1, "tokens": 50}
    assert sorted(p.name for p in tmp_path.iterdir()) == before and sum(reg.calls.values()) == 2
    assert not execute(dag(), tmp_path / "none", registry=reg, dry_run=True).steps[0].cache_hit
    assert not (tmp_path / "none").exists()


def test_backend_calls_are_accounted(
    tmp_path: Path, reg: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[dict[str, Any]] = []

    class Fake:
        name = "fake"

        def generate(self, prompts: list[str]) -> list[Any]:
            return [
                SimpleNamespace(text=p.upper(), prompt_tokens=3, completion_tokens=2, attempts=1)
                for p in prompts
            ]

    def get_backend(cfg: dict[str, Any]) -> Fake:
        loaded.append(cfg)
        return Fake()

    import dialc_runtime.models

    monkeypatch.setattr(dialc_runtime.models, "get_backend", get_backend, raising=False)
    model = {"name": "small", "backend": "fake"}
    plan = make_plan(
        [
            ("gen.a", {"n": 4}, []),
            ("llm.one", {"model": model}, ["gen.a"]),
            ("llm.two", {"model": model, "k": 2}, ["gen.a"]),
        ]
    )
    res = execute(plan, tmp_path, registry=reg, quiet=True)
    one = res.step("llm.one")
    assert (one.model_calls, one.prompt_tokens, one.completion_tokens) == (4, 12, 8)
    assert res.totals()["model_calls"] == 8 and len(loaded) == 1  # one shared backend
    again = execute(plan, tmp_path, registry=reg, quiet=True)
    assert again.totals()["model_calls"] == 0


def test_plain_progress_prints_one_line_per_step(tmp_path: Path, reg: FakeRegistry) -> None:
    out = io.StringIO()
    execute(dag(), tmp_path, registry=reg, console=Console(file=out, width=120))
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and lines[0].startswith("ok       gen.a  5 records")


def test_terminal_progress_bars(tmp_path: Path, reg: FakeRegistry) -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True)
    res = execute(dag(), tmp_path, registry=reg, console=console)
    assert res.ok and "gen.a" in out.getvalue()


def test_a_step_that_yields_nothing_from_its_inputs_is_warned_about(tmp_path: Path, reg: FakeRegistry) -> None:
    plan = make_plan([("gen.a", {"n": 3}, []), ("files.none", {}, ["gen.a"])])  # no files: no records
    res = execute(plan, tmp_path, registry=reg, quiet=True)
    assert res.step("files.none").status == "ok"
    assert res.step("files.none").warnings == ["yielded no records (its inputs hold 3)"]
    assert res.step("gen.a").warnings == []

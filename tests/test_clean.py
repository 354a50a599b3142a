"""dialc clean: removes the cache entries no step of the spec refers to, keeps what it uses, refuses during a run."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from runtime_fakes import FakeRegistry, make_plan
from test_outputs import plan as named_plan
from test_outputs import registry as named_registry

from dialc.plan import Plan
from dialc_runtime.engine.clean import CleanRefused, clean, human_bytes
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.lock import run_lock
from dialc_runtime.engine.outputs import read_outputs
from dialc_runtime.engine.store import Store
from dialc_runtime.errors import RunLocked


def chain(salt: str, n: int = 5) -> Plan:
    """gen → map (salted) → files: a change of `salt` gives map and files new keys, gen keeps its own."""
    return make_plan([("gen.rows", {"n": n}, []), ("map.salted", {"salt": salt}, ["gen.rows"]),
                      ("files.out", {}, ["map.salted"])])


def keys_in_store(run_dir: Path) -> set[str]:
    with sqlite3.connect(RunLayout(run_dir).store) as db:
        return ({r[0] for r in db.execute("SELECT DISTINCT step_key FROM records")}
                | {r[0] for r in db.execute("SELECT key FROM steps")})


def run(run_dir: Path, plan: Plan, reg: FakeRegistry | None = None) -> tuple[FakeRegistry, dict[str, str]]:
    reg = reg or FakeRegistry()
    results = execute(plan, run_dir, registry=reg, quiet=True)
    return reg, {s.id: s.key or "" for s in results.steps}


def test_clean_removes_what_the_spec_no_longer_uses_and_keeps_it_cached(tmp_path: Path) -> None:
    _, old = run(tmp_path, chain("a"))
    _, new = run(tmp_path, chain("b"))
    stale = {old["map.salted"], old["files.out"]}
    assert stale <= keys_in_store(tmp_path) and (tmp_path / "artifacts" / old["files.out"]).is_dir()

    dry = clean(chain("b"), tmp_path, dry_run=True, registry=FakeRegistry())
    assert {e.key for e in dry.entries} == stale
    assert stale <= keys_in_store(tmp_path)  # a dry run removes nothing
    by_key = {e.key: e for e in dry.entries}
    assert by_key[old["map.salted"]].records == 5 and by_key[old["map.salted"]].record_bytes > 0
    assert by_key[old["files.out"]].folder_bytes > 0 and by_key[old["files.out"]].completed
    assert any(line.startswith("would remove 2 cache entries") for line in dry.lines())

    done = clean(chain("b"), tmp_path, registry=FakeRegistry())
    assert {e.key for e in done.entries} == stale
    assert keys_in_store(tmp_path) == set(new.values())
    assert not (tmp_path / "artifacts" / old["files.out"]).exists()
    assert (tmp_path / "artifacts" / new["files.out"]).is_dir()

    reg, _ = run(tmp_path, chain("b"))
    assert not reg.calls  # every step of the spec is still cached
    reg, _ = run(tmp_path, chain("a"))
    assert set(reg.calls) == {"map.salted", "files.out"}  # the removed ones run again; gen.rows was shared


def test_the_records_of_a_step_under_way_are_kept_for_its_resume(tmp_path: Path) -> None:
    reg = FakeRegistry()
    reg.crash_after["gen.rows"] = 3
    run(tmp_path, chain("a", n=10), reg)  # gen.rows fails after 3 records: incomplete, resumable
    report = clean(chain("a", n=10), tmp_path, registry=FakeRegistry())
    assert report.entries == []
    assert any("nothing to clean" in line for line in report.lines())
    resumed = execute(chain("a", n=10), tmp_path, registry=FakeRegistry(), quiet=True)
    assert resumed.step("gen.rows").metrics == {"emitted": 7, "resumed": 3}  # the 3 kept records were not redone


def test_clean_vacuums_the_store(tmp_path: Path) -> None:
    run(tmp_path, chain("a", n=3000))
    run(tmp_path, chain("b", n=3000))
    report = clean(chain("b", n=3000), tmp_path, registry=FakeRegistry())
    assert report.store_after < report.store_before * 0.8  # two of the three big steps' pages are given back
    assert RunLayout(tmp_path).store.stat().st_size == report.store_after
    assert "after VACUUM" in report.lines()[-1]


def test_clean_is_refused_while_a_run_holds_the_directory(tmp_path: Path) -> None:
    run(tmp_path, chain("a"))
    run(tmp_path, chain("b"))
    before = keys_in_store(tmp_path)
    with run_lock(tmp_path), pytest.raises(RunLocked, match="another dialc run"):
        clean(chain("b"), tmp_path, registry=FakeRegistry())
    assert keys_in_store(tmp_path) == before


def test_clean_refuses_when_a_step_key_cannot_be_computed(tmp_path: Path) -> None:
    run(tmp_path, chain("a"))
    before = keys_in_store(tmp_path)
    broken = FakeRegistry()
    del broken.modules["map"]
    with pytest.raises(CleanRefused, match="map.salted"):
        clean(chain("a"), tmp_path, registry=broken)
    assert keys_in_store(tmp_path) == before


def test_clean_repoints_named_outputs_so_none_dangles(tmp_path: Path) -> None:
    execute(named_plan("a"), tmp_path, registry=named_registry(), quiet=True)
    assert {o.name for o in read_outputs(tmp_path)} == {"dataset", "tuned"}
    clean(named_plan("b"), tmp_path, registry=named_registry())  # a spec whose outputs have not been made
    layout = RunLayout(tmp_path)
    assert read_outputs(tmp_path) == [] and not layout.named_output("tuned").is_symlink()


def test_a_directory_without_a_run_is_left_as_it_is(tmp_path: Path) -> None:
    report = clean(chain("a"), tmp_path / "never-ran", registry=FakeRegistry())
    assert report.entries == [] and not (tmp_path / "never-ran").exists()


def test_sizes_read_as_people_write_them() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 * 1024**3)] == ["0 B", "1023 B", "1.5 KiB", "5.0 GiB"]


def test_an_output_that_a_kept_one_refers_to_is_kept(tmp_path: Path) -> None:
    """A reused output whose records refer to an input's records (engine/refs.py) keeps that input's
    older key alive: the input's code version changed, its records did not, so the reader stayed cached."""

    def extend(ctx: StepContext) -> StepOutput:
        (src,) = ctx.step.input_ids
        for key, _ in ctx.items(src):
            ctx.emit(key, {"extra": key}, base=(src, key))
        return StepOutput()

    def registry(gen_version: str) -> FakeRegistry:
        reg = FakeRegistry()
        reg.modules["ext"] = reg._module("ext", extend)
        reg.modules["gen"] = SimpleNamespace(**{**vars(reg.modules["gen"]), "VERSION": gen_version})
        return reg

    p = make_plan([("gen.rows", {"n": 4}, []), ("ext.more", {}, ["gen.rows"])])
    _, first = run(tmp_path, p, registry("1"))
    reg, second = run(tmp_path, p, registry("2"))
    assert second["gen.rows"] != first["gen.rows"] and second["ext.more"] == first["ext.more"]
    assert set(reg.calls) == {"gen.rows"}  # same records: the reader is reused, still referring to the old key

    report = clean(p, tmp_path, registry=registry("2"))
    assert first["gen.rows"] not in {e.key for e in report.entries}
    with Store(tmp_path) as store:
        rows = dict(store.records(second["ext.more"]))
    assert rows["00002"]["extra"] == "00002" and rows["00002"]["i"] == 2  # its base record is still readable
    reg, _ = run(tmp_path, p, registry("2"))
    assert not reg.calls


MINI = """
pipeline mini { seed = 7 }
source dialogues { path = "dialogues.jsonl"  roles = [agent, customer] }
task summary { category = summary  instruction = "Summarise the dialogue."  output = text(max = 80) }
expressions style { tone = {formal: 1, friendly: 3} }
sample prompts { from = dialogues * tasks * style  count = 4 }
"""


def test_the_clean_command_reports_and_refuses_during_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line on a model-free spec: a --set run leaves an entry the spec does not use."""
    from pipeline_kit import write_project
    from typer.testing import CliRunner

    from dialc.cli import app

    write_project(tmp_path, spec=MINI.replace("{", "{{").replace("}", "}}"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["run", "kit.dial", "-q", "--set", "sample.prompts.count=3"]).exit_code == 0
    run_dir = tmp_path / "runs" / "mini"
    with run_lock(run_dir):
        locked = runner.invoke(app, ["clean", "kit.dial"])
    assert locked.exit_code == 2 and "another dialc run" in locked.stderr
    dry = runner.invoke(app, ["clean", "kit.dial", "--dry-run"])
    assert dry.exit_code == 0
    assert "would remove 1 cache entry" in dry.stdout and "sample.prompts" in dry.stdout and "3 records" in dry.stdout
    assert "kept 3 cache entries" in dry.stdout  # ingest, tasks, expressions: shared with the spec as written

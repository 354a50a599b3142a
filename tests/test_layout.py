"""The run directory's on-disk names: a user-visible contract (scripts and CI read these files), pinned here."""

from __future__ import annotations

from pathlib import Path

from runtime_fakes import FakeRegistry, make_plan

from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.report.page import write_report

# Spelled out on purpose: changing one of these breaks every existing run directory and the
# scripts that read them, so it must show up as a failing test, not as a refactoring.
CONTRACT = {
    "plan": "plan.json",
    "results": "run_results.json",
    "store": "store.sqlite",
    "artifacts": "artifacts",
    "logs": "logs",
    "report": "report.html",
    "lock": "run.lock",  # issue 14: the PID of the run under way (empty once it ended cleanly)
}


def test_layout_paths_have_the_contract_names(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path)
    for attribute, name in CONTRACT.items():
        assert getattr(layout, attribute) == tmp_path / name
    assert layout.artifact_dir("k1") == tmp_path / "artifacts" / "k1"
    assert layout.log("boom.b") == tmp_path / "logs" / "boom.b.log"
    assert layout.quarantine("k1") == tmp_path / "artifacts" / "k1" / "quarantine.txt"
    # issue 13: named outputs (only a run with an export or a fine-tune writes them)
    assert layout.outputs == tmp_path / "outputs"
    assert layout.named_output("dataset") == tmp_path / "outputs" / "dataset"
    assert layout.outputs_index == tmp_path / "outputs" / "index.json"


def test_a_layout_takes_a_string_and_is_a_value(tmp_path: Path) -> None:
    assert RunLayout(str(tmp_path)) == RunLayout(tmp_path)  # type: ignore[arg-type]
    assert RunLayout(str(tmp_path)).plan == tmp_path / "plan.json"  # type: ignore[arg-type]
    assert len({RunLayout(tmp_path), RunLayout(tmp_path)}) == 1


def test_a_run_writes_exactly_the_contract_files(tmp_path: Path) -> None:
    """A real (fake-step) run, then its report: what a user finds in the run directory."""
    plan = make_plan([("gen.a", {"n": 2}, []), ("files.f", {}, ["gen.a"]), ("boom.b", {}, [])])
    results = execute(plan, tmp_path, registry=FakeRegistry(), quiet=True)
    assert write_report(tmp_path) == tmp_path / "report.html"
    top = {p.name for p in tmp_path.iterdir() if not p.name.startswith("store.sqlite-")}  # WAL side files
    assert top == set(CONTRACT.values())
    key = results.step("files.f").key
    assert key and (tmp_path / "artifacts" / key / "out.txt").is_file()
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["boom.b.log"]
    assert results.step("boom.b").log == "logs/boom.b.log"  # recorded relative to the run directory

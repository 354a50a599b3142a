"""A CPU-bound step beside another runs in a child process (engine/offload.py): same records, digests and
cache as in this process; its progress, warnings, usage, failures, bugs, death and Ctrl-C reach the run."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import offload_steps
import pytest
from runtime_fakes import FakeRegistry, make_plan

from dialc_runtime.engine import offload
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.results import load_results
from dialc_runtime.engine.store import Store

SERVED = {"backend": "openai", "path": "judge", "base_url": "http://127.0.0.1:9/v1"}


@pytest.fixture(autouse=True)
def small_inputs_offload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offload, "OFFLOAD_MIN_RECORDS", 1)


def registry(**extra: Any) -> FakeRegistry:
    reg = FakeRegistry()
    reg.modules["cpu"] = offload_steps
    for kind, run in extra.items():
        reg.modules[kind] = SimpleNamespace(VERSION="1", run=run)
    return reg


def plan_with(params: dict[str, Any], n: int = 40) -> Any:
    return make_plan([("gen.src", {"n": n}, []), ("cpu.copy", {"salt": "s", **params}, ["gen.src"]),
                      ("map.other", {"salt": "o"}, ["gen.src"])])


def digests(run_dir: Path, results: Any) -> list[tuple[str, str, str | None, int]]:
    with Store(run_dir) as store:
        return [(s.id, s.status, (store.completed(s.key or "") or SimpleNamespace(digest=None)).digest, s.records)
                for s in results.steps]


def test_a_cpu_bound_step_runs_in_a_child_and_gives_the_records_of_one_run_here(tmp_path: Path) -> None:
    plan = plan_with({})
    here = execute(plan, tmp_path / "one", registry=registry(), quiet=True, jobs=1)
    reg = registry()
    child = execute(plan, tmp_path / "two", registry=reg, quiet=True, jobs=2)
    ran = {s.id: s for s in child.steps}
    assert ran["cpu.copy"].metrics["pid"] != os.getpid()  # it ran in another process
    assert {s.id: s for s in here.steps}["cpu.copy"].metrics["pid"] == os.getpid()
    assert digests(tmp_path / "one", here) == digests(tmp_path / "two", child)
    assert ran["cpu.copy"].warnings == ["copied 40 records"]  # said in the child, recorded here
    assert ran["cpu.copy"].prompt_tokens == 40  # its account reaches the result
    again = execute(plan, tmp_path / "two", registry=reg, quiet=True, jobs=2)
    assert {s.status for s in again.steps} == {"cached"}


def test_small_inputs_and_steps_calling_a_model_stay_in_this_process(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offload, "OFFLOAD_MIN_RECORDS", 41)
    results = execute(plan_with({}), tmp_path / "a", registry=registry(), quiet=True, jobs=2)
    assert {s.id: s for s in results.steps}["cpu.copy"].metrics["pid"] == os.getpid()  # 40 records: here
    monkeypatch.setattr(offload, "OFFLOAD_MIN_RECORDS", 1)
    served = execute(plan_with({"model": SERVED}), tmp_path / "b", registry=registry(), quiet=True, jobs=2)
    assert {s.id: s for s in served.steps}["cpu.copy"].metrics["pid"] == os.getpid()  # it names a model


def test_the_childs_progress_bars_are_drawn_here() -> None:
    seen: list[tuple[str, Any]] = []

    class Bar:
        def advance(self, n: int = 1) -> None:
            seen.append(("advance", n))

    class Factory:
        def __call__(self, total: int | None, description: str) -> Any:
            seen.append(("open", (total, description)))
            import contextlib
            return contextlib.nullcontext(Bar())

    ctx: Any = SimpleNamespace(progress=Factory())
    bars = offload._Bars(ctx)
    for event in [("bar", 1, 7, "copying"), ("advance", 1, 3), ("advance", 1, 4), ("close", 1), ("advance", 1, 9)]:
        offload._relay(event, ctx, bars)
    bars.close()
    assert seen == [("open", (7, "copying")), ("advance", 3), ("advance", 4)]  # nothing after the close


def test_a_failure_in_the_child_fails_the_step_and_keeps_its_records(tmp_path: Path) -> None:
    results = execute(plan_with({"then": "fail", "after": 5}), tmp_path, registry=registry(), quiet=True, jobs=2)
    step = {s.id: s for s in results.steps}["cpu.copy"]
    assert (step.status, step.message, step.records) == ("failed", "the data is bad here", 5)
    assert not step.internal


def test_a_bug_in_the_child_is_reported_with_the_childs_traceback(tmp_path: Path) -> None:
    results = execute(plan_with({"then": "bug", "after": 3}), tmp_path, registry=registry(), quiet=True, jobs=2)
    step = {s.id: s for s in results.steps}["cpu.copy"]
    assert step.status == "failed" and step.internal
    assert step.message == "ZeroDivisionError: division by zero in the step"
    log = (tmp_path / (step.log or "")).read_text(encoding="utf-8")
    assert "offload_steps.py" in log and "_end" in log  # where it happened, in the child
    assert step.records == 3


def test_a_child_killed_fails_the_step_and_its_committed_records_are_kept(tmp_path: Path) -> None:
    results = execute(plan_with({"then": "die", "after": 7}), tmp_path, registry=registry(), quiet=True, jobs=2)
    step = {s.id: s for s in results.steps}["cpu.copy"]
    assert step.status == "failed" and "ended without a result" in step.message and step.records == 7
    assert "exit code -9" in step.message


def test_ctrl_c_stops_the_child_which_keeps_its_records(tmp_path: Path) -> None:
    marker = tmp_path / "committed"

    def stop(ctx: StepContext) -> StepOutput:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise KeyboardInterrupt

    plan = make_plan([("gen.src", {"n": 400}, []),
                      ("cpu.copy", {"then": "mark", "after": 4, "marker": str(marker), "wait": 0.1}, ["gen.src"]),
                      ("stop.now", {}, ["gen.src"])])
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        execute(plan, tmp_path / "run", registry=registry(stop=stop), quiet=True, jobs=2)
    assert time.monotonic() - t0 < 30  # 400 records × 0.1 s were not waited out
    saved = {s.id: s for s in load_results(tmp_path / "run" / "run_results.json").steps}
    assert saved["cpu.copy"].status == "failed" and "interrupted" in saved["cpu.copy"].message
    assert saved["cpu.copy"].records >= 4
    assert not any(t.name.startswith("dialc cpu") for t in threading.enumerate())


def test_real_dimensions_in_children_give_the_outputs_of_a_run_one_step_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The served pipeline of test_schedule (label, rule, judge and dedup dimensions, filter, export) with the
    rule and dedup dimensions in child processes: the same keys, records and digests as --jobs 1."""
    from test_schedule import test_a_served_pipeline_gives_the_same_outputs_with_steps_at_once as same_outputs

    children: list[str] = []
    real = offload.run_in_child

    def counted(module: Any, ctx: Any) -> Any:
        children.append(ctx.step.id)
        return real(module, ctx)

    monkeypatch.setattr("dialc_runtime.engine.executor.run_in_child", counted)
    same_outputs(tmp_path)
    assert sorted(children) == ["score.brief", "score.novel", "score.valid"]  # the judge stayed here


def test_a_child_does_not_outlive_a_run_killed_with_kill_9(tmp_path: Path) -> None:
    """kill -9 of dialc: its child process dies with it (no orphan writing to the store), even one that sends
    the run nothing (no progress bar: a closed pipe would not stop it), and what it committed stays."""
    import signal
    import subprocess
    import sys

    marker = tmp_path / "child.pid"
    script = f"""
import sys
sys.path[:0] = {[str(Path(__file__).parent)]!r}
import offload_steps
from dialc_runtime.engine import offload
from dialc_runtime.engine.executor import execute
from runtime_fakes import FakeRegistry, make_plan
offload.OFFLOAD_MIN_RECORDS = 1
reg = FakeRegistry()
reg.modules["cpu"] = offload_steps
plan = make_plan([("gen.src", {{"n": 400}}, []),
                  ("cpu.copy", {{"then": "mark", "after": 4, "marker": {str(marker)!r}, "wait": 0.1, "bar": False}},
                   ["gen.src"]),
                  ("map.other", {{"salt": "o"}}, ["gen.src"])])
execute(plan, {str(tmp_path / "run")!r}, registry=reg, quiet=True, jobs=2)
"""
    run = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    child = int(marker.read_text())
    os.kill(run.pid, signal.SIGKILL)
    run.wait(10)
    gone = time.monotonic() + 5
    while time.monotonic() < gone and Path(f"/proc/{child}").exists() and "zombie" not in _state(child):
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or "zombie" in _state(child), "the child outlived the run"
    with Store(tmp_path / "run") as store:
        kept = store.db.execute("SELECT COUNT(*) FROM records WHERE step_id = 'cpu.copy'").fetchone()[0]
    assert kept >= 4  # what the child committed before the kill stays


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"

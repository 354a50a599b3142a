"""Interrupted steps resume: records written before a crash or kill -9 are kept, none doubled."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from runtime_fakes import ROOT, FakeRegistry, resume_plan

from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.results import load_results
from dialc_runtime.engine.store import Store

N = 200  # records of the slow step


def all_records(run_dir: Path) -> dict[str, list[tuple[str, Any]]]:
    results = load_results(RunLayout(run_dir).results)
    with Store(run_dir) as store:
        return {s.id: list(store.records(s.key or "")) for s in results.steps}


def stored_count(db_path: Path) -> int:
    try:
        with sqlite3.connect(db_path) as db:
            return int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_crash_then_resume_gives_the_uninterrupted_records(tmp_path: Path) -> None:
    reg = FakeRegistry()
    reg.crash_after["gen.slow"] = 70
    first = execute(resume_plan(N), tmp_path / "a", registry=reg, quiet=True)
    assert first.step("gen.slow").status == "failed" and first.step("gen.slow").records == 70
    assert first.step("map.after").status == "skipped"
    reg.crash_after.clear()
    second = execute(resume_plan(N), tmp_path / "a", registry=reg, quiet=True)
    assert second.step("gen.slow").metrics == {"emitted": N - 70, "resumed": 70}
    execute(resume_plan(N), tmp_path / "b", registry=FakeRegistry(), quiet=True)
    assert all_records(tmp_path / "a") == all_records(tmp_path / "b")


def test_kill_9_mid_step_then_resume(tmp_path: Path) -> None:
    run_a = tmp_path / "a"
    env = {**os.environ, "FAKE_DELAY": "0.01", "PYTHONPATH": str(ROOT)}
    script = [sys.executable, str(ROOT / "tests" / "runtime_fakes.py"), str(run_a), str(N)]
    proc = subprocess.Popen(script, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while stored_count(RunLayout(run_a).store) < 30 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    written = stored_count(RunLayout(run_a).store)
    assert 30 <= written < N

    reg = FakeRegistry()
    resumed = execute(resume_plan(N), run_a, registry=reg, quiet=True)
    gen = resumed.step("gen.slow")
    assert gen.status == "ok" and gen.metrics["resumed"] == written  # nothing committed is lost
    assert gen.metrics["emitted"] + gen.metrics["resumed"] == N
    execute(resume_plan(N), tmp_path / "b", registry=FakeRegistry(), quiet=True)
    assert all_records(run_a) == all_records(tmp_path / "b")


def test_ctrl_c_keeps_records_and_writes_results(tmp_path: Path) -> None:
    reg = FakeRegistry()
    real_gen = reg.modules["gen"]

    def interrupted(ctx: Any) -> Any:
        ctx.emit("00000", {"i": 0, "partial": True})
        raise KeyboardInterrupt

    reg.modules["gen"] = SimpleNamespace(VERSION="1", run=interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute(resume_plan(3), tmp_path, registry=reg, quiet=True)
    gen = load_results(RunLayout(tmp_path).results).step("gen.slow")
    assert gen.status == "failed" and "interrupted" in gen.message and gen.records == 1
    reg.modules["gen"] = real_gen
    assert execute(resume_plan(3), tmp_path, registry=reg, quiet=True).step("gen.slow").metrics == {
        "emitted": 2,
        "resumed": 1,
    }

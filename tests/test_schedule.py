"""Concurrent steps (engine/schedule.py): independent steps overlap, steps on one model never do, and the
records, keys and cache are those of a run one step at a time."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from runtime_fakes import FakeRegistry, make_plan

from dialc.plan import ModelSpec, Step
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.results import load_results
from dialc_runtime.engine.schedule import LOCAL_DEVICE, model_resources
from dialc_runtime.engine.store import Store

SERVED = {"backend": "openai", "path": "judge", "base_url": "http://127.0.0.1:9/v1"}
OTHER = {"backend": "openai", "path": "labeller", "base_url": "http://127.0.0.1:9/v1"}


def registry_with(**kinds: Any) -> FakeRegistry:
    reg = FakeRegistry()
    for kind, run in kinds.items():
        reg.modules[kind] = SimpleNamespace(VERSION="1", run=run)
    return reg


def test_independent_steps_run_at_the_same_time(tmp_path: Path) -> None:
    meet = threading.Barrier(2, timeout=20)  # passes only if both steps are running at once

    def rendezvous(ctx: StepContext) -> StepOutput:
        meet.wait()
        ctx.emit("k", {"step": ctx.step.id})
        return StepOutput()

    plan = make_plan([("meet.rules", {"model": SERVED}, []), ("meet.dedup", {}, [])])
    results = execute(plan, tmp_path, registry=registry_with(meet=rendezvous), quiet=True, jobs=2)
    assert [(s.id, s.status) for s in results.steps] == [("meet.rules", "ok"), ("meet.dedup", "ok")]


def test_steps_on_one_model_never_run_at_once(tmp_path: Path) -> None:
    lock, active, peak = threading.Lock(), Counter[str](), Counter[str]()

    def busy(ctx: StepContext) -> StepOutput:
        name = str((ctx.params.get("model") or {}).get("path", "none"))
        with lock:
            active[name] += 1
            active["all"] += 1
            peak[name], peak["all"] = max(peak[name], active[name]), max(peak["all"], active["all"])
        time.sleep(0.15)
        with lock:
            active[name] -= 1
            active["all"] -= 1
        ctx.emit("k", {"model": name})
        return StepOutput()

    plan = make_plan([("busy.judge1", {"model": SERVED}, []), ("busy.judge2", {"model": SERVED, "x": 1}, []),
                      ("busy.judge3", {"model": {**SERVED, "max_tokens": 9}}, []),
                      ("busy.label", {"model": OTHER}, []), ("busy.rules", {}, [])])
    results = execute(plan, tmp_path, registry=registry_with(busy=busy), quiet=True, jobs=4)
    assert all(s.status == "ok" for s in results.steps)
    assert peak["judge"] == 1  # three steps on one served model: one at a time (max_tokens aside)
    assert peak["all"] >= 2  # the others ran beside them


def test_concurrent_run_gives_the_records_keys_and_cache_of_a_sequential_one(tmp_path: Path) -> None:
    steps = [("gen.a", {"n": 30}, []), ("gen.b", {"n": 20, "salt": "b"}, []),
             ("map.a2", {"salt": "x"}, ["gen.a"]), ("map.b2", {"salt": "y"}, ["gen.b"]),
             ("join.all", {}, ["map.a2", "map.b2", "gen.a"]), ("files.out", {}, ["map.a2", "gen.b"])]
    plan = make_plan(steps)
    one = execute(plan, tmp_path / "one", registry=FakeRegistry(), quiet=True, jobs=1)
    reg = FakeRegistry()
    many = execute(plan, tmp_path / "many", registry=reg, quiet=True, jobs=4)
    assert [s.id for s in many.steps] == [s.id for s in plan.steps]  # reported in plan order
    assert [(s.id, s.status, s.key, s.records) for s in one.steps] == [
        (s.id, s.status, s.key, s.records) for s in many.steps]
    for a, b in zip(one.steps, many.steps, strict=True):
        with Store(tmp_path / "one") as x, Store(tmp_path / "many") as y:
            assert x.completed(a.key or "").digest == y.completed(b.key or "").digest  # type: ignore[union-attr]
    again = execute(plan, tmp_path / "many", registry=reg, quiet=True, jobs=4)
    assert {s.status for s in again.steps} == {"cached"} and sum(reg.calls.values()) == len(steps)


def test_a_step_interrupted_stops_the_others_and_both_are_recorded(tmp_path: Path) -> None:
    started = threading.Event()

    def long(ctx: StepContext) -> StepOutput:
        started.set()
        for i in range(300):  # 30 s unless interrupted
            ctx.emit(f"{i:04d}", {"i": i})
            time.sleep(0.1)
        return StepOutput()

    def ctrl_c(ctx: StepContext) -> StepOutput:
        assert started.wait(20)
        raise KeyboardInterrupt

    plan = make_plan([("long.judge", {}, []), ("stop.rules", {}, [])])
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        execute(plan, tmp_path, registry=registry_with(long=long, stop=ctrl_c), quiet=True, jobs=2)
    assert time.monotonic() - t0 < 20  # the long step did not run to its end
    saved = {s.id: s for s in load_results(tmp_path / "run_results.json").steps}
    assert saved["long.judge"].status == saved["stop.rules"].status == "failed"
    assert "interrupted" in saved["long.judge"].message and saved["long.judge"].records >= 1


def test_model_resources() -> None:
    served = ModelSpec(name="j", backend="openai", path="m", base_url="http://h/v1", concurrency=8)
    local = ModelSpec(name="s", path="builtin:smollm2-135m-instruct")
    label = Step(id="label.l", kind="label", name="l", params={"model": served, "seed": 1})
    tuned = Step(id="label.t", kind="label", name="t", params={"model": local, "seed": 1})
    assert model_resources(label) == {"openai http://h/v1 m"}
    assert model_resources(tuned) == {LOCAL_DEVICE}  # in-process models share this machine's device
    plan = make_plan([("x.dims", {"dimensions": [{"kind": "rule"}, {"model": SERVED}]}, [])])
    assert model_resources(plan.steps[0]) == {"openai http://127.0.0.1:9/v1 judge"}


def test_a_served_pipeline_gives_the_same_outputs_with_steps_at_once(tmp_path: Path) -> None:
    """Label, rule, judge and dedup dimensions, filter and export: --jobs 3 against --jobs 1."""
    from pipeline_kit import compile_spec
    from test_backend_openai import Scripted
    from test_hostile_runs import openai_project

    server = Scripted("--latency", "0.01", "--echo-prompt")
    try:
        outputs = []
        for jobs in (1, 3):
            spec = openai_project(tmp_path / f"j{jobs}", server.url, extra="concurrency = 4")
            text = spec.read_text().replace(
                "dimension brief rule { check = length  max = 200 }",
                "dimension brief rule { check = length  max = 200 }\n"
                "  dimension helpful judge { model = tiny  scale = 1..5  method = choice  rubric = \"Useful?\" }\n"
                "  dimension novel dedup { threshold = 0.9 }")
            assert "dimension helpful judge" in text
            spec.write_text(text)
            results = execute(compile_spec(spec), tmp_path / f"j{jobs}" / "run", quiet=True, jobs=jobs)
            with Store(tmp_path / f"j{jobs}" / "run") as store:
                outputs.append([(s.id, s.status, s.key, s.records, (store.completed(s.key or "") or s).digest)
                                for s in results.steps])
    finally:
        server.close()
    assert {row[1] for row in outputs[0]} == {"ok"}
    assert any(row[0].startswith("score.") for row in outputs[0])
    assert outputs[0] == outputs[1]

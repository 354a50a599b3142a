"""Shards of a record-level step (engine/shards.py, no Ray): they end where a model batch ends, a lost shard is
taken up after its last complete batch, and a step run shard by shard decodes the batches and makes the records
of the step run whole. The local engine never imports Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runtime_fakes import ROOT, MemoryContext
from typer.testing import CliRunner

from dialc.cli import app
from dialc_runtime.engine.shards import Entry, Shard, ShardContext, ShardTask, cut, remainder, shard_rule
from dialc_runtime.models.base import GenRequest, GenResult
from dialc_runtime.steps import expressions as expressions_step
from dialc_runtime.steps import label as label_step

MODEL = {"name": "m", "backend": "transformers", "path": "x", "batch_size": 4, "max_tokens": 16}


def entries(units: list[int]) -> list[Entry]:
    return [Entry("in", f"{i:03d}", {}, tuple(f"{i:03d}-{u}" for u in range(n)), n) for i, n in enumerate(units)]


def test_shards_end_where_a_model_batch_ends() -> None:
    shards = list(cut(entries([1] * 10), batch=4, size=8))
    assert [s.units for s in shards] == [8, 2]
    three = list(cut(entries([3] * 9), batch=4, size=4))  # 3 requests per entry: a batch ends every 4 entries
    assert [s.units for s in three] == [12, 12, 3]
    assert [len(s.entries) for s in cut(entries([1, 0, 0, 1, 1, 1]), batch=2, size=2)] == [2, 2]  # no idle entries


def test_a_lost_shard_is_taken_up_after_its_last_complete_batch() -> None:
    (shard,) = cut(entries([1] * 12), batch=4, size=12)
    stored = {k for e in shard.entries[:6] for k in e.outputs}  # one batch and half of the next
    rest = remainder(shard, stored, {}, batch=4)
    assert rest is not None and rest.attempt == 1
    assert [e.key for e in rest.entries] == [e.key for e in shard.entries[4:]]
    assert remainder(shard, {k for e in shard.entries for k in e.outputs}, {}, batch=4) is None
    assert remainder(Shard(0, shard.entries[:4]), set(), {}, batch=4) is not None  # nothing stored: all of it


class BatchLog:
    """Answers with a text derived from the request; logs the seeds of each batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        self.batches.append([r.seed for r in requests])
        return [GenResult(text=json.dumps({"n": r.seed % 97}), ok=True,
                          value={"n": r.seed % 97}, attempts=1) for r in requests]


def prompts(n: int) -> list[dict[str, Any]]:
    return [{"id": f"p{i:03d}", "messages": [{"role": "user", "content": f"q{i}"}],
             "output": {"kind": "json", "schema": {"type": "object"}}} for i in range(n)]


def test_a_step_run_shard_by_shard_decodes_the_batches_of_the_whole_run() -> None:
    records = prompts(22)
    whole_log = BatchLog()
    whole = MemoryContext("label.labels", {"model": MODEL, "seed": 3}, {"sample.prompts": records},
                          backend=whole_log)
    label_step.run(whole)  # type: ignore[arg-type]

    step, plan = whole.step, whole.plan
    rule = shard_rule(step)
    assert rule is not None and rule.role == "prompts" and rule.batch == 4
    items = list(whole.items("sample.prompts"))
    shards = list(cut((rule.entry(step.params, "sample.prompts", k, r, {}) for k, r in items), rule.batch, 8))
    assert len(shards) == 3
    sharded_log, emitted = BatchLog(), {}
    for shard in shards:
        task = ShardTask(step, plan, "key", whole.seed, shard, {})
        ctx = ShardContext(task, lambda model: sharded_log, lambda k, r, b: emitted.__setitem__(k, (r, b)))
        label_step.run(ctx)  # type: ignore[arg-type]
    assert sharded_log.batches == whole_log.batches  # the same requests decoded together
    by_key = dict(items)
    rebuilt = {k: {**by_key[b[1]], **r} if b else r for k, (r, b) in emitted.items()}
    assert json.loads(json.dumps(rebuilt)) == whole.emitted


def test_the_local_engine_does_not_import_ray() -> None:
    code = ("import sys; from dialc_runtime.engine.engines import make_engine; "
            "from dialc_runtime.engine import executor; make_engine('local'); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


class Paraphraser:
    """Answers each paraphrase request with an instruction derived from its seed (some too short: filtered)."""

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        out = []
        for r in requests:
            text = "Short." if r.seed % 3 == 0 else f"Rewrite number {r.seed % 1000} of the customer request please."
            out.append(GenResult(text=json.dumps({"instruction": text}), ok=True, value={"instruction": text},
                                 attempts=1))
        return out


def test_paraphrases_made_shard_by_shard_are_those_made_whole() -> None:
    tasks = [{"id": f"t{i}", "category": "c", "instruction": f"Do task number {i} for the customer.",
              "output": {"kind": "text", "max_chars": 80}} for i in range(7)]
    params = {"axes": {"tone": {"formal": 1.0}}, "paraphrase": {"model": MODEL, "n": 3}}
    whole = MemoryContext("expressions.style", params, {"tasks.tasks": tasks}, backend=Paraphraser())
    expressions_step.run(whole)  # type: ignore[arg-type]
    rule = shard_rule(whole.step)
    assert rule is not None and rule.role == "tasks"
    entries = [rule.entry(whole.params, "tasks.tasks", k, r, {}) for k, r in whole.items("tasks.tasks")]
    shards = list(cut(entries, rule.batch, 4))
    assert [s.units for s in shards] == [12, 9]  # 4 tasks × 3 paraphrases fill 3 batches of 4
    emitted: dict[str, Any] = {}
    for shard in shards:
        ctx = ShardContext(ShardTask(whole.step, whole.plan, "key", whole.seed, shard, {}), lambda m: Paraphraser(),
                           lambda k, r, b: emitted.__setitem__(k, r))
        expressions_step.run(ctx)  # type: ignore[arg-type]
    assert json.loads(json.dumps(emitted)) == whole.emitted
    assert any(r.get("filtered") for r in emitted.values())  # the failure filters ran, per task, in the shards


@pytest.mark.parametrize(("args", "message"), [
    (["--engine", "nope"], "unknown engine 'nope' (known: local, ray)"),
    (["--address", "auto"], "--address and --workers are options of --engine ray"),
])
def test_engine_options_are_checked_before_anything_runs(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(ROOT / "specs" / "realestate.dial"), "--run-dir", str(tmp_path),
                                      *args])
    assert result.exit_code == 2 and message in result.stderr
    assert not any(tmp_path.iterdir())  # no run started

"""The score.* and filter.* step modules against a minimal fake StepContext (no store, no model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from runtime_fakes import MemoryContext, make_plan

from dialc.plan import ModelSpec, ScoreParams
from dialc_runtime.errors import StepFailed
from dialc_runtime.models.base import GenRequest, GenResult, ScoreRequest
from dialc_runtime.steps import filter as filter_step
from dialc_runtime.steps import score as score_step

SCHEMA = {
    "type": "object",
    "properties": {
        "budget_max": {"type": ["integer", "null"], "minimum": 0, "maximum": 100000000},
        "bedrooms": {"type": ["integer", "null"], "minimum": 0, "maximum": 10},
    },
    "required": ["budget_max", "bedrooms"],
    "additionalProperties": False,
}
DIALOGUES = [
    {"id": "d1", "scenario": "rental", "turns": [
        {"role": "customer", "text": "I want two bedrooms, budget at most 2,800 a month."}]},
    {"id": "d2", "scenario": "purchase", "turns": [
        {"role": "customer", "text": "We are buying a three-bedroom home for 4.5 million."}]},
]  # fmt: skip


def label(rid: str, dialogue: str, value: Any, ok: bool = True) -> dict[str, Any]:
    return {
        "id": rid,
        "dialogue_id": dialogue,
        "scenario": "rental" if dialogue == "d1" else "purchase",
        "task_id": "extract",
        "category": "extraction",
        "expression": {"tone": "formal", "language": "en"},
        "messages": [{"role": "user", "content": "Extract the customer's requirements."}],
        "output": {"kind": "json", "schema": SCHEMA},
        "answer": json.dumps(value),
        "value": value if ok else None,
        "ok": ok,
        "error": None if ok else "invalid JSON",
    }


LABELS = [
    label("p1", "d1", {"budget_max": 2800, "bedrooms": 2}),  # good
    label("p2", "d1", {"budget_max": 2800, "bedrooms": 2}),  # copy of p1 (same dialogue)
    label("p3", "d1", {"budget_max": 9000, "bedrooms": 2}),  # invented budget
    label("p4", "d2", {"budget_max": 4500000, "bedrooms": 3, "garage": True}),  # extra field
    label("p5", "d2", {"budget_max": 4500000, "bedrooms": 3}),  # good
    label("p6", "d2", None, ok=False),  # labelling failed
]


FakeContext = MemoryContext


def score(dimension: dict[str, Any], **kwargs: Any) -> tuple[FakeContext, Any]:
    inputs = {"label.labels": LABELS, "ingest.dialogues": DIALOGUES}
    ctx = FakeContext(f"score.{dimension['name']}", {"dimension": dimension, "seed": 42}, inputs, **kwargs)
    return ctx, score_step.run(ctx)  # type: ignore[arg-type]


def passed(ctx: FakeContext) -> dict[str, bool | None]:
    return {k: r["passed"] for k, r in ctx.emitted.items()}


def test_schema_rule_step() -> None:
    ctx, out = score({"name": "valid", "kind": "rule", "check": "schema"})
    assert passed(ctx) == {"p1": True, "p2": True, "p3": True, "p4": False, "p5": True, "p6": None}
    assert set(ctx.emitted["p4"]) == {"id", "score", "passed", "detail"}
    assert "unexpected field 'garage'" in ctx.emitted["p4"]["detail"]
    assert ctx.emitted["p6"]["skipped"] is True
    assert (out.metrics["records"], out.metrics["pass_rate"], out.metrics["skipped"]) == (6, 0.8, 1)


def test_grounding_step_joins_the_dialogues() -> None:
    ctx, _ = score({"name": "grounded", "kind": "grounding", "min": 0.3})
    assert passed(ctx) == {"p1": True, "p2": True, "p3": False, "p4": True, "p5": True, "p6": None}
    assert "budget_max=9000" in ctx.emitted["p3"]["detail"]


def test_dedup_step_compares_structured_labels_within_a_dialogue() -> None:
    ctx, out = score({"name": "novel", "kind": "dedup", "method": "minhash", "threshold": 0.85})
    assert passed(ctx) == {"p1": True, "p2": False, "p3": True, "p4": True, "p5": True, "p6": None}
    assert ctx.emitted["p2"]["duplicate_of"] == "p1"
    assert out.metrics["diversity"]["texts"] == 5


class Judge:
    """Says 5 for answers with a bedroom count of 2, else 2; counts the requests it sees."""

    name = "fake"

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        self.requests += requests
        grades = ["5" if '"bedrooms": 2' in r.messages[-1]["content"] else "2" for r in requests]
        return [GenResult(g, True, g, prompt_tokens=30, completion_tokens=1) for g in grades]

    def loglikelihood(self, requests: list[ScoreRequest]) -> list[float]:
        raise RuntimeError("not loaded")


JUDGE = {
    "name": "helpful",
    "kind": "judge",
    "rubric": "Helpful?",
    "scale": [1, 5],
    "method": "choice",
    "model": {"name": "small", "path": "fake", "batch_size": 2},
}


def test_judge_step_scores_in_batches_and_resumes() -> None:
    backend = Judge()
    done = {"p1": {"id": "p1", "score": 1.0, "passed": True, "detail": "judged 5 on 1..5"}}
    ctx, out = score(JUDGE, backend=backend, done=done)
    assert "p1" not in ctx.emitted and len(backend.requests) == 4  # p1 resumed, p6 skipped
    assert {k: r["score"] for k, r in ctx.emitted.items()} == {
        "p2": 1.0, "p3": 1.0, "p4": 0.25, "p5": 0.25, "p6": None}  # fmt: skip
    assert ctx.models == [ModelSpec(**JUDGE["model"]).config()]
    assert out.metrics["records"] == 6 and out.metrics["judged"] == 4
    assert out.metrics["model_calls"] == 4 and out.metrics["prompt_tokens"] == 120
    assert len({r.seed for r in backend.requests}) == 4  # per-record seeds


def test_judge_step_failures_are_recorded_and_warned() -> None:
    ctx, out = score({**JUDGE, "method": "expected"}, backend=Judge())
    assert all(r["score"] is None for r in ctx.emitted.values())
    assert ctx.emitted["p1"]["detail"] == "judge error: not loaded"
    assert out.metrics["failures"] == 5 and ctx.warnings


@pytest.mark.parametrize(
    "dimension",
    [
        {"name": "x", "kind": "vibes"},
        {"name": "x", "kind": "rule", "check": "vibes"},
        {**JUDGE, "model": None},
        {**JUDGE, "batch_size": 2},  # a setting the spec language does not have
    ],
)
def test_bad_dimensions_cannot_be_planned(dimension: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ScoreParams(dimension=dimension, seed=1)


def test_a_reversed_judge_scale_fails_the_step() -> None:
    with pytest.raises(StepFailed, match="scale"):
        score({**JUDGE, "scale": [5, 1]}, backend=Judge())


QUALITY: dict[str, Any] = {
    "dimensions": {
        "valid": {"kind": "rule", "gate": True},
        "novel": {"kind": "dedup", "gate": True},
        "grounded": {"kind": "grounding", "weight": 1},
        "helpful": {"kind": "judge", "weight": 2},
    },
    "keep": {"op": ">=", "left": {"ref": "score"}, "right": 0.6},
    "top_k": 0,
    "expects": [{"metric": "kept_rate", "op": ">=", "value": 0.3}],
}


def scored_inputs() -> dict[str, list[dict[str, Any]]]:
    """Run the four score steps and hand their records to the filter, as the executor would."""
    inputs: dict[str, list[dict[str, Any]]] = {"label.labels": LABELS}
    dims: list[dict[str, Any]] = [
        {"name": "valid", "kind": "rule", "check": "schema"},
        {"name": "novel", "kind": "dedup", "threshold": 0.85},
        {"name": "grounded", "kind": "grounding", "min": 0.3},
    ]
    for dim in dims:
        ctx, _ = score(dim)
        inputs[f"score.{dim['name']}"] = list(ctx.emitted.values())
    ctx, _ = score(JUDGE, backend=Judge())
    inputs["score.helpful"] = list(ctx.emitted.values())
    return inputs


def run_filter(params: dict[str, Any], where: list[str] | None = None) -> tuple[FakeContext, Any]:
    locations = {"expects": where} if where else None
    ctx = FakeContext("filter.quality", params, scored_inputs(), locations=locations)
    return ctx, filter_step.run(ctx)  # type: ignore[arg-type]


def test_filter_keeps_and_rejects_with_reasons() -> None:
    ctx, out = run_filter(QUALITY)
    rows = ctx.emitted
    assert [k for k, r in rows.items() if r["kept"]] == ["p1", "p3"]
    assert rows["p1"]["reason"] == "score 1 >= 0.6"
    assert rows["p2"]["reason"].startswith("gate novel failed: exact duplicate of p1")
    assert rows["p3"]["aggregate"] == pytest.approx((0.5 + 2 * 1.0) / 3, abs=1e-3)
    assert rows["p4"]["reason"].startswith("gate valid failed: $: unexpected field 'garage'")
    assert rows["p5"]["reason"] == "score 0.5 < 0.6"  # (1 grounded + 2 × 0.25 helpful) / 3
    assert rows["p6"]["reason"] == "label failed: invalid JSON"
    first = rows["p1"]
    assert first["scores"] == {"valid": 1.0, "novel": 1.0, "grounded": 1.0, "helpful": 1.0}
    assert first["aggregate"] == 1.0 and first["answer"] == LABELS[0]["answer"]
    assert first["quality"]["helpful"]["cost"]["model_calls"] == 1
    assert out.status == "ok"  # 2 of 6 kept >= 0.3
    metrics = out.metrics
    assert metrics["rejected_by"] == {"gate:novel": 1, "gate:valid": 1, "keep": 1, "label": 1}
    assert metrics["dimensions"]["helpful"]["model_calls"] == 5
    assert metrics["dimensions"]["grounded"]["pass_rate"] == 0.8
    assert metrics["duplicate_rate"] == pytest.approx(1 / 6, abs=1e-3)


def test_grounding_as_a_gate_rejects_the_invented_budget() -> None:
    dims = {**QUALITY["dimensions"], "grounded": {"kind": "grounding", "gate": True}}
    ctx, _ = run_filter({**QUALITY, "dimensions": dims})
    assert ctx.emitted["p3"]["reason"] == "gate grounded failed: ungrounded: budget_max=9000"


def test_failing_expectation_blocks_with_the_spec_location() -> None:
    expects = [
        {"metric": "kept_rate", "op": ">=", "value": 0.5},
        {"metric": "duplicate_rate", "op": "<=", "value": 0.2},
        {"metric": "mean:grounded", "op": ">=", "value": 0.9},
    ]
    where = ["specs/re.dial:40:3", "specs/re.dial:41:3", "specs/re.dial:42:3"]
    ctx, out = run_filter({**QUALITY, "expects": expects}, where)
    assert out.status == "blocked"
    assert out.message == (
        "specs/re.dial:40:3: expect kept_rate >= 0.5 failed: kept_rate is 0.333 over all 6 records\n"
        "specs/re.dial:42:3: expect mean(grounded) >= 0.9 failed: mean(grounded) is 0.75 over the 2 kept records"
    )
    assert len(ctx.emitted) == 6  # every record is still written, for the report
    assert [e["ok"] for e in out.metrics["expects"]] == [False, True, False]


def test_filter_rejects_a_keep_rule_naming_an_unknown_dimension() -> None:
    params = {**QUALITY, "keep": {"op": ">=", "left": {"ref": "helpfull"}, "right": 0.3}}
    with pytest.raises(StepFailed, match="unknown name 'helpfull'"):
        run_filter(params)


def test_judge_estimate_follows_the_sample_count() -> None:
    plan = make_plan([
        ("sample.prompts", {"count": 40, "seed": 1}, []),
        ("label.labels", {"model": JUDGE["model"], "seed": 1}, ["sample.prompts"]),
        ("score.choice", {"dimension": JUDGE, "seed": 1}, ["label.labels"]),
        ("score.expected", {"dimension": {**JUDGE, "method": "expected"}, "seed": 1}, ["label.labels"]),
        ("score.rule", {"dimension": {"name": "rule", "kind": "rule", "check": "schema"}, "seed": 1},
         ["label.labels"]),
    ])  # fmt: skip
    assert score_step.estimate(plan.step("score.choice"), plan)["model_calls"] == 40
    assert score_step.estimate(plan.step("score.expected"), plan)["model_calls"] == 200
    rule = score_step.estimate(plan.step("score.rule"), plan)
    assert rule["model_calls"] == 0 and rule["tokens"] == 0


class FullJudge(Judge):
    """Any scale: top (choice) or "4" (log-likelihood) for answers with two bedrooms."""

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        out = []
        for r in requests:
            options = r.constraint.options
            grade = options[-1] if '"bedrooms": 2' in r.messages[-1]["content"] else options[0]
            out.append(GenResult(grade, True, grade, prompt_tokens=30, completion_tokens=1))
        return out

    def loglikelihood(self, requests: list[ScoreRequest]) -> list[float]:
        best = ["4" if '"bedrooms": 2' in r.messages[-1]["content"] else "2" for r in requests]
        return [-abs(int(r.continuation) - int(b)) for r, b in zip(requests, best, strict=True)]


GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("plan", ["realestate", "support", "judge_dimensions", "minimal"])
def test_steps_run_the_compiled_params_of_the_golden_plans(
    plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the params contract with the compiler: every score/filter step of a real plan."""
    from dialc_runtime.quality import embed

    monkeypatch.setattr(embed, "embed", lambda texts: np.eye(len(texts)))  # no MiniLM here
    steps = json.loads((GOLDEN / f"{plan}.plan.json").read_text(encoding="utf-8"))["steps"]
    outputs: dict[str, list[dict[str, Any]]] = {}

    def feed(step_id: str) -> list[dict[str, Any]]:
        kind = step_id.split(".")[0]
        return {"label": LABELS, "ingest": DIALOGUES}.get(kind) or outputs[step_id]

    for step in steps:
        if step["kind"] not in ("score", "filter"):
            continue
        inputs = {i: feed(i) for ids in step["inputs"].values() for i in ids}
        ctx = FakeContext(step["id"], step["params"], inputs, backend=FullJudge(), locations=step["locations"])
        module = score_step if step["kind"] == "score" else filter_step
        out = module.run(ctx)  # type: ignore[arg-type]
        outputs[step["id"]] = list(ctx.emitted.values())
        assert set(ctx.emitted) == {r["id"] for r in LABELS}
        if step["kind"] == "score":
            assert out.metrics["failures"] == 0, (step["id"], ctx.emitted)
        else:
            assert all(isinstance(r["kept"], bool) and r["reason"] for r in ctx.emitted.values())
            assert out.status == "ok" or plan in out.message.split(":")[0]


class FlatJudge(Judge):
    """The embedded 135M judge: nearly the same probabilities for every scale value, for every record."""

    def loglikelihood(self, requests: list[ScoreRequest]) -> list[float]:
        return [-1.0 - 0.01 * int(r.continuation) - 0.001 * (i % 3) for i, r in enumerate(requests)]


def test_a_judge_that_cannot_separate_records_is_warned_about() -> None:
    """Issue 9: the 135M judge mapped 1–5 to 0.08–0.24, "passed" 100%, and nobody was told."""
    ctx, out = score({**JUDGE, "method": "expected"}, backend=FlatJudge())
    spread = out.metrics["spread"]
    assert spread["n"] == 5 and spread["std"] < 0.05 and spread["max"] - spread["min"] < 0.05
    (warning,) = [w for w in ctx.warnings if "cannot separate records" in w]
    assert warning.startswith("helpful cannot separate records: its 5 scores lie in")
    _, sharp = score(JUDGE, backend=Judge())  # 5 or 2: it separates
    assert sharp.metrics["spread"]["std"] > 0.05


def test_the_filter_reports_each_dimensions_spread_and_agreement() -> None:
    _, out = run_filter(QUALITY)
    helpful = out.metrics["dimensions"]["helpful"]
    assert helpful["spread"]["n"] == 5 and helpful["spread"]["std"] > 0.05
    assert set(helpful["agreement"]) == {"valid", "novel", "grounded"}
    grounded = helpful["agreement"]["grounded"]
    assert grounded["n"] == 5 and (grounded["rho"] is None or -1 <= grounded["rho"] <= 1)

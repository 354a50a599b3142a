"""Production prompts → labelled records: each answered under its task's output constraint, validated."""

from __future__ import annotations

from typing import Any

from dialc.plan import LabelParams, ModelSpec, Plan, Step
from dialc_runtime.data.seeds import derive
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.models.base import Constraint, GenRequest
from dialc_runtime.models.generation import generate_each

VERSION = "3"  # 3: bounded text ends at a sentence end or is truncated; 2: one JSON-schema validator


def request_for(record: dict[str, Any], model: ModelSpec, seed: int) -> GenRequest:
    return GenRequest(messages=tuple(record["messages"]), constraint=Constraint.from_dict(record["output"]),
                      max_tokens=model.max_tokens, temperature=model.temperature, top_p=model.top_p,
                      seed=derive(seed, record["id"]))


def run(ctx: StepContext[LabelParams]) -> StepOutput:
    model = ctx.params.model
    (source,) = ctx.role("prompts")
    todo = [(key, r) for key, r in ctx.items(source) if key not in ctx.done]
    total = ctx.count(source)
    finished = list(ctx.done.values())
    requests = [request_for(r, model, ctx.seed) for _, r in todo]
    for index, result in generate_each(ctx, model, requests, "labelling", done=total - len(todo)):
        key, record = todo[index]
        labelled = _labelled(record, result, model)
        ctx.emit(key, labelled)
        finished.append(labelled)
    return StepOutput(metrics=_metrics(finished))


def _labelled(record: dict[str, Any], result: Any, model: ModelSpec) -> dict[str, Any]:
    return {**record, "answer": result.text, "value": result.value, "ok": result.ok, "error": result.error,
            "attempts": result.attempts, "completion_tokens": result.completion_tokens,
            "trimmed": getattr(result, "trimmed", 0),
            "label_model": model.model_dump(include={"name", "backend", "path", "temperature", "top_p",
                                                     "max_tokens"})}


def _metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Validity and retries: the share of constrained outputs that needed more than one attempt."""
    n = len(records) or 1
    retried = sum(1 for r in records if r.get("attempts", 1) > 1)
    return {"labelled": len(records), "valid": sum(1 for r in records if r.get("ok")),
            "invalid_quarantined": sum(1 for r in records if not r.get("ok")),
            "retried": retried, "retry_rate": round(retried / n, 4),
            # bounded text: answers that ran into their bound, cut back to a sentence end / quarantined
            "ended_at_sentence": sum(1 for r in records if r.get("ok") and r.get("trimmed")),
            "truncated": sum(1 for r in records if str(r.get("error") or "").startswith("truncated")),
            "valid_rate": round(sum(1 for r in records if r.get("ok")) / n, 4)}


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """One generation per production prompt (retries not counted)."""
    from dialc_runtime.engine.estimates import generation, upstream_count

    assert isinstance(step.params, LabelParams)
    return generation(upstream_count(step, plan), step.params.model)

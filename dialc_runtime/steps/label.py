"""Production prompts → labelled records: each answered under its task's output constraint, validated."""

from __future__ import annotations

from typing import Any

from dialc_runtime.models.base import Constraint, GenRequest
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.data.seeds import derive

VERSION = "1"


def constraint_of(output: dict[str, Any]) -> Constraint:
    """The backend constraint for a task's output declaration."""
    return Constraint(kind=output.get("kind", "text"), schema=output.get("schema"), pattern=output.get("pattern"),
                      options=tuple(output.get("options") or ()), max_chars=output.get("max_chars"))


def request_for(record: dict[str, Any], model: dict[str, Any], seed: int) -> GenRequest:
    return GenRequest(messages=tuple(record["messages"]), constraint=constraint_of(record["output"]),
                      max_tokens=int(model.get("max_tokens", 256)), temperature=float(model.get("temperature", 0.0)),
                      top_p=float(model.get("top_p", 1.0)), seed=derive(seed, record["id"]))


def run(ctx: StepContext) -> StepOutput:
    model = ctx.params["model"]
    source = ctx.step.inputs[0]
    todo = [(key, r) for key, r in ctx.items(source) if key not in ctx.done]
    total = ctx.count(source)
    backend = ctx.backend(model)
    batch = int(model.get("batch_size", 8))
    finished = list(ctx.done.values())
    with ctx.progress(total, "labelling") as bar:
        bar.advance(total - len(todo))
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            results = backend.generate([request_for(r, model, ctx.seed) for _, r in chunk])
            for (key, record), result in zip(chunk, results, strict=True):
                labelled = _labelled(record, result, model)
                ctx.emit(key, labelled)
                finished.append(labelled)
            bar.advance(len(chunk))
    return StepOutput(metrics=_metrics(finished))


def _labelled(record: dict[str, Any], result: Any, model: dict[str, Any]) -> dict[str, Any]:
    return {**record, "answer": result.text, "value": result.value, "ok": result.ok, "error": result.error,
            "attempts": result.attempts, "completion_tokens": result.completion_tokens,
            "label_model": {k: model.get(k) for k in ("name", "backend", "path", "temperature", "top_p",
                                                       "max_tokens")}}


def _metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Validity and retries: the share of constrained outputs that needed more than one attempt."""
    n = len(records) or 1
    retried = sum(1 for r in records if r.get("attempts", 1) > 1)
    return {"labelled": len(records), "valid": sum(1 for r in records if r.get("ok")),
            "invalid_quarantined": sum(1 for r in records if not r.get("ok")),
            "retried": retried, "retry_rate": round(retried / n, 4),
            "valid_rate": round(sum(1 for r in records if r.get("ok")) / n, 4)}


def estimate(step: Any, plan: Any) -> dict[str, int]:
    """One generation per production prompt (retries not counted)."""
    from dialc_runtime.engine.estimates import generation, upstream_count

    return generation(upstream_count(step, plan), step.params["model"])

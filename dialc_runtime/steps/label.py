"""Production prompts → labelled records: each answered under its task's output constraint, validated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dialc.plan import LabelParams, ModelSpec, Plan, Step
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.models.base import Constraint, GenRequest
from dialc_runtime.models.generation import generate_each
from dialc_runtime.quality.best_of import candidate_fields, candidate_id, candidate_seed

VERSION = "4"  # 4: a label refers to its prompt record (stored lean, read whole); 3: bounded text ends at a
#                  sentence end or is truncated; 2: one JSON-schema validator
LABEL_FIELDS = ("answer", "value", "ok", "error", "attempts", "completion_tokens", "trimmed", "label_model")


def request_for(record: dict[str, Any], model: ModelSpec, seed: int, candidate: int = 0) -> GenRequest:
    return GenRequest(messages=tuple(record["messages"]), constraint=Constraint.from_dict(record["output"]),
                      max_tokens=model.max_tokens, temperature=model.temperature, top_p=model.top_p,
                      seed=candidate_seed(seed, record["id"], candidate))


def run(ctx: StepContext[LabelParams]) -> StepOutput:
    """Streams the prompts (each answered `candidates` times): requests are in flight a window at a time, and
    each label is committed as a reference to its prompt plus the label's own fields."""
    model, n = ctx.params.model, ctx.params.candidates
    (source,) = ctx.role("prompts")
    total = ctx.count(source) * n
    tally = Tally()
    for record in ctx.done.values():
        tally.add(record)
    pending: dict[int, tuple[str, str, dict[str, Any]]] = {}  # request index → (key, prompt key, own fields)
    described = label_model(model)  # the same for every label: dumped once, not per record

    def requests() -> Iterator[GenRequest]:
        index = 0
        for key, record in ctx.items(source):
            for k in range(n):
                label_key = candidate_id(key, k, n)
                if label_key not in ctx.done:
                    pending[index] = (label_key, key, candidate_fields(str(record["id"]), k, n))
                    index += 1
                    yield request_for(record, model, ctx.seed, k)

    for index, result in generate_each(ctx, model, requests(), "labelling", done=len(ctx.done),
                                       total=total - len(ctx.done)):
        key, prompt_key, fields = pending.pop(index)
        labelled = {**fields, **_label_fields(result, model, described)}
        ctx.emit(key, labelled, base=(source, prompt_key))
        tally.add(labelled)
    return StepOutput(metrics=tally.metrics())


def label_model(model: ModelSpec) -> dict[str, Any]:
    """The model settings a label records (`label_model`)."""
    return model.model_dump(include={"name", "backend", "path", "temperature", "top_p", "max_tokens"})


def _label_fields(result: Any, model: ModelSpec, described: dict[str, Any] | None = None) -> dict[str, Any]:
    """What labelling adds to a prompt record (`described`: label_model(model), when the caller has it)."""
    return {"answer": result.text, "value": result.value, "ok": result.ok, "error": result.error,
            "attempts": result.attempts, "completion_tokens": result.completion_tokens,
            "trimmed": getattr(result, "trimmed", 0),
            "label_model": label_model(model) if described is None else described}


class Tally:
    """Validity and retries, counted record by record: the share of constrained outputs that needed more than
    one attempt."""

    def __init__(self) -> None:
        self.labelled = self.valid = self.retried = self.trimmed = self.truncated = 0

    def add(self, r: dict[str, Any]) -> None:
        self.labelled += 1
        self.valid += bool(r.get("ok"))
        self.retried += r.get("attempts", 1) > 1
        self.trimmed += bool(r.get("ok") and r.get("trimmed"))
        self.truncated += str(r.get("error") or "").startswith("truncated")

    def metrics(self) -> dict[str, Any]:
        n = self.labelled or 1
        return {"labelled": self.labelled, "valid": self.valid, "invalid_quarantined": self.labelled - self.valid,
                "retried": self.retried, "retry_rate": round(self.retried / n, 4),
                # bounded text: answers that ran into their bound, cut back to a sentence end / quarantined
                "ended_at_sentence": self.trimmed, "truncated": self.truncated,
                "valid_rate": round(self.valid / n, 4)}


def _metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Validity and retries over a list of labelled records (what a Tally counts as they come)."""
    tally = Tally()
    for record in records:
        tally.add(record)
    return tally.metrics()


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """One generation per production prompt and candidate (retries not counted)."""
    from dialc_runtime.engine.estimates import generation, upstream_count

    assert isinstance(step.params, LabelParams)
    return generation(upstream_count(step, plan) * step.params.candidates, step.params.model)

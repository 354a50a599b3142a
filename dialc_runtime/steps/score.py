"""score.<dimension>: labelled records (+ dialogues) → {id, score, passed, detail} per record."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from dialc.plan import JudgeDimension, LabelParams, Plan, SampleParams, ScoreParams, Step
from dialc_runtime.data.seeds import record_seed
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.quality.dedup import Item, find_duplicates
from dialc_runtime.quality.diversity import diversity
from dialc_runtime.quality.grounding import score_grounding
from dialc_runtime.quality.judge import JudgeSpec, judge_records
from dialc_runtime.quality.rules import RULES, rule_name, score_rule
from dialc_runtime.quality.spread import separation_warning, spread
from dialc_runtime.quality.text import compact_json
from dialc_runtime.quality.verdict import Verdict, not_applicable

VERSION = "3"  # 3: grounding discounts verbatim copies, language n/a on choice/regex, text cut at its
#                  bound fails schema; 2: one JSON-schema validator (oneOf, multipleOf, NaN now strict)
JUDGE_BATCH = 8  # records per judge call: one durable commit per batch
SKIPPED = Verdict(None, None, "skipped: label failed", {"skipped": True})


def labelled(ctx: StepContext[ScoreParams]) -> list[dict[str, Any]]:
    """The records of the label steps it scores, in key order."""
    if not ctx.role("labels"):
        raise StepFailed(f"{ctx.step.id} reads no label step (inputs: {ctx.step.inputs})")
    return list(ctx.role_records("labels"))


def dialogues(ctx: StepContext[ScoreParams]) -> dict[str, dict[str, Any]]:
    """The dialogues the labels were made from, by id (empty when the dimension reads none)."""
    return {str(d["id"]): d for d in ctx.role_records("dialogues")}


def load_tokenizer(dim: dict[str, Any]) -> dict[str, Any]:
    """A `length` rule may count a model's tokens: turn its tokenizer path into a tokenizer."""
    path = dim.get("tokenizer")
    if rule_name(dim) != "length" or not isinstance(path, str):
        return dim
    from dialc_runtime.models.loading import load_tokenizer
    from dialc_runtime.models.locate import ModelNotFound

    try:
        return {**dim, "tokenizer": load_tokenizer(path)}
    except ModelNotFound as exc:
        raise StepFailed(f"length rule: cannot load tokenizer {path!r}: {exc}") from exc


def score_each(
    ctx: Any, labels: list[dict[str, Any]], dim: dict[str, Any]
) -> Iterator[tuple[str, Verdict]]:
    """Rule and grounding dimensions: record by record, no model."""
    if dim["kind"] == "rule" and rule_name(dim) not in RULES:
        raise StepFailed(f"unknown rule {rule_name(dim)!r} (known: {', '.join(RULES)})")
    params = load_tokenizer(dim) if dim["kind"] == "rule" else dim
    by_id = dialogues(ctx) if dim["kind"] == "grounding" else {}
    for record in labels:
        key = str(record["id"])
        if key in ctx.done:
            continue
        if not record.get("ok", True):
            yield key, SKIPPED
        elif dim["kind"] == "rule":
            yield key, score_rule(record, params)
        else:
            yield key, score_grounding(record, by_id.get(str(record.get("dialogue_id"))), params)


def dedup_text(record: dict[str, Any], field: str) -> str:
    """What "the same" means: the answer (default), or the production prompt, or both."""
    value = record.get("value")
    if isinstance(value, dict | list):
        answer = compact_json(value)
    else:
        answer = str(record.get("answer") or ("" if value is None else value))
    prompt = "\n".join(str(m.get("content", "")) for m in record.get("messages", []))
    return {"prompt": prompt, "pair": f"{prompt}\n{answer}"}.get(field, answer)


def dedup_scope(record: dict[str, Any], scope: str) -> str:
    """Structured labels (JSON, choice) are compared within their dialogue by default: the same
    extraction from two different dialogues is not a copy, the same prose answer is."""
    kind = (record.get("output") or {}).get("kind", "text")
    if scope == "dialogue" or (scope == "auto" and kind != "text"):
        return str(record.get("dialogue_id"))
    return ""


def score_dedup(
    labels: list[dict[str, Any]], dim: dict[str, Any]
) -> tuple[list[tuple[str, Verdict]], dict[str, Any]]:
    """Every record against the earlier ones (so always all of them); plus diversity figures."""
    field, scope = str(dim.get("field", "answer")), str(dim.get("scope", "auto"))
    usable = [r for r in labels if r.get("ok", True)]
    items = [Item(str(r["id"]), dedup_text(r, field), dedup_scope(r, scope)) for r in usable]
    verdicts = dict(zip((i.id for i in items), find_duplicates(items, dim), strict=True))
    out = [(str(r["id"]), verdicts.get(str(r["id"]), SKIPPED)) for r in labels]
    return out, diversity([i.text for i in items])


Put = Callable[[str, Verdict], None]  # emits one verdict durably


def score_judge(ctx: Any, labels: list[dict[str, Any]], dim: dict[str, Any], put: Put) -> int:
    """Model judge, in batches committed as they finish; returns how many records were judged."""
    try:
        spec = JudgeSpec.from_params(dim)
    except (ValueError, KeyError, TypeError) as exc:
        raise StepFailed(f"judge {dim.get('name')}: {exc}") from exc
    if not isinstance(dim.get("model"), dict):
        raise StepFailed(f"judge {dim.get('name')} names no model")
    pending = [r for r in labels if str(r["id"]) not in ctx.done]
    for record in pending:
        if not record.get("ok", True):
            put(str(record["id"]), SKIPPED)
    todo = [r for r in pending if r.get("ok", True)]
    by_id = dialogues(ctx)
    backend = ctx.backend(dim["model"])  # ctx books its calls and tokens
    size = int(dim["model"].get("batch_size") or JUDGE_BATCH)  # the judge model's batch size
    with ctx.progress(len(todo), f"judging {dim.get('name', '')}") as bar:
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            items = [(r, by_id.get(str(r.get("dialogue_id")))) for r in batch]
            seeds = [record_seed(ctx.seed, str(r["id"])) for r in batch]
            verdicts, _ = judge_records(backend, spec, items, seeds)
            for record, verdict in zip(batch, verdicts, strict=True):
                put(str(record["id"]), verdict)
            bar.advance(len(batch))
    return len(todo)


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean score, pass rate, failures and model usage over the step's records."""
    scored = [r["score"] for r in records if r.get("score") is not None]
    judged = [r["passed"] for r in records if r.get("passed") is not None and not not_applicable(r)]
    cost = [r.get("cost") or {} for r in records]
    return {
        "records": len(records),
        "scored": len(scored),
        "mean": round(sum(scored) / len(scored), 4) if scored else None,
        "pass_rate": round(sum(judged) / len(judged), 4) if judged else None,  # where it applies
        "not_applicable": sum(1 for r in records if not_applicable(r)),
        "failures": sum(1 for r in records if r.get("passed") is None and not r.get("skipped")),
        "skipped": sum(1 for r in records if r.get("skipped")),
        "model_calls": sum(c.get("model_calls", 0) for c in cost),
        "prompt_tokens": sum(c.get("prompt_tokens", 0) for c in cost),
        "completion_tokens": sum(c.get("completion_tokens", 0) for c in cost),
    }


def run(ctx: StepContext[ScoreParams]) -> StepOutput:
    dim: dict[str, Any] = ctx.params.settings()
    kind = dim.get("kind")
    labels = labelled(ctx)
    started = time.perf_counter()
    written: dict[str, Any] = dict(ctx.done)  # an interrupted attempt's records count too
    extra: dict[str, Any] = {}

    def put(key: str, verdict: Verdict) -> None:
        written[key] = verdict.record(key)
        ctx.emit(key, written[key])

    if kind in ("rule", "grounding"):
        with ctx.progress(len(labels), f"scoring {dim.get('name', '')}") as bar:
            for key, verdict in score_each(ctx, labels, dim):
                put(key, verdict)
                bar.advance()
    elif kind == "dedup":
        verdicts, extra["diversity"] = score_dedup(labels, dim)
        for key, verdict in verdicts:
            if key not in ctx.done:
                put(key, verdict)
    elif kind == "judge":
        extra["judged"] = score_judge(ctx, labels, dim, put)
    else:
        raise StepFailed(f"unknown dimension kind {kind!r} (rule, grounding, judge, dedup)")
    return finish(ctx, list(written.values()), dim, time.perf_counter() - started, extra)


def finish(
    ctx: Any, records: list[Any], dim: dict[str, Any], seconds: float, extra: dict[str, Any]
) -> StepOutput:
    """Metrics over the step's records; warn when most could not be assessed."""
    rows = [r for r in records if isinstance(r, dict)]
    metrics = summarise(rows)
    metrics.update(dimension=dim.get("name"), kind=dim.get("kind"), seconds=round(seconds, 3))
    metrics.update(extra)
    metrics["spread"] = spread([float(r["score"]) for r in rows if r.get("score") is not None])
    if metrics["records"] and metrics["failures"] > metrics["records"] / 2:
        ctx.warn(f"{dim.get('name')}: {metrics['failures']} of {metrics['records']} not assessed")
    flat = separation_warning(str(dim.get("name")), metrics["spread"], metrics["pass_rate"])
    if flat and dim.get("kind") == "judge":  # a rule may rightly give one score to all
        ctx.warn(flat)
    return StepOutput(metrics=metrics)


JUDGE_PROMPT_TOKENS = 400  # a typical judge prompt: dialogue, instruction, answer, rubric


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """Dry-run estimate: judges make one call per record (choice) or one per scale value (expected:
    a log-likelihood, no generation); other dimensions call no model."""
    from dialc_runtime.engine.estimates import usage

    assert isinstance(step.params, ScoreParams)
    dim = step.params.dimension
    if not isinstance(dim, JudgeDimension):
        return usage(0, 0, 0)
    labels = [plan.step(s) for s in step.role("labels")]
    samples = [plan.step(s) for label in labels if isinstance(label.params, LabelParams)
               for s in label.role("prompts")]
    records = sum(s.params.count for s in samples if isinstance(s.params, SampleParams))
    per_record = len(JudgeSpec.from_params(step.params.settings()).values) if dim.method == "expected" else 1
    calls = records * per_record
    return usage(calls, calls * JUDGE_PROMPT_TOKENS, 0 if dim.method == "expected" else 2 * calls)

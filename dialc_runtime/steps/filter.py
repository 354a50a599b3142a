"""filter.<quality>: labelled records + every score.* → all records with scores, verdict, reason."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dialc.plan import FilterParams
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.quality.aggregate import (
    MISSING,
    Decision,
    Dimension,
    apply_top_k,
    decide,
    parse_dimensions,
)
from dialc_runtime.quality.expects import check_all, summary
from dialc_runtime.quality.keep import RuleError

VERSION = "3"  # 3: n/a dimensions skipped in keep rules, wiped-out groups; 2: expect messages in spec syntax
WIPED_OUT = 0.1  # a category or scenario keeping at most this share of its candidates is warned about


def read_scores(ctx: StepContext[FilterParams]) -> dict[str, dict[str, dict[str, Any]]]:
    """dimension name → record id → its score record, for every score step it reads."""
    scores = {}
    for step_id in ctx.role("scores"):
        name = ctx.input_step(step_id).name  # a score step is named after its dimension
        scores[name] = {str(r["id"]): r for r in ctx.records(step_id)}
    return scores


def row(record: dict[str, Any], verdicts: dict[str, dict[str, Any]], decision: Decision) -> dict[str, Any]:
    """The emitted record: the label, every dimension's verdict, the aggregate and the decision."""
    quality = {
        name: {k: v for k, v in verdict.items() if k != "id"} for name, verdict in verdicts.items()
    }
    return {
        **record,
        "scores": {name: v.get("score") for name, v in verdicts.items()},
        "quality": quality,
        "aggregate": decision.aggregate,
        "kept": decision.kept,
        "reason": decision.reason,
        "cause": decision.cause,
    }


def decide_all(
    labels: list[dict[str, Any]],
    scores: dict[str, dict[str, dict[str, Any]]],
    dims: dict[str, Dimension],
    params: FilterParams,
) -> list[dict[str, Any]]:
    """Every record's decision (gates, keep rule, then top_k per group) as output rows."""
    per_record = [
        {name: by_id.get(str(r["id"]), MISSING) for name, by_id in scores.items()} for r in labels
    ]
    try:
        decisions = [
            decide(r, v, dims, params.keep) for r, v in zip(labels, per_record, strict=True)
        ]
    except RuleError as exc:
        raise StepFailed(str(exc)) from exc
    decisions = apply_top_k(labels, decisions, params.top_k)
    return [row(r, v, d) for r, v, d in zip(labels, per_record, decisions, strict=True)]


def wiped_out(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each category and scenario that had candidates but kept (nearly) none, with why they went."""
    losses = []
    for key in ("category", "scenario"):
        groups: dict[str, list[dict[str, Any]]] = {}
        for record in rows:
            groups.setdefault(str(record.get(key)), []).append(record)
        for value, members in sorted(groups.items()):
            kept = sum(1 for r in members if r.get("kept"))
            if kept <= WIPED_OUT * len(members):
                causes = Counter(str(r.get("cause")) for r in members if not r.get("kept"))
                losses.append({"key": key, "value": value, "candidates": len(members), "kept": kept,
                               "causes": dict(causes.most_common())})
    return losses


def describe_loss(loss: dict[str, Any]) -> str:
    n, kept = loss["candidates"], loss["kept"]
    causes = ", ".join(f"{cause}: {count}" for cause, count in loss["causes"].items())
    share = f"all {n}" if not kept else f"{n - kept} of {n}"
    return f"filtering removed {share} records of {loss['key']} {loss['value']} ({causes})"


def run(ctx: StepContext[FilterParams]) -> StepOutput:
    dims = parse_dimensions({n: d.model_dump() for n, d in ctx.params.dimensions.items()})
    labels = list(ctx.role_records("labels"))
    scores = read_scores(ctx)
    for name in dims:
        if name not in scores:
            ctx.warn(f"dimension {name} has no score step among the inputs: it counts as missing")
    dims.update({n: Dimension(n) for n in scores if n not in dims})  # unconfigured: weight 1
    rows = decide_all(labels, scores, dims, ctx.params)
    for record in rows:
        if str(record["id"]) not in ctx.done:
            ctx.emit(str(record["id"]), record)
    metrics = summary(rows, list(dims), ctx.seed)
    metrics["wiped_out"] = wiped_out(rows)
    for loss in metrics["wiped_out"]:
        ctx.warn(describe_loss(loss))
    where = ctx.step.locations.get("expects", [])  # kept out of the cache key
    expects = [{**e.model_dump(), "span": where[i] if i < len(where) else ""}
               for i, e in enumerate(ctx.params.expects)]
    metrics["expects"] = check_all(expects, rows)
    failed = [e["message"] for e in metrics["expects"] if not e["ok"]]
    if failed:
        return StepOutput(metrics=metrics, status="blocked", message="\n".join(failed))
    return StepOutput(metrics=metrics)

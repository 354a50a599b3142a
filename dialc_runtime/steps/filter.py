"""filter.<quality>: labelled records + every score.* → all records with scores, verdict, reason.

A global step (top_k, best-of-N and the data set's metrics and `expect` tests look at every record): labels
stream through a page at a time with their verdicts looked up by id, and only a slim row per record (no
prompt, instruction or verdict details) is held for the global view; each output record refers to its label
and stores the filter's own fields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import islice
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
from dialc_runtime.quality.best_of import one_per_prompt, select_best, selection_metrics
from dialc_runtime.quality.expects import check_all, summary
from dialc_runtime.quality.keep import RuleError

VERSION = "4"  # 4: a record refers to its label (stored lean, read whole); 3: n/a dimensions skipped in keep
#                 rules, wiped-out groups; 2: expect messages in spec syntax
#                 (best-of-N selection changes nothing for single labels: no bump)
PAGE = 500  # labels read (and their verdicts looked up) at a time
BULKY = ("messages", "instruction", "lineage", "label_model", "error", "output", "attempts", "completion_tokens",
         "trimmed")  # label fields no global figure reads
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
    return {**record, **own_fields(verdicts, decision)}


def own_fields(verdicts: dict[str, dict[str, Any]], decision: Decision, detail: bool = True) -> dict[str, Any]:
    """What filtering adds to a label: every dimension's verdict (without its `detail` text unless
    `detail`), the scores, the aggregate and the decision."""
    drop = ("id",) if detail else ("id", "detail")
    quality = {
        name: {k: v for k, v in verdict.items() if k not in drop} for name, verdict in verdicts.items()
    }
    return {
        "scores": {name: v.get("score") for name, v in verdicts.items()},
        "quality": quality,
        "aggregate": decision.aggregate,
        "kept": decision.kept,
        "reason": decision.reason,
        "cause": decision.cause,
    }


def score_steps(ctx: StepContext[FilterParams]) -> dict[str, str]:
    """dimension name → the score step it reads for it (a score step is named after its dimension)."""
    return {ctx.input_step(step_id).name: step_id for step_id in ctx.role("scores")}


def label_pages(ctx: StepContext[FilterParams]) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """(label step id, key, label) of every label step it reads, in order, a page at a time."""
    rows = ((step_id, key, r) for step_id in ctx.role("labels") for key, r in ctx.items(step_id))
    while page := list(islice(rows, PAGE)):
        yield page


def verdicts_of(ctx: StepContext[FilterParams], steps: dict[str, str],
                page: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, dict[str, Any]]]:
    """Each label's verdict from every dimension (MISSING where a dimension has none)."""
    ids = [str(r["id"]) for _, _, r in page]
    found = {name: ctx.lookup(step_id, ids) for name, step_id in steps.items()}
    return [{name: by_id.get(i, MISSING) for name, by_id in found.items()} for i in ids]


def slim(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in BULKY}


def decide_streamed(ctx: StepContext[FilterParams], steps: dict[str, str], dims: dict[str, Dimension]
                    ) -> tuple[list[dict[str, Any]], list[Decision], list[dict[str, Any]]]:
    """Every record's decision (gates, keep rule, then best-of-N and top_k over all of them), with the slim
    rows the global figures are computed on and, per record, best-of-N's fields."""
    slims: list[dict[str, Any]] = []
    decisions: list[Decision] = []
    for page in label_pages(ctx):
        for (_, _, record), verdicts in zip(page, verdicts_of(ctx, steps, page), strict=True):
            try:
                decisions.append(decide(record, verdicts, dims, ctx.params.keep))
            except RuleError as exc:
                raise StepFailed(str(exc)) from exc
            slims.append({**slim(record), "quality": {n: {k: v for k, v in x.items() if k != "detail"}
                                                      for n, x in verdicts.items()}})
    decisions, chosen = select_best(slims, decisions)  # best-of-N: one candidate per prompt goes on
    decisions = apply_top_k(slims, decisions, ctx.params.top_k)
    rows = [{**r, **own_fields(r["quality"], d), **c} for r, d, c in zip(slims, decisions, chosen, strict=True)]
    return rows, decisions, chosen


def emit_streamed(ctx: StepContext[FilterParams], steps: dict[str, str], decisions: list[Decision],
                  chosen: list[dict[str, Any]]) -> None:
    """Each record not yet written: a reference to its label plus the filter's own fields."""
    index = 0
    for page in label_pages(ctx):
        todo = [(i, item) for i, item in enumerate(page, index) if str(item[2]["id"]) not in ctx.done]
        index += len(page)
        if not todo:
            continue
        verdicts = verdicts_of(ctx, steps, [item for _, item in todo])
        for (i, (step_id, key, record)), v in zip(todo, verdicts, strict=True):
            ctx.emit(str(record["id"]), {**own_fields(v, decisions[i]), **chosen[i]}, base=(step_id, key))


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
    decisions, chosen = select_best(labels, decisions)  # best-of-N: one candidate per prompt goes on
    decisions = apply_top_k(labels, decisions, params.top_k)
    return [{**row(r, v, d), **c} for r, v, d, c in zip(labels, per_record, decisions, chosen, strict=True)]


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
    steps = score_steps(ctx)
    for name in dims:
        if name not in steps:
            ctx.warn(f"dimension {name} has no score step among the inputs: it counts as missing")
    dims.update({n: Dimension(n) for n in steps if n not in dims})  # unconfigured: weight 1
    rows, decisions, chosen = decide_streamed(ctx, steps, dims)
    emit_streamed(ctx, steps, decisions, chosen)
    rows, candidates = one_per_prompt(rows), rows  # rates and data tests count prompts, not candidates
    metrics = summary(rows, list(dims), ctx.seed)
    metrics.update({"best_of": selection_metrics(candidates)} if len(candidates) > len(rows) else {})
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

"""filter.<quality>: labelled records + every score.* → all records with scores, verdict, reason.

A global step (top_k, best-of-N and the data set's metrics and `expect` tests look at every record): labels
stream through a page at a time with their verdicts looked up by id, and only a slim row per record (no
prompt, instruction, answer text or verdict details), held as columns (quality/columns.py), is kept for the
global view; the kept answers' diversity figures are counted as they pass. Each output record refers to its
label and stores the filter's own fields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from dialc_runtime.quality.best_of import one_per_prompt_indices, select_best, selection_metrics
from dialc_runtime.quality.columns import Table
from dialc_runtime.quality.diversity import DiversityTally
from dialc_runtime.quality.expects import check_all, said, summary
from dialc_runtime.quality.keep import RuleError

VERSION = "4"  # 4: a record refers to its label (stored lean, read whole); 3: n/a dimensions skipped in keep
#                 rules, wiped-out groups; 2: expect messages in spec syntax
#                 (best-of-N selection changes nothing for single labels: no bump)
PAGE = 500  # labels read (and their verdicts looked up) at a time
BULKY = ("messages", "instruction", "lineage", "label_model", "error", "output", "attempts", "completion_tokens",
         "trimmed")  # label fields no global figure reads
TEXT = ("answer", "value")  # what the diversity figures read, counted as the labels pass: not held either
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


def own_fields(verdicts: Mapping[str, Mapping[str, Any]], decision: Decision, detail: bool = True) -> dict[str, Any]:
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
                ids: list[str]) -> list[dict[str, dict[str, Any]]]:
    """Each record's verdict from every dimension (MISSING where a dimension has none)."""
    found = {name: ctx.lookup(step_id, ids) for name, step_id in steps.items()}
    return [{name: by_id.get(i, MISSING) for name, by_id in found.items()} for i in ids]


def for_figures(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """A verdict as the global figures read it: no id or detail, and `duplicate_of` only as true (which record
    it copies is in the emitted record): verdicts alike are then equal, and held once (the view's columns)."""
    out = {k: v for k, v in verdict.items() if k not in ("id", "detail")}
    if out.get("duplicate_of"):
        out["duplicate_of"] = True
    return out


def slim(record: dict[str, Any], drop: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in drop}


def not_held(params: FilterParams) -> frozenset[str]:
    """The label fields the global view leaves out: the bulky ones, and the answer's text (its diversity figures
    are counted as the labels stream past) unless a data test balances over it."""
    named = {e.metric.partition(":")[2] for e in params.expects if e.metric.startswith("balance_p:")}
    return frozenset(BULKY) | (frozenset(TEXT) - named)


def view_table() -> Table:
    """The filter's global view: a row per record as columns (quality: dimension → verdict, nested)."""
    return Table(serial=("id", "prompt_id", "lost_to"), nested=("quality",))


def decision_fields(quality: Mapping[str, Mapping[str, Any]], decision: Decision) -> dict[str, Any]:
    """What the global view adds to a record once decided (its verdicts are there already)."""
    return {"scores": {name: v.get("score") for name, v in quality.items()}, "aggregate": decision.aggregate,
            "kept": decision.kept, "reason": decision.reason, "cause": decision.cause}


def decide_streamed(ctx: StepContext[FilterParams], steps: dict[str, str], dims: dict[str, Dimension]
                    ) -> tuple[Table, list[Decision], list[dict[str, Any]], dict[str, Any]]:
    """Every record's decision (gates, keep rule, then best-of-N and top_k over all of them), with the view the
    global figures are computed on (the filter's own fields added), per record best-of-N's fields, and the kept
    texts' diversity figures. The labels are read once here (twice when best-of-N or top_k drop a record)."""
    table = view_table()
    decisions: list[Decision] = []
    alike: dict[tuple[Decision, type], Decision] = {}  # decisions are frozen: one object for those alike
    drop = not_held(ctx.params)
    texts = DiversityTally()  # the kept texts as they pass (spooled to disk), not held
    for page in label_pages(ctx):
        ids = [str(r["id"]) for _, _, r in page]
        for (_, _, record), verdicts in zip(page, verdicts_of(ctx, steps, ids), strict=True):
            try:
                decision = decide(record, verdicts, dims, ctx.params.keep)
            except RuleError as exc:
                raise StepFailed(str(exc)) from exc
            decisions.append(alike.setdefault((decision, type(decision.aggregate)), decision))
            if decision.kept:
                texts.add(said(record))
            table.append({**slim(record, drop), "quality": {n: for_figures(x) for n, x in verdicts.items()}})
    first = decisions
    decisions, chosen = select_best(table, decisions)  # best-of-N: one candidate per prompt goes on
    decisions = apply_top_k(table, decisions, ctx.params.top_k)
    for i, (decision, extra) in enumerate(zip(decisions, chosen, strict=True)):
        table.update(i, {**decision_fields(table[i]["quality"], decision), **extra})
    if any(a.kept != b.kept for a, b in zip(first, decisions, strict=True)):
        texts.close()  # some went after all (best-of-N, top_k): the kept texts again, read from the labels
        texts = kept_texts(ctx, decisions)
    return table, decisions, chosen, texts.figures(ctx.seed)


def kept_texts(ctx: StepContext[FilterParams], decisions: Sequence[Decision]) -> DiversityTally:
    """The kept records' texts, in order, read from the labels again."""
    texts = DiversityTally()
    index = 0
    for page in label_pages(ctx):
        for i, (_, _, record) in enumerate(page, index):
            if decisions[i].kept:
                texts.add(said(record))
        index += len(page)
    return texts


def label_keys(ctx: StepContext[FilterParams]) -> Iterator[list[tuple[str, str]]]:
    """(label step id, key) of every label, in the order label_pages gives them, a page at a time; the labels
    themselves are not read again."""
    keys = ((step_id, key) for step_id in ctx.role("labels") for key in ctx.keys(step_id))
    while page := list(islice(keys, PAGE)):
        yield page


def emit_streamed(ctx: StepContext[FilterParams], steps: dict[str, str], rows: Sequence[Mapping[str, Any]],
                  decisions: list[Decision], chosen: list[dict[str, Any]]) -> None:
    """Each record not yet written: a reference to its label plus the filter's own fields (its verdicts with
    their details, looked up again by id)."""
    index = 0
    for page in label_keys(ctx):
        todo = [(i, base) for i, base in enumerate(page, index) if str(rows[i]["id"]) not in ctx.done]
        index += len(page)
        if not todo:
            continue
        verdicts = verdicts_of(ctx, steps, [str(rows[i]["id"]) for i, _ in todo])
        for (i, base), v in zip(todo, verdicts, strict=True):
            ctx.emit(str(rows[i]["id"]), {**own_fields(v, decisions[i]), **chosen[i]}, base=base)


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


def wiped_out(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each category and scenario that had candidates but kept (nearly) none, with why they went."""
    losses = []
    keys = ("category", "scenario")
    candidates: dict[str, Counter[str]] = {key: Counter() for key in keys}
    kept: dict[str, Counter[str]] = {key: Counter() for key in keys}
    causes: dict[tuple[str, str], Counter[str]] = {}
    for record in rows:
        for key in keys:
            value = str(record.get(key))
            candidates[key][value] += 1
            if record.get("kept"):
                kept[key][value] += 1
            else:
                causes.setdefault((key, value), Counter())[str(record.get("cause"))] += 1
    for key in keys:
        for value, n in sorted(candidates[key].items()):
            if kept[key][value] <= WIPED_OUT * n:
                why = causes.get((key, value), Counter())
                losses.append({"key": key, "value": value, "candidates": n, "kept": kept[key][value],
                               "causes": dict(why.most_common())})
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
    table, decisions, chosen, diversity = decide_streamed(ctx, steps, dims)
    emit_streamed(ctx, steps, table, decisions, chosen)
    del decisions, chosen
    rows = table.select(one_per_prompt_indices(table))  # rates and data tests count prompts, not candidates
    metrics = summary(rows, list(dims), ctx.seed, diversity)
    metrics.update({"best_of": selection_metrics(table)} if len(table) > len(rows) else {})
    metrics["wiped_out"] = wiped_out(rows)
    for loss in metrics["wiped_out"]:
        ctx.warn(describe_loss(loss))
    where = ctx.step.locations.get("expects", [])  # kept out of the cache key
    expects = [{**e.model_dump(), "span": where[i] if i < len(where) else ""}
               for i, e in enumerate(ctx.params.expects)]
    metrics["expects"] = check_all(expects, rows, diversity)
    failed = [e["message"] for e in metrics["expects"] if not e["ok"]]
    if failed:
        return StepOutput(metrics=metrics, status="blocked", message="\n".join(failed))
    return StepOutput(metrics=metrics)

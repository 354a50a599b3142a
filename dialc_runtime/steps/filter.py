"""filter.<quality>: labelled records + every score.* → all records with scores, verdict, reason.

A global step (top_k, best-of-N and the data set's metrics and `expect` tests look at every record): labels
stream through a page at a time with their verdicts looked up by id, and only a slim row per record (no
prompt, instruction or verdict details) is held for the global view; each output record refers to its label
and stores the filter's own fields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
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
    it copies is in the emitted record): verdicts alike are then equal, and held once (Shared)."""
    out = {k: v for k, v in verdict.items() if k not in ("id", "detail")}
    if out.get("duplicate_of"):
        out["duplicate_of"] = True
    return out


def slim(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in BULKY}


class Row(Mapping[str, Any]):
    """A row of the filter's global view, held compactly: its values in a tuple, its fields' positions in a dict
    shared by every row with the same fields (a dict per row would weigh twice as much). Read like a dict."""

    __slots__ = ("_at", "_values")

    def __init__(self, at: dict[str, int], values: tuple[Any, ...]) -> None:
        self._at, self._values = at, values

    def __getitem__(self, key: str) -> Any:
        return self._values[self._at[key]]

    def get(self, key: str, default: Any = None) -> Any:  # as dict.get, without a raise
        at = self._at.get(key)
        return default if at is None else self._values[at]

    def __contains__(self, key: object) -> bool:
        return key in self._at

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._values)


class Shared:
    """Rows for the global view, each value shared with the rows that have it already (verdicts, score sets,
    expressions, short strings recur across records): held once instead of once per record. Only read."""

    SHORT = 64  # longer strings (answers) are mostly unique: not remembered
    OWN = ("id", "prompt_id")  # a record's own: never remembered

    def __init__(self) -> None:
        self._strings: dict[str, str] = {}
        self._values: dict[str, Any] = {}  # repr → value: repr tells apart what JSON does (1, 1.0, true; NaN, null)
        self._decisions: dict[tuple[Decision, type], Decision] = {}
        self._shapes: dict[tuple[str, ...], dict[str, int]] = {}
        self._rows: dict[tuple[tuple[str, ...], tuple[int, ...]], Row] = {}  # rows of shared values, by their ids

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return value if len(value) > self.SHORT else self._strings.setdefault(value, value)
        if isinstance(value, dict | list | float):
            return self._values.setdefault(repr(value), value)
        return value  # None, bools and small ints are one object already; the rest is rare

    def decision(self, decision: Decision) -> Decision:
        """The same decision object for records decided alike (decisions are frozen)."""
        return self._decisions.setdefault((decision, type(decision.aggregate)), decision)

    def verdicts(self, quality: Mapping[str, Mapping[str, Any]]) -> Row:
        """A record's verdicts (dimension → verdict) as a row, the same object for records judged alike: each
        verdict is shared, so the same verdicts are the same objects."""
        row = self.row(quality)
        key = (tuple(quality), tuple(id(v) for v in row.values()))
        return self._rows.setdefault(key, row)

    def row(self, fields: Mapping[str, Any]) -> Row:
        """A compact row of these fields, its values shared (a long string repeated within the row, as a text
        label's answer and value, is one object; a nested Row is taken as it is)."""
        values: list[Any] = []
        long: dict[str, str] = {}
        for k, v in fields.items():
            if k in self.OWN or isinstance(v, Row):
                values.append(v)
            elif isinstance(v, str) and len(v) > self.SHORT:
                values.append(long.setdefault(v, v))
            else:
                values.append(self(v))
        names = tuple(fields)
        at = self._shapes.get(names)
        if at is None:
            at = self._shapes[names] = {name: i for i, name in enumerate(names)}
        return Row(at, tuple(values))


def decide_streamed(ctx: StepContext[FilterParams], steps: dict[str, str], dims: dict[str, Dimension]
                    ) -> tuple[list[Row], list[Decision], list[dict[str, Any]]]:
    """Every record's decision (gates, keep rule, then best-of-N and top_k over all of them), with the slim
    rows the global figures are computed on (the filter's own fields added) and, per record, best-of-N's
    fields. The labels are read once, here."""
    rows: list[Row] = []
    decisions: list[Decision] = []
    share = Shared()
    for page in label_pages(ctx):
        ids = [str(r["id"]) for _, _, r in page]
        for (_, _, record), verdicts in zip(page, verdicts_of(ctx, steps, ids), strict=True):
            try:
                decision = decide(record, verdicts, dims, ctx.params.keep)
            except RuleError as exc:
                raise StepFailed(str(exc)) from exc
            decisions.append(share.decision(decision))
            quality = share.verdicts({n: for_figures(x) for n, x in verdicts.items()})
            rows.append(share.row({**slim(record), "quality": quality}))
    decisions, chosen = select_best(rows, decisions)  # best-of-N: one candidate per prompt goes on
    decisions = apply_top_k(rows, decisions, ctx.params.top_k)
    for i, (decision, extra) in enumerate(zip(decisions, chosen, strict=True)):
        fields = own_fields(rows[i]["quality"], decision)
        fields["quality"] = rows[i]["quality"]  # its verdicts hold no id or detail already
        rows[i] = share.row({**rows[i], **fields, **extra})
    return rows, decisions, chosen


def label_keys(ctx: StepContext[FilterParams]) -> Iterator[list[tuple[str, str]]]:
    """(label step id, key) of every label, in the order label_pages gives them, a page at a time; the labels
    themselves are not read again."""
    keys = ((step_id, key) for step_id in ctx.role("labels") for key in ctx.keys(step_id))
    while page := list(islice(keys, PAGE)):
        yield page


def emit_streamed(ctx: StepContext[FilterParams], steps: dict[str, str], rows: Sequence[Row],
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


def wiped_out(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each category and scenario that had candidates but kept (nearly) none, with why they went."""
    losses = []
    for key in ("category", "scenario"):
        groups: dict[str, list[Mapping[str, Any]]] = {}
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
    emit_streamed(ctx, steps, rows, decisions, chosen)
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

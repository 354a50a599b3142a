"""score.<dimension>: labelled records (+ dialogues) → {id, score, passed, detail} per record.

Records stream through (a page at a time; dialogues looked up by id per batch); metrics are counted as the
verdicts are made. Dedup is global (each record against all the earlier ones): MinHash decides each record as it
comes against an index kept in a temporary file, holding no texts in memory.
"""

from __future__ import annotations

import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from dialc.plan import JudgeDimension, LabelParams, Plan, SampleParams, ScoreParams, Step
from dialc_runtime.data.seeds import record_seed
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.quality.best_of import sibling_group
from dialc_runtime.quality.dedup import CHAR_N, WORD_N, Item, MinhashDeduper, find_duplicates
from dialc_runtime.quality.diversity import DiversityTally, diversity
from dialc_runtime.quality.grounding import score_grounding
from dialc_runtime.quality.judge import JudgeSpec, judge_records
from dialc_runtime.quality.rules import RULES, rule_name, score_rule
from dialc_runtime.quality.spread import separation_warning, spread
from dialc_runtime.quality.text import compact_json
from dialc_runtime.quality.verdict import Verdict, not_applicable

CPU_BOUND = True  # a dimension that calls no model runs in a child process beside other steps (engine/offload.py)
VERSION = "4"  # 4: dedup never compares best-of-N siblings (candidates of one prompt); 3: grounding discounts
#                  verbatim copies, language n/a on choice/regex, text cut at its bound fails schema; 2: one
#                  JSON-schema validator (oneOf, multipleOf, NaN now strict)
JUDGE_BATCH = 8  # records per judge call
PAGE = 500  # records scored between two dialogue look-ups
SKIPPED = Verdict(None, None, "skipped: label failed", {"skipped": True})


def labelled(ctx: StepContext[ScoreParams]) -> Iterator[dict[str, Any]]:
    """The records of the label steps it scores, in key order, streamed."""
    if not ctx.role("labels"):
        raise StepFailed(f"{ctx.step.id} reads no label step (inputs: {ctx.step.inputs})")
    return ctx.role_records("labels")


def pages(records: Iterable[dict[str, Any]], size: int = PAGE) -> Iterator[list[dict[str, Any]]]:
    it = iter(records)
    while page := list(islice(it, size)):
        yield page


class Dialogues:
    """The dialogues the labels were made from, by id: only id → where it is stored is held in memory, the
    dialogues of a batch of labels are read when it is scored (none when the dimension reads none)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.where: dict[str, tuple[str, str]] = {}  # dialogue id → (input step id, record key); the last wins
        for step_id in ctx.role("dialogues"):
            for key, dialogue in ctx.items(step_id):
                self.where[str(dialogue["id"])] = (step_id, key)

    def of(self, labels: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Dialogue id → dialogue, for the dialogues these labels were made from."""
        keys: dict[str, list[str]] = {}
        for ref in {self.where[i] for r in labels if (i := str(r.get("dialogue_id"))) in self.where}:
            keys.setdefault(ref[0], []).append(ref[1])
        found: dict[str, dict[str, Any]] = {}
        for step_id, wanted in keys.items():
            found.update({str(d["id"]): d for d in self.ctx.lookup(step_id, sorted(wanted)).values()})
        return found


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
    ctx: Any, labels: Iterable[dict[str, Any]], dim: dict[str, Any]
) -> Iterator[tuple[str, Verdict]]:
    """Rule and grounding dimensions: record by record, no model."""
    if dim["kind"] == "rule" and rule_name(dim) not in RULES:
        raise StepFailed(f"unknown rule {rule_name(dim)!r} (known: {', '.join(RULES)})")
    params = load_tokenizer(dim) if dim["kind"] == "rule" else dim
    source = Dialogues(ctx) if dim["kind"] == "grounding" else None
    for page in pages(r for r in labels if str(r["id"]) not in ctx.done):
        by_id = source.of(page) if source is not None else {}
        for record in page:
            key = str(record["id"])
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
        return sys.intern(str(record.get("dialogue_id")))  # one string per dialogue, however many labels
    return ""


def score_dedup(
    labels: Iterable[dict[str, Any]], dim: dict[str, Any]
) -> tuple[Iterator[tuple[str, Verdict]], dict[str, Any]]:
    """Every record against the earlier ones (so always all of them: global): (key, verdict) in label order,
    streamed, and the diversity figures, filled in once the verdicts are exhausted. MinHash decides each record
    as it comes against an index on disk (memory holds no texts); the embedding method holds each usable
    record's id, compared text and scope."""
    figures: dict[str, Any] = {}
    if dim.get("method", "minhash") == "embedding":
        return _dedup_held(labels, dim, figures), figures
    return _dedup_streamed(labels, dim, figures), figures


def _dedup_item(record: dict[str, Any], field: str, scope: str) -> Item:
    return Item(str(record["id"]), dedup_text(record, field), dedup_scope(record, scope), sibling_group(record))


def _dedup_streamed(labels: Iterable[dict[str, Any]], dim: dict[str, Any],
                    figures: dict[str, Any]) -> Iterator[tuple[str, Verdict]]:
    field, scope = str(dim.get("field", "answer")), str(dim.get("scope", "auto"))
    threshold = float(dim.get("threshold", 0.85))
    word_n, char_n = int(dim.get("ngram", WORD_N)), int(dim.get("char_ngram", CHAR_N))
    tally = DiversityTally()
    with MinhashDeduper(threshold, word_n, char_n) as deduper:
        for r in labels:
            if not r.get("ok", True):
                yield str(r["id"]), SKIPPED
                continue
            item = _dedup_item(r, field, scope)
            tally.add(item.text)
            yield item.id, deduper.verdict(item)
    figures.update(tally.figures())


def _dedup_held(labels: Iterable[dict[str, Any]], dim: dict[str, Any],
                figures: dict[str, Any]) -> Iterator[tuple[str, Verdict]]:
    field, scope = str(dim.get("field", "answer")), str(dim.get("scope", "auto"))
    ids: list[str] = []
    items: list[Item] = []
    for r in labels:
        ids.append(str(r["id"]))
        if r.get("ok", True):
            items.append(_dedup_item(r, field, scope))
    verdicts = dict(zip((i.id for i in items), find_duplicates(items, dim), strict=True))
    figures.update(diversity([i.text for i in items]))
    return ((key, verdicts.get(key, SKIPPED)) for key in ids)


Put = Callable[[str, Verdict], None]  # emits one verdict durably


def score_judge(ctx: Any, labels: Iterable[dict[str, Any]], dim: dict[str, Any], put: Put,
                total: int | None = None) -> int:
    """Model judge, a batch of the model's size at a time, streamed; returns how many records were judged."""
    try:
        spec = JudgeSpec.from_params(dim)
    except (ValueError, KeyError, TypeError) as exc:
        raise StepFailed(f"judge {dim.get('name')}: {exc}") from exc
    if not isinstance(dim.get("model"), dict):
        raise StepFailed(f"judge {dim.get('name')} names no model")
    source = Dialogues(ctx)
    backend = ctx.backend(dim["model"])  # ctx books its calls and tokens
    size = int(dim["model"].get("batch_size") or JUDGE_BATCH)  # the judge model's batch size
    if dim["model"].get("backend") == "openai":  # served: calls of several windows, so the window stays full
        size = max(size, 8 * int(dim["model"].get("concurrency") or size))
    size = max(size, int(getattr(getattr(backend, "inner", None), "page", 0)))  # a Ray Data job per page (ray_llm)
    judged = 0

    def usable() -> Iterator[dict[str, Any]]:  # a failed label is skipped (and said so) on the way
        for record in labels:
            if str(record["id"]) in ctx.done:
                continue
            if record.get("ok", True):
                yield record
            else:
                put(str(record["id"]), SKIPPED)

    with ctx.progress(total, f"judging {dim.get('name', '')}") as bar:
        for batch in pages(usable(), size):  # the same batches as over a list of the usable records
            by_id = source.of(batch)
            items = [(r, by_id.get(str(r.get("dialogue_id")))) for r in batch]
            seeds = [record_seed(ctx.seed, str(r["id"])) for r in batch]
            verdicts, _ = judge_records(backend, spec, items, seeds)
            for record, verdict in zip(batch, verdicts, strict=True):
                put(str(record["id"]), verdict)
            bar.advance(len(batch))
            judged += len(batch)
    return judged


class Summary:
    """Mean score, pass rate, failures and model usage over the step's records, counted one record at a time
    (the scores themselves are kept as doubles, for their spread)."""

    COST = ("model_calls", "prompt_tokens", "completion_tokens")

    def __init__(self) -> None:
        self.records = self.judged = self.passed = self.not_applicable = self.failures = self.skipped = 0
        self.scores = array("d")
        self.cost = dict.fromkeys(self.COST, 0)

    def add(self, r: Any) -> None:
        if not isinstance(r, dict):
            return
        self.records += 1
        if r.get("score") is not None:
            self.scores.append(float(r["score"]))
        if r.get("passed") is not None and not not_applicable(r):
            self.judged += 1
            self.passed += bool(r["passed"])
        self.not_applicable += not_applicable(r)
        self.failures += r.get("passed") is None and not r.get("skipped")
        self.skipped += bool(r.get("skipped"))
        cost = r.get("cost") or {}
        for k in self.COST:
            self.cost[k] += cost.get(k, 0)

    def metrics(self) -> dict[str, Any]:
        n = len(self.scores)
        return {
            "records": self.records,
            "scored": n,
            "mean": round(sum(self.scores) / n, 4) if n else None,
            "pass_rate": round(self.passed / self.judged, 4) if self.judged else None,  # where it applies
            "not_applicable": self.not_applicable,
            "failures": self.failures,
            "skipped": self.skipped,
            **self.cost,
        }


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Mean score, pass rate, failures and model usage over the step's records."""
    tally = Summary()
    for r in records:
        tally.add(r)
    return tally.metrics()


def run(ctx: StepContext[ScoreParams]) -> StepOutput:
    dim: dict[str, Any] = ctx.params.settings()
    kind = dim.get("kind")
    labels = labelled(ctx)
    todo = sum(ctx.count(s) for s in ctx.role("labels")) - len(ctx.done)
    started = time.perf_counter()
    tally = Summary()
    for record in ctx.done.values():  # an interrupted attempt's records count too
        tally.add(record)
    extra: dict[str, Any] = {}

    def put(key: str, verdict: Verdict) -> None:
        record = verdict.record(key)
        ctx.emit(key, record)
        tally.add(record)

    if kind in ("rule", "grounding"):
        with ctx.progress(todo, f"scoring {dim.get('name', '')}") as bar:
            for key, verdict in score_each(ctx, labels, dim):
                put(key, verdict)
                bar.advance()
    elif kind == "dedup":
        verdicts, figures = score_dedup(labels, dim)
        with ctx.progress(todo, f"deduplicating {dim.get('name', '')}") as bar:
            for key, verdict in verdicts:
                if key not in ctx.done:
                    put(key, verdict)
                    bar.advance()
        extra["diversity"] = figures  # complete once the verdicts are
    elif kind == "judge":
        extra["judged"] = score_judge(ctx, labels, dim, put, todo)
    else:
        raise StepFailed(f"unknown dimension kind {kind!r} (rule, grounding, judge, dedup)")
    return finish(ctx, tally, dim, time.perf_counter() - started, extra)


def finish(
    ctx: Any, records: Summary | Iterable[Any], dim: dict[str, Any], seconds: float, extra: dict[str, Any]
) -> StepOutput:
    """Metrics over the step's records (or their running Summary); warn when most could not be assessed."""
    if not isinstance(records, Summary):
        tally = Summary()
        for r in records:
            tally.add(r)
        records = tally
    metrics = records.metrics()
    metrics.update(dimension=dim.get("name"), kind=dim.get("kind"), seconds=round(seconds, 3))
    metrics.update(extra)
    metrics["spread"] = spread(list(records.scores))
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
    candidates = max((x.params.candidates for x in labels if isinstance(x.params, LabelParams)), default=1)
    records = candidates * sum(s.params.count for s in samples if isinstance(s.params, SampleParams))
    per_record = len(JudgeSpec.from_params(step.params.settings()).values) if dim.method == "expected" else 1
    calls = records * per_record
    return usage(calls, calls * JUDGE_PROMPT_TOKENS, 0 if dim.method == "expected" else 2 * calls)

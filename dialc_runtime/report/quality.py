"""RunView → HTML quality sections: dimensions, verdicts, diversity, cost, examples, expects."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dialc_runtime.quality.expects import source_form
from dialc_runtime.quality.spread import separation_warning, spread_counts
from dialc_runtime.report.data import (
    RunView,
    dimension_config,
    dimension_names,
    labelled_by_id,
    stream_scores,
    why_missing,
)
from dialc_runtime.report.html import Raw, join, not_run, pairs, pct, pre, section, table, tag
from dialc_runtime.report.html import verdict_badge as vbadge
from dialc_runtime.report.svg import histogram

EXAMPLES = 2  # best and worst records shown per dimension
EXPECT_SCOPE = ("mean(d), pass_rate(d), mean(score) and distinct_n are computed over the kept records (the data "
                "set that is exported); kept_rate, duplicate_rate and balance_p over all records.")
CHUNK = 1000  # verdicts between two prunings of the example candidates


def _rank(verdict: dict[str, Any]) -> tuple[float, str]:
    """Best first: highest score, then id."""
    return (-float(verdict["score"]), str(verdict.get("id")))


@dataclass
class Tally:
    """One dimension's verdicts as the report uses them, accumulated in one streamed pass: counts, the
    scores as score → records, and the few records the examples show (memory does not grow with the run)."""

    records: int = 0
    scores: Counter[float] = field(default_factory=Counter)
    total: float = 0.0  # sum of the scores, in record order
    judged: int = 0
    passed: int = 0
    best: list[dict[str, Any]] = field(default_factory=list)  # the EXAMPLES best-ranked scored verdicts
    last: list[dict[str, Any]] = field(default_factory=list)  # the 2 × EXAMPLES worst-ranked, worst first

    @property
    def scored(self) -> int:
        return sum(self.scores.values())

    def add(self, verdict: dict[str, Any]) -> bool:
        """Count one verdict; True when it has a score (an example candidate)."""
        self.records += 1
        if verdict.get("passed") is not None and verdict.get("score") is not None:
            self.judged += 1
            self.passed += bool(verdict["passed"])
        if not isinstance(verdict.get("score"), int | float):
            return False
        self.scores[float(verdict["score"])] += 1
        self.total += float(verdict["score"])
        return True

    def keep(self, candidates: list[dict[str, Any]]) -> None:
        """Keep the best and worst of what was kept so far plus `candidates` (ties: the earlier record)."""
        self.best = heapq.nsmallest(EXAMPLES, self.best + candidates, key=_rank)
        self.last = heapq.nlargest(2 * EXAMPLES, self.last + candidates, key=_rank)


def tally(view: RunView, name: str) -> Tally:
    """The dimension's Tally, read once per page."""
    memo = f"tally:{name}"
    if memo not in view.memo:
        view.memo[memo] = tally_of(stream_scores(view, name))
    return view.memo[memo]  # type: ignore[no-any-return]


def tally_of(verdicts: Iterable[dict[str, Any]]) -> Tally:
    """Verdicts streamed into a Tally, the candidate examples kept a CHUNK at a time."""
    t, chunk = Tally(), []
    for verdict in verdicts:
        if t.add(verdict):
            chunk.append(verdict)
        if len(chunk) >= CHUNK:
            t.keep(chunk)
            chunk = []
    t.keep(chunk)
    return t


def dimension_figures(view: RunView, name: str) -> dict[str, Any]:
    """mean, pass rate, counts and cost of one dimension: its score step's metrics, else the
    filter's per-dimension summary, else computed from the verdicts."""
    step = view.step(f"score.{name}")
    if step is not None and step.metrics:
        return dict(step.metrics)
    for filt in view.steps("filter"):
        summary = (filt.metrics.get("dimensions") or {}).get(name)
        if summary:
            return dict(summary)
    t = tally(view, name)
    return {
        "records": t.records,
        "scored": t.scored,
        "mean": t.total / t.scored if t.scored else None,
        "pass_rate": t.passed / t.judged if t.judged else None,
    }


def kept_mean(view: RunView, name: str) -> Any:
    """The dimension's mean over the kept records: what `expect mean(NAME)` tests (None before a filter ran)."""
    for filt in view.steps("filter"):
        summary = (filt.metrics.get("dimensions") or {}).get(name)
        if summary and "kept_mean" in summary:
            return summary["kept_mean"]
    return None


def _role(config: dict[str, Any]) -> str:
    kind = config.get("kind", "?")
    how = "gate" if config.get("gate") else f"weight {config.get('weight', 1)}"
    return f"{kind} · {how}"


def _dimension_card(view: RunView, name: str) -> Raw:
    t = tally(view, name)
    step = view.step(f"score.{name}")
    if not t.records:
        why = f"{step.status}: {step.message}" if step and step.message else "no scores"
        return Raw(f'<div class="card">{tag("h3", name)}{not_run(f"not run ({why})")}</div>')
    m = dimension_figures(view, name)
    figures = pairs([
        ("mean, all scored records", m.get("mean")), (f"mean({name}), kept records", kept_mean(view, name)),
        ("pass rate, all judged records", pct(m.get("pass_rate"))),
        ("scored / records", f"{t.scored} / {t.records}"),
        ("not assessed", m.get("failures", 0)), ("skipped (label failed)", m.get("skipped", 0)),
        ("not applicable (n/a)", m.get("not_applicable", 0)),
        *_spread_rows(view, name, t.scores),
    ])  # fmt: skip
    chart = Raw(histogram(t.scores.elements(), f"{name} score distribution")) if t.scores else not_run("no scores")
    config = dimension_config(view, name)
    judge = config.get("kind") == "judge"
    flat = separation_warning(name, spread_counts(t.scores), m.get("pass_rate")) if judge else None
    said = tag("div", f"warning: {flat}", "diag") if flat else Raw("")
    head = tag("h3", f"{name} ({_role(config)})")
    return Raw(f'<div class="card">{head}{chart}{figures}{said}</div>')


def _spread_rows(view: RunView, name: str, scores: Counter[float]) -> list[tuple[str, Any]]:
    """Spread of the scores (score → records), and their rank agreement with each other dimension (from the filter)."""
    s = spread_counts(scores)
    rows: list[tuple[str, Any]] = []
    if s.get("std") is not None:
        rows.append(("spread: std · min–max · distinct", f"{s['std']:g} · {s['min']:g}–{s['max']:g} · {s['distinct']}"))
    for filt in view.steps("filter"):
        agree = ((filt.metrics.get("dimensions") or {}).get(name) or {}).get("agreement") or {}
        text = ", ".join(f"{other} {'–' if a.get('rho') is None else format(a['rho'], '+.2f')} (n {a.get('n')})"
                         for other, a in agree.items())
        if text:
            rows.append(("agreement with the others (Spearman ρ)", text))
    return rows


def dimensions(view: RunView) -> Raw:
    """One card per quality dimension: score histogram, mean, pass rate."""
    names = dimension_names(view)
    if not names:
        return section("dimensions", "Quality dimensions", not_run(why_missing(view, "score")))
    cards = join(_dimension_card(view, n) for n in names)
    return section("dimensions", "Quality dimensions", Raw(f'<div class="cards">{cards}</div>'))


def _filter_part(view: RunView, step: Any) -> list[Any]:
    m = step.metrics
    figures = pairs([
        ("records", m.get("records")), ("kept", m.get("kept")), ("rejected", m.get("rejected")),
        ("kept rate", pct(m.get("kept_rate"))), ("mean aggregate score (kept)",
                                                  m.get("aggregate_mean")),
        ("duplicate rate", pct(m.get("duplicate_rate"))),
    ])  # fmt: skip
    total = m.get("rejected") or 0
    causes = [(c, n, pct(n / total) if total else "–") for c, n in
              (m.get("rejected_by") or {}).items()]  # fmt: skip
    reasons: Counter[str] = Counter()
    aggregates: Counter[float] = Counter()  # aggregate score → records
    for r in view.stream_own(step):  # the filter's own fields: kept, reason, aggregate
        if not r.get("kept"):
            reasons[str(r.get("reason"))[:200]] += 1
        if isinstance(r.get("aggregate"), int | float):
            aggregates[float(r["aggregate"])] += 1
    parts: list[Any] = [tag("h3", step.id), figures]
    if aggregates:
        parts.append(Raw(histogram(aggregates.elements(), "aggregate score distribution")))
    parts += [
        tag("h3", "rejections by cause"),
        table(["cause", "records", "share"], causes) if causes else not_run("none"),
    ]
    if reasons:
        parts += [tag("h3", "commonest rejection reasons"),
                  table(["reason", "records"], reasons.most_common(10))]  # fmt: skip
    return parts


def kept(view: RunView) -> Raw:
    """Kept and rejected counts, rejection causes and reasons, per filter step."""
    parts: list[Any] = []
    for step in view.steps("filter"):
        parts += _filter_part(view, step) if step.metrics else [
            tag("h3", step.id), not_run(why_missing(view, "filter"))]  # fmt: skip
    parts = parts or [not_run(why_missing(view, "filter"))]
    return section("filter", "Kept and rejected", *parts)


def diversity(view: RunView) -> Raw:
    """distinct-n and pairwise similarity of all labels (dedup steps) and of the kept set."""
    rows = []
    for step in view.steps("score"):
        d = step.metrics.get("diversity")
        if isinstance(d, dict):
            rows.append((f"all usable labels ({step.id})", d))
    for step in view.steps("filter"):
        d = step.metrics.get("diversity")
        if isinstance(d, dict):
            rows.append((f"kept records ({step.id})", d))
    if not rows:
        return section("diversity", "Diversity", not_run(why_missing(view, "filter")))
    body = [(name, d.get("texts"), d.get("distinct_1"), d.get("distinct_2"),
             d.get("mean_pairwise_similarity")) for name, d in rows]  # fmt: skip
    headers = ["records", "texts", "distinct-1", "distinct-2", "mean pairwise similarity"]
    note = tag("p", "distinct-n: unique n-grams / all n-grams (1 = nothing repeats); similarity: "
                    "mean Jaccard of character shingles over sampled pairs.", "notrun")  # fmt: skip
    return section("diversity", "Diversity", table(headers, body), note)


def _cost_row(view: RunView, name: str) -> tuple[Any, ...] | None:
    """One dimension's cost: the work recorded with its scores (a cached step cost nothing now)."""
    step = view.step(f"score.{name}")
    m = dimension_figures(view, name)
    if not m.get("records"):
        return None
    calls = m.get("model_calls", step.model_calls if step else 0)
    prompt = m.get("prompt_tokens", step.prompt_tokens if step else 0)
    completion = m.get("completion_tokens", step.completion_tokens if step else 0)
    seconds = m.get("seconds", step.seconds if step else None)
    kind = dimension_config(view, name).get("kind", "?")
    return (name, kind, calls, prompt, completion, seconds, step.status if step else "–")


def cost(view: RunView) -> Raw:
    """Model calls, tokens and seconds per quality dimension (what producing its scores cost)."""
    names = dimension_names(view)
    found = {name: _cost_row(view, name) for name in names}
    rows = [row for row in found.values() if row is not None]
    if not rows:
        return section("cost", "Cost per dimension", not_run(why_missing(view, "score")))

    def total(i: int) -> Any:
        return round(sum(r[i] for r in rows if isinstance(r[i], int | float)), 3)

    rows.append(("total", "", total(2), total(3), total(4), total(5), ""))
    headers = ["dimension", "kind", "model calls", "prompt tokens", "completion tokens",
               "seconds", "this run"]  # fmt: skip
    missing = [name for name, row in found.items() if row is None]
    note = [not_run(f"not run: {', '.join(missing)}")] if missing else []
    return section("cost", "Cost per dimension", table(headers, rows), *note)


def _example(label: str, verdict: dict[str, Any], record: dict[str, Any]) -> Raw:
    fate = "not filtered"
    if "kept" in record:
        fate = ("kept: " if record["kept"] else "rejected: ") + str(record.get("reason"))
    head = tag("div", f"{label} · {verdict.get('id')} · score {verdict.get('score')} · {fate}")
    instruction = record.get("instruction") or record.get("task_id") or ""
    detail = tag("div", f"detail: {verdict.get('detail') or '–'}", "notrun")
    answer = record.get("answer") if record else None
    return join([head, tag("div", f"task: {instruction}"[:300]), pre(answer, 1500), detail])


def examples(view: RunView) -> Raw:
    """Per dimension, the best- and worst-scored records with their (escaped) answers."""
    chosen = []
    for name in dimension_names(view):
        t = tally(view, name)
        if not t.best:
            continue
        top = float(t.best[0]["score"])  # when every score is the same there is no "worst"
        worst = [v for v in t.last if v not in t.best and float(v["score"]) < top][:EXAMPLES]
        chosen.append((name, t.best, worst))
    wanted = {str(v.get("id")) for _, best, worst in chosen for v in best + worst}
    by_id = labelled_by_id(view, wanted) if wanted else {}
    parts = []
    for name, best, worst in chosen:
        items = [_example("best", v, by_id.get(str(v.get("id")), {})) for v in best]
        items += [_example("worst", v, by_id.get(str(v.get("id")), {})) for v in worst]
        parts.append(Raw(f"<details><summary>{tag('span', name)}</summary>{join(items)}</details>"))
    if not parts:
        return section("examples", "Example records", not_run(why_missing(view, "score")))
    return section("examples", "Example records", *parts)


def expectations(view: RunView) -> Raw:
    """Every `expect` data test with its outcome and spec location."""
    rows = []
    for step in view.steps("filter"):
        for e in step.metrics.get("expects") or []:
            text = e.get("expect") or f"expect {source_form(str(e.get('metric')))} {e.get('op')} {e.get('value')}"
            rows.append((vbadge(bool(e.get("ok"))), text, e.get("actual"), e.get("n", "–"), e.get("span") or
                         step.location(), e.get("message") or ""))  # fmt: skip
    if rows:
        headers = ["result", "expectation", "actual", "n", "location", "message"]
        return section("expectations", "Expectations", table(headers, rows), not_run(EXPECT_SCOPE))
    filt = [s for s in view.steps("filter") if s.metrics]
    text = "no expectations declared" if filt else why_missing(view, "filter")
    return section("expectations", "Expectations", not_run(text))

"""Filtered records → dataset metrics, and `expect` data tests evaluated against them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialc_runtime.quality.diversity import distinct_n
from dialc_runtime.quality.keep import COMPARE, fmt
from dialc_runtime.quality.text import content_text
from dialc_runtime.quality.verdict import not_applicable


def said(record: Mapping[str, Any]) -> str:
    """The text diversity is measured on: a label's words, or its raw answer when it has none
    (a JSON label of numbers only)."""
    return content_text(record).strip() or str(record.get("answer") or "")


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def field_of(record: Mapping[str, Any], key: str) -> Any:
    """A record field, or an expression axis value (balance by tone works like by category)."""
    if key in record:
        return record[key]
    return (record.get("expression") or {}).get(key)


def balance_p(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Chi-square p-value: do kept records keep the input's distribution over `key`?

    The sample step balanced the input on purpose; a small p means filtering skewed it.
    """
    from scipy.stats import chisquare

    before = Counter(str(field_of(r, key)) for r in rows)
    after = Counter(str(field_of(r, key)) for r in rows if r.get("kept"))
    kept = sum(after.values())
    if kept == 0 or len(before) < 2:
        return None if kept == 0 else 1.0
    groups = sorted(before)
    expected = [before[g] / len(rows) * kept for g in groups]
    return round(float(chisquare([after[g] for g in groups], expected).pvalue), 4)


def duplicate_rate(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """Share of all labelled records some dimension found to copy an earlier one."""
    if not rows:
        return None
    dups = sum(any(v.get("duplicate_of") for v in r.get("quality", {}).values()) for r in rows)
    return round(dups / len(rows), 4)


ALL_RECORDS = ("kept_rate", "rejected_rate", "kept", "rejected", "records", "duplicate_rate", "balance_p")


def source_form(name: str) -> str:
    """A plan metric as the spec writes it: "mean:helpful" → "mean(helpful)", "kept_rate" as is."""
    head, colon, arg = name.partition(":")
    return f"{head}({arg})" if colon else name


def metric_scope(name: str, rows: Sequence[Mapping[str, Any]]) -> tuple[int, str]:
    """(n, words) of the records a metric is computed over: all of them (rates, counts, duplicates,
    balance), or the kept ones (means, pass rates, distinct-n: the data set that is exported)."""
    if name.partition(":")[0] in ALL_RECORDS:
        return len(rows), f"over all {len(rows)} records"
    kept = sum(1 for _ in kept_rows(rows))
    return kept, f"over the {kept} kept records"


def kept_rows(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    return (r for r in rows if r.get("kept"))


def metric(name: str, rows: Sequence[Mapping[str, Any]], diversity: Mapping[str, Any] | None = None) -> float | None:
    """One metric by name; `mean:`/`pass_rate:`/`distinct_` describe the kept data set (metric_scope).
    `diversity`: the kept texts' figures counted already (then the rows need not hold the texts)."""
    head, _, arg = name.partition(":")
    if name in ("kept_rate", "rejected_rate"):
        share = sum(1 for _ in kept_rows(rows)) / len(rows) if rows else None
        return None if share is None else round(share if name == "kept_rate" else 1 - share, 4)
    if name in ("kept", "rejected", "records"):
        kept = sum(1 for _ in kept_rows(rows))
        return float({"kept": kept, "rejected": len(rows) - kept}.get(name, len(rows)))
    if name == "duplicate_rate":
        return duplicate_rate(rows)
    if name in ("distinct_1", "distinct_2"):
        if diversity is not None:
            return float(diversity[name])
        return round(distinct_n((said(r) for r in kept_rows(rows)), int(name[-1])), 4)
    if head == "mean" and arg == "score":
        return _mean([r["aggregate"] for r in kept_rows(rows) if r.get("aggregate") is not None])
    if head == "mean":
        return _mean([s for r in kept_rows(rows) if (s := r.get("scores", {}).get(arg)) is not None])
    if head == "pass_rate":  # over the kept records the dimension applies to (n/a ones left out)
        verdicts = (r.get("quality", {}).get(arg) or {} for r in kept_rows(rows))
        passed = [v["passed"] for v in verdicts if v.get("passed") is not None and not not_applicable(v)]
        return _mean([1.0 if p else 0.0 for p in passed])
    if head == "balance_p":
        return balance_p(rows, arg)
    raise KeyError(name)


@dataclass(frozen=True)
class Expectation:
    """One data test: `expect <metric> <op> <value>` at a spec location."""

    metric: str
    op: str
    value: float
    span: str = ""

    def describe(self) -> str:
        return f"expect {source_form(self.metric)} {self.op} {fmt(self.value)}"


def check(expect: Expectation, rows: Sequence[Mapping[str, Any]],
          diversity: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """{metric, op, value, actual, n, ok, expect, message}: the message says, in the spec's syntax,
    what failed, over which records, and where."""
    where = f"{expect.span}: " if expect.span else ""
    name = source_form(expect.metric)
    n, scope = metric_scope(expect.metric, rows)
    try:
        actual = metric(expect.metric, rows, diversity)
    except KeyError:
        actual, why = None, f"unknown metric {name!r}"
    else:
        why = f"{name} has no value {scope}" if actual is None else ""
    ok = actual is not None and expect.op in COMPARE and bool(COMPARE[expect.op](actual, expect.value))
    if actual is not None and not ok:
        why = f"{name} is {fmt(actual)} {scope}"
    message = "" if ok else f"{where}{expect.describe()} failed: {why}"
    return {"metric": expect.metric, "op": expect.op, "value": expect.value, "actual": actual, "n": n,
            "ok": ok, "span": expect.span, "expect": expect.describe(), "message": message}  # fmt: skip


def check_all(expects: list[dict[str, Any]], rows: Sequence[Mapping[str, Any]],
              diversity: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Evaluate every expectation (all of them, so one run reports every failing test)."""
    parsed = [
        Expectation(
            str(e["metric"]), str(e.get("op", ">=")), float(e["value"]), str(e.get("span", ""))
        )
        for e in expects or []
    ]
    return [check(e, rows, diversity) for e in parsed]


def dimension_summary(rows: Sequence[Mapping[str, Any]], name: str, names: list[str] | None = None) -> dict[str, Any]:
    """One dimension over all records: mean, pass rate, failures, model usage (from its records), the
    spread of its scores and their agreement (Spearman) with the other dimensions `names`."""
    from dialc_runtime.quality.spread import agreement, spread

    verdicts = [r.get("quality", {}).get(name) or {} for r in rows]
    scored = [v["score"] for v in verdicts if v.get("score") is not None]
    passed = [v["passed"] for v in verdicts if v.get("passed") is not None and not not_applicable(v)]
    cost = [c for v in verdicts if (c := v.get("cost"))]
    kept = [r["scores"][name] for r in rows if r.get("kept") and r["scores"].get(name) is not None]
    return {
        "mean": _mean(scored),
        "kept_mean": _mean(kept),
        "pass_rate": _mean([1.0 if p else 0.0 for p in passed]),
        "not_applicable": sum(1 for v in verdicts if not_applicable(v)),
        "failures": sum(1 for v in verdicts if v.get("passed") is None and not v.get("skipped")),
        "model_calls": sum(c.get("model_calls", 0) for c in cost),
        "prompt_tokens": sum(c.get("prompt_tokens", 0) for c in cost),
        "completion_tokens": sum(c.get("completion_tokens", 0) for c in cost),
        "spread": spread([float(s) for s in scored]),
        "agreement": agreement(rows, name, names or []),
    }


def summary(rows: Sequence[Mapping[str, Any]], names: list[str], seed: int = 0,
            diversity: dict[str, Any] | None = None) -> dict[str, Any]:
    """The filter step's metrics: counts, rejections by cause, per-dimension figures, balance. `diversity`: the
    kept texts' figures, counted already (else counted here from the rows' answers)."""
    from dialc_runtime.quality.diversity import DiversityTally

    if diversity is None:
        texts = DiversityTally()  # the kept texts one at a time (spooled to disk), not a list of them all
        for r in kept_rows(rows):
            texts.add(said(r))
        diversity = texts.figures(seed)
    kept = sum(1 for _ in kept_rows(rows))
    causes = Counter(str(r.get("cause")) for r in rows if not r.get("kept"))
    return {
        "records": len(rows),
        "kept": kept,
        "rejected": len(rows) - kept,
        "kept_rate": metric("kept_rate", rows),
        "rejected_by": dict(sorted(causes.items())),
        "aggregate_mean": metric("mean:score", rows),
        "duplicate_rate": duplicate_rate(rows),
        "dimensions": {name: dimension_summary(rows, name, names) for name in names},
        "balance": {
            key: dict(sorted(Counter(str(field_of(r, key)) for r in kept_rows(rows)).items()))
            for key in ("scenario", "category")
        },
        "diversity": diversity,
    }

"""Run directory → report.html (offline: inline CSS and SVG) and a terminal summary table."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.results import write_atomic
from dialc_runtime.evaluate.evidence import small_n
from dialc_runtime.report import gold_quality, quality, sections
from dialc_runtime.report.data import RunView, dimension_names, first_with_metrics, open_view
from dialc_runtime.report.html import Raw, not_run, num, page, pairs, pct, section, tag
from dialc_runtime.report.quality import dimension_figures
from dialc_runtime.secrets import redact

if TYPE_CHECKING:
    from rich.table import Table

# (anchor, title, builder): the page's sections in reading order
SECTIONS: list[tuple[str, str, Callable[[RunView], Raw]]] = [
    ("overview", "Run", sections.overview),
    ("labels", "Labels", sections.labels),
    ("balance", "Balance", sections.balance),
    ("dimensions", "Quality", quality.dimensions),
    ("filter", "Kept/rejected", quality.kept),
    ("diversity", "Diversity", quality.diversity),
    ("cost", "Cost", quality.cost),
    ("examples", "Examples", quality.examples),
    ("expectations", "Expectations", quality.expectations),
    ("predicts", "Quality vs gold", gold_quality.predicts),
    ("evaluation", "Evaluation", sections.evaluation),
    ("study", "Study", sections.study),
]


def _safe(anchor: str, title: str, build: Callable[[RunView], Raw], view: RunView) -> Raw:
    """A section, or a note saying why it could not be drawn: one odd record never loses the
    whole report."""
    try:
        return build(view)
    except Exception as exc:  # the report is a by-product of the run: never crash it
        where = traceback.extract_tb(exc.__traceback__)[-1]
        why = f"could not draw this section: {type(exc).__name__}: {exc} ({where.name})"
        return section(anchor, title, not_run(why))


def render(view: RunView) -> str:
    """The whole page for one run."""
    res = view.results
    meta = f"{res.spec} · {res.run_dir} · {res.started} · {sections.run_status(res)}"
    parts = [(a, t, _safe(a, t, build, view)) for a, t, build in SECTIONS]
    summary = _safe("summary", "Key numbers", _key_table, view)
    return page(f"dialc report: {res.pipeline}", meta, [("summary", "Summary", summary), *parts])


def write_report(run_dir: Path) -> Path | None:
    """Write <run_dir>/report.html; None when the directory has no run_results.json."""
    run_dir = Path(run_dir)
    target = RunLayout(run_dir).report
    try:
        with open_view(run_dir) as view:
            if view is None:
                return None
            html = render(view)
    except Exception as exc:  # unreadable run_results.json (or a bug): say so, never crash a run
        why = tag("p", f"{type(exc).__name__}: {exc}", "diag")
        error = section("error", "Error", why)
        html = page("dialc report", str(run_dir), [("error", "Error", error)])
    write_atomic(target, redact(html))  # no API key in a report, whatever a record or message quoted
    return target


def _dims(view: RunView) -> list[tuple[str, str]]:
    """Per dimension: mean(NAME) over the kept records (as `expect` computes it), then the mean and
    pass rate over all scored records."""
    out = []
    for name in dimension_names(view):
        m = dimension_figures(view, name)
        if m.get("mean") is not None or m.get("pass_rate") is not None:
            out.append((f"{name}: mean kept / all, pass rate", f"{num(quality.kept_mean(view, name))} / "
                        f"{num(m.get('mean'))}, {pct(m.get('pass_rate'))}"))  # fmt: skip
    return out


def _eval(view: RunView) -> list[tuple[str, str]]:
    out = []
    for step in view.steps("evaluate"):
        rows = sections.eval_rows(view, step)
        ok = sections.gate_verdict(step, rows)
        out.append(("retention gate", {True: "passed", False: "FAILED", None: "not run"}[ok]))
        for r in rows:
            named = r.get("type") in ("gold", "agreement")  # their names say what they are scored against
            name = r.get("suite") if named else f"{r.get('suite')} ({sections.row_type(r)})"
            out.append((f"{name}: before → after (points)", before_after(r)))
    return out


def before_after(row: dict[str, Any]) -> str:
    """"20.1 → 31.7 (n = 9, change +11.6, 95% CI +0.4 … +23.7; too few items)": every figure with its n and CI."""
    text = f"{num(row.get('before'), 3)} → {num(row.get('after'), 3)}"
    ci, n = row.get("delta_ci"), row.get("n", "?")
    change = row.get("delta")
    extra = f"n = {n}" + (f", change {change:+.1f}" if isinstance(change, int | float) else "")
    extra += f", 95% CI {ci[0]:+.1f} … {ci[1]:+.1f}" if ci else ", no CI"
    said = f": {row['verdict']}" + (" (lower is better)" if row.get("better") == "lower" else "") \
        if row.get("verdict") else ""
    return f"{text} ({extra}{'; too few items' if small_n(row.get('n')) else ''}){said}"


def key_numbers(view: RunView) -> list[tuple[str, str]]:
    """The figures worth a glance, as (name, value) text pairs (shared by HTML and terminal)."""
    res = view.results
    totals = res.totals()
    made = totals["made"]
    out = [
        ("status", sections.run_status(res)),
        ("steps", ", ".join(f"{n} {k}" for k, n in totals["steps"].items()) or "none"),
        ("seconds: this run / the data as made", f"{num(res.seconds)} / {num(made['seconds'])}"),
        ("model calls: this run / the data as made", f"{num(totals['model_calls'])} / {num(made['model_calls'])}"),
        ("tokens: this run / the data as made",
         f"{num(totals['prompt_tokens'] + totals['completion_tokens'])} / {num(made['tokens'])}"),
    ]
    label = first_with_metrics(view, "label")
    if label:
        m = label.metrics
        out.append(("labels valid / retried", f"{pct(m.get('valid_rate'))} / "
                    f"{pct(m.get('retry_rate'))}"))  # fmt: skip
    sample = first_with_metrics(view, "sample")
    for key, report in ((sample.metrics.get("balance") or {}) if sample else {}).items():
        out.append((f"{key} balance p-value", num((report or {}).get("p_value"))))
    filt = first_with_metrics(view, "filter")
    if filt:
        m = filt.metrics
        out.append(("kept / rejected", f"{num(m.get('kept'))} / {num(m.get('rejected'))} "
                    f"(kept {pct(m.get('kept_rate'))})"))  # fmt: skip
        expects = m.get("expects") or []
        if expects:
            out.append(("expectations passed", f"{sum(bool(e.get('ok')) for e in expects)} / "
                        f"{len(expects)}"))  # fmt: skip
    return out + _dims(view) + _eval(view) + _study(view)


def _study(view: RunView) -> list[tuple[str, str]]:
    out = []
    for step in view.steps("study"):
        rows = [r for r in step.metrics.get("tiers") or [] if isinstance(r, dict)]
        for suite, rho in (step.metrics.get("spearman") or {}).items():
            value = "–" if rho is None else f"{rho:+.2f}"
            pairs = [(r.get("mean_quality"), (r.get("scores") or {}).get(suite)) for r in rows]
            verdict = sections.study_verdict(pairs)
            out.append((f"study: quality ⇄ {suite} (Spearman ρ; vs {sections.study_reference(suite)})",
                        f"{value} over {len(rows)} tiers: {verdict}"))
    return out


def _key_table(view: RunView) -> Raw:
    return section("summary", "Key numbers", pairs(key_numbers(view)))


def summary_table(run_dir: Path) -> Table:
    """The key numbers of a run as a rich table (one row when there is nothing to show)."""
    from rich.table import Table

    table = Table(title=f"report: {run_dir}", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]]
    try:
        with open_view(Path(run_dir)) as view:
            rows = key_numbers(view) if view else [("run results", "none (not run yet)")]
    except Exception as exc:  # a summary must not crash the command that prints it
        rows = [("run results", f"unreadable: {type(exc).__name__}: {exc}")]
    for name, value in rows:
        table.add_row(name, str(value))
    return table

"""RunView → the report's "Does quality predict correctness?" section (calibrate steps against a gold set)."""

from __future__ import annotations

from typing import Any

from dialc_runtime.engine.results import StepResult
from dialc_runtime.evaluate.quality_gold import format_best_of
from dialc_runtime.quality.predictive import COLUMNS, CORRECT_TEXT, MIN_CLASS, MIN_ITEMS, Predictiveness, rows
from dialc_runtime.report.data import RunView
from dialc_runtime.report.html import Raw, not_run, pre, section, table, tag

MEANING = (
    "The labeller answered the gold test set's items as it answers production prompts; every quality dimension "
    "scored the answers and the filter's rule decided, and each answer was compared with its hand-written "
    "reference. Spearman ρ: how well the score ranks answers by their correctness. AUC: the chance that a correct "
    "answer scores higher than a wrong one (0.5 is a coin toss; below 0.5 the dimension prefers wrong answers). "
    "correct | kept and correct | rejected: the correct share among the answers the dimension passes and fails "
    "(for score: the keep rule and gates) — a dimension worth its cost keeps a clearly higher share than it "
    "rejects. Intervals are 95% bootstrap intervals over answers. "
    f"No verdict is given under {MIN_ITEMS} scored answers or {MIN_CLASS} in the smaller class."
)
MISSING = ("not measured: add `calibrate = gold(TESTSET)` to the quality block (a calibrate step in the run), or "
           "run `dialc calibrate SPEC --gold`")


def _results(metrics: dict[str, Any]) -> list[Predictiveness]:
    def pair(value: Any) -> tuple[float, float] | None:
        return (float(value[0]), float(value[1])) if isinstance(value, list | tuple) and len(value) == 2 else None

    out = []
    for d in metrics.get("dimensions") or []:
        fixed = {k: pair(d.get(k)) for k in ("rho_ci", "auc_ci", "kept_ci", "rejected_ci")}
        out.append(Predictiveness(**{**d, **fixed}))
    return out


def _part(step: StepResult) -> list[Any]:
    results = _results(step.metrics)
    if not results:
        return [tag("h3", step.id), not_run(f"{step.id}: {step.status} {step.message or ''}".strip())]
    head = (f"{step.metrics.get('labels')} labels of {step.metrics.get('gold_items')} gold items; correct means "
            f"{step.metrics.get('correct_means') or CORRECT_TEXT}.")
    notes = [tag("div", f"note: {r.dimension}: {n}", "diag") for r in results for n in r.notes]
    parts = [tag("h3", step.id), tag("p", head), table(list(COLUMNS), rows(results)), *notes]
    best = step.metrics.get("best_of")
    if best:
        parts += [tag("h4", f"best of {best.get('n')} vs a single label, same gold prompts"),
                  pre(format_best_of(best), limit=4000)]
    return parts


def predicts(view: RunView) -> Raw:
    """One table per calibrate step, with what it means, or how to measure it."""
    parts = [part for step in view.steps("calibrate") for part in _part(step)]
    return section("predicts", "Does quality predict correctness?",
                   *(parts + [tag("p", MEANING)] if parts else [not_run(MISSING)]))

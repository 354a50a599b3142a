"""RunView → HTML sections: run overview, label validity, balance, fine-tuning and evaluation."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from dialc_runtime.engine.results import RunResults, StepResult
from dialc_runtime.evaluate.evidence import evaluation_warnings, small_n, training_warnings
from dialc_runtime.report.data import RunView, first_with_metrics, why_missing
from dialc_runtime.report.html import (
    Raw,
    badge,
    join,
    not_run,
    num,
    pairs,
    pct,
    section,
    table,
    tag,
    verdict_badge,
)
from dialc_runtime.report.svg import grouped_bars

POINTS = "Scores in points (0–100); intervals are 95% bootstrap intervals over items."
MEANING = ("Gold rows score each model's answers on dialogues never trained on against hand-written "
           "references; agreement rows only say how closely the model repeats the labeller's own answers on "
           "held-out prompts. A verdict says \"improved\" or \"dropped\" only when the 95% interval of the "
           "paired change excludes 0.")
ALPHA = 0.05  # below this p-value the achieved proportions differ from the declared ones


def run_status(results: RunResults) -> str:
    """failed (a step failed or was skipped for it), blocked (stopped at a gate), or ok."""
    if not results.ok:
        return "failed"
    return "blocked" if results.by_status("blocked") else "ok"


def _note(step: StepResult) -> str:
    lines = (step.diagnostic() or step.message).splitlines() or [""]
    text = lines[0] + (" …" if len(lines) > 1 else "")  # e.g. the evaluation table: shown below
    if step.warnings:
        text += f" ({len(step.warnings)} warning{'s' * (len(step.warnings) > 1)})"
    return text[:300]


def _made(step: StepResult) -> tuple[Any, Any, Any]:
    """(seconds, model calls, tokens) of making the step's output, this run or an earlier one."""
    m = step.made or {}
    if not m:
        return ("–", "–", "–")
    return (m.get("seconds", "–"), m.get("model_calls", "–"),
            (m.get("prompt_tokens") or 0) + (m.get("completion_tokens") or 0) if "prompt_tokens" in m else "–")


def overview(view: RunView) -> Raw:
    """Run status, totals, and one row per step."""
    res = view.results
    totals = res.totals()
    tokens = totals["prompt_tokens"] + totals["completion_tokens"]
    made = totals["made"]
    unknown = f" ({made['unknown']} cached step(s) stored before costs were)" if made.get("unknown") else ""
    head = pairs([
        ("status", badge(run_status(res))),
        ("spec", res.spec), ("run directory", res.run_dir),
        ("started", res.started), ("finished", res.finished or "unfinished"),
        ("steps", ", ".join(f"{n} {k}" for k, n in totals["steps"].items())),
        ("this run: seconds · model calls · tokens", f"{num(res.seconds)} · {totals['model_calls']} · {tokens}"),
        ("the data as made (cached steps at their first run): seconds · model calls · tokens",
         f"{num(made['seconds'])} · {made['model_calls']} · {made['tokens']}{unknown}"),
    ])  # fmt: skip
    rows = [
        (s.id, s.kind, badge(s.status), s.seconds, s.records, s.model_calls,
         s.prompt_tokens + s.completion_tokens, *_made(s), _note(s))
        for s in res.steps
    ]  # fmt: skip
    headers = ["step", "kind", "status", "seconds", "records", "model calls", "tokens",
               "made in (s)", "calls when made", "tokens when made", "note"]  # fmt: skip
    steps = table(headers, rows) if rows else not_run("no step ran")
    warnings = [f"{s.id}: {w}" for s in res.steps for w in s.warnings]
    extra = [tag("h3", "warnings"), join(tag("div", w, "diag") for w in warnings[:50])]
    problems = [tag("div", p, "diag") for p in view.problems]
    return section("overview", "Run", head, steps, *(extra if warnings else []), *problems)


def label_figures(labelled: int, valid: int, retried: int) -> dict[str, Any]:
    """The label step's metrics, recomputed from its records' counts (for a step that did not finish)."""
    n = labelled or 1
    return {"labelled": labelled, "valid": valid, "valid_rate": valid / n,
            "invalid_quarantined": labelled - valid, "retried": retried,
            "retry_rate": retried / n}  # fmt: skip


def _label_part(view: RunView, step: StepResult) -> list[Any]:
    labelled = valid = retried = 0
    errors: Counter[str] = Counter()
    for r in view.stream_own(step):  # streamed, the label's own fields: only counts are kept
        labelled += 1
        valid += bool(r.get("ok"))
        retried += (r.get("attempts") or 1) > 1
        if not r.get("ok"):
            errors[str(r.get("error") or "no answer")[:160]] += 1
    m = step.metrics or (label_figures(labelled, valid, retried) if labelled else {})
    if not m:
        return [tag("h3", step.id), not_run(why_missing(view, "label"))]
    note = f"partial ({step.status}): from the {labelled} records written so far"
    partial = [] if step.metrics else [not_run(note)]
    figures = pairs([
        ("labelled", m.get("labelled")), ("valid", m.get("valid")),
        ("valid rate", pct(m.get("valid_rate"))),
        ("invalid (quarantined)", m.get("invalid_quarantined")),
        ("retried", m.get("retried")), ("retry rate", pct(m.get("retry_rate"))),
        ("text cut back to a sentence end", m.get("ended_at_sentence")),
        ("truncated at the bound (quarantined)", m.get("truncated")),
    ])  # fmt: skip
    out = [tag("h3", step.id), *partial, figures]
    return out + ([table(["error", "records"], errors.most_common(10))] if errors else [])


def labels(view: RunView) -> Raw:
    """Validity and retry rate of every label step, and the commonest errors."""
    parts = [part for step in view.steps("label") for part in _label_part(view, step)]
    return section("labels", "Labels", *(parts or [not_run(why_missing(view, "label"))]))


def _shares(counts: dict[str, Any]) -> dict[str, float]:
    total = sum(v for v in counts.values() if isinstance(v, int | float)) or 1
    return {k: float(v) / total for k, v in counts.items() if isinstance(v, int | float)}


def _p_text(p: Any) -> Raw:
    if not isinstance(p, int | float):
        return Raw("chi-square p-value: – (fewer than two groups)")
    verdict = "consistent with" if p >= ALPHA else "differs from"
    return Raw(f"chi-square p-value: <b>{num(float(p))}</b> — achieved mix {verdict} the declared "
               f"weights at α = {ALPHA}")  # fmt: skip


def _balance_key(key: str, report: dict[str, Any], kept: dict[str, float] | None) -> list[Raw]:
    declared = report.get("declared") or {}
    achieved = report.get("achieved") or {}
    names = sorted(set(declared) | set(achieved) | set(kept or {}))
    series = ["declared", "sampled"] + (["kept"] if kept is not None else [])

    def values(n: str) -> list[float]:
        row = [float(declared.get(n, 0.0)), float(achieved.get(n, 0.0))]
        return row + ([kept.get(n, 0.0)] if kept is not None else [])

    rows = [(n, *[pct(v) for v in values(n)]) for n in names]
    chart = grouped_bars([(n, values(n)) for n in names], series, f"{key} balance")
    return [tag("h3", key), Raw(f'<div class="cards"><div>{table([key, *series], rows)}</div>'
            f"<div>{chart}</div></div>"), tag("p", _p_text(report.get("p_value")))]  # fmt: skip


def balance(view: RunView) -> Raw:
    """Declared vs sampled (vs kept) proportions per balance key, with the chi-square p-value."""
    title = "Scenario and category balance"
    sample = first_with_metrics(view, "sample")
    if sample is None or not sample.metrics.get("balance"):
        return section("balance", title, not_run(why_missing(view, "sample")))
    reports = sample.metrics["balance"]
    filt = first_with_metrics(view, "filter")
    kept_counts = (filt.metrics.get("balance") or {}) if filt else {}
    parts: list[Any] = [tag("p", f"{sample.id}: {sample.metrics.get('prompts', '–')} prompts")]
    for key, report in reports.items():
        kept = _shares(kept_counts[key]) if key in kept_counts else None
        parts += _balance_key(key, report or {}, kept)
    return section("balance", title, *parts)


def _ci(value: Any, ci: Any, signed: bool = False) -> str:
    if not isinstance(value, int | float):
        return "–"
    text = f"{value:+.1f}" if signed else f"{value:.1f}"
    if isinstance(ci, list | tuple) and len(ci) == 2:
        lo, hi = ci
        text += f" [{lo:+.1f}, {hi:+.1f}]" if signed else f" [{lo:.1f}, {hi:.1f}]"
    return text


def eval_rows(view: RunView, step: StepResult) -> list[dict[str, Any]]:
    """The before/after rows: the step's `table` record, eval.json, or its flat metrics."""
    for record in view.dicts(step):
        if isinstance(record.get("rows"), list):
            return [r for r in record["rows"] if isinstance(r, dict)]
    path = view.artifact(step, "eval.json")
    if path is not None:
        try:
            return list(json.loads(path.read_text(encoding="utf-8")).get("rows") or [])
        except (OSError, ValueError, AttributeError):
            pass
    suites = sorted({k.rsplit(".", 1)[0] for k in step.metrics if k.endswith(".delta")})
    return [
        {"suite": s, **{f: step.metrics.get(f"{s}.{f}") for f in ("before", "after", "delta")}}
        for s in suites
    ]


def gate_verdict(step: StepResult, rows: list[dict[str, Any]]) -> bool | None:
    """True/False from the gated rows (or the step's outcome); None when nothing was gated."""
    gated = [bool(r["ok"]) for r in rows if "ok" in r]
    if gated:
        return all(gated)
    if "retention_ok" in step.metrics:
        return bool(step.metrics["retention_ok"])
    return False if "retention gate failed" in step.message else None


# what each kind of before/after row measures (issue 10: the hold-out is never called domain accuracy)
ROW_TYPES = {"gold": "domain accuracy vs gold references", "general": "general capability",
             "agreement": "agreement with the labeller (not accuracy)"}


def row_type(r: dict[str, Any]) -> str:
    """What a before/after row measures, in words (gold references, general capability, labeller agreement)."""
    return ROW_TYPES.get(str(r.get("type")), "general" if "ok" in r else "domain")


def _said(r: dict[str, Any]) -> str:
    """The verdict in words; "(lower is better)" for rates such as hallucination."""
    return str(r.get("verdict", "–")) + (" (lower is better)" if r.get("better") == "lower" else "")


def _eval_table(rows: list[dict[str, Any]]) -> Raw:
    body = [
        (r.get("suite"), row_type(r), _n(r.get("n")),
         _ci(r.get("before"), r.get("before_ci")), _ci(r.get("after"), r.get("after_ci")),
         _ci(r.get("delta"), r.get("delta_ci"), signed=True), _said(r), r.get("max_drop"),
         verdict_badge(r["ok"]) if "ok" in r else "not gated")
        for r in rows
    ]  # fmt: skip
    headers = ["suite", "measures", "n", "before [95% CI]", "after [95% CI]", "change [95% CI]", "verdict",
               "max drop", "gate"]  # fmt: skip
    return table(headers, body)


def _n(n: Any) -> Any:
    """An item count, flagged when too small to conclude anything."""
    return Raw(f'{n} <span class="diag">too few</span>') if small_n(n) else n


def warnings_of(step: StepResult) -> list[Raw]:
    """The step's warnings (said when it ran or was made), shown beside its figures."""
    return [tag("div", f"warning: {w}", "diag") for w in warnings_text(step)]


def finetune_figures(step: StepResult, warmup: float | None = None) -> Raw:
    """The fine-tune's figures and its small-result warnings (recomputed for outputs made before
    steps recorded them, from the plan's warm-up)."""
    m = step.metrics
    keys = ("records", "held_out", "replayed", "steps", "warmup_steps", "final_loss", "tokens_per_s", "adapter")
    said = warnings_of(step)
    if "warnings" not in m and warmup is not None and isinstance(m.get("records"), int):
        said += [tag("div", f"warning: {w}", "diag") for w in training_warnings(m["records"], m.get("steps") or 0,
                                                                                  warmup)]
    return join([pairs([(k.replace("_", " "), m.get(k)) for k in keys if k in m]), *said])


def evaluation(view: RunView) -> Raw:
    """Fine-tuning figures and the before/after table with the retention gate's verdict."""
    parts: list[Any] = []
    for step in view.steps("finetune"):
        warmup = view.params(step.id).get("warmup")
        parts += [tag("h3", step.id), finetune_figures(step, warmup) if step.metrics else
                  not_run(why_missing(view, "finetune"))]  # fmt: skip
    for step in view.steps("evaluate"):
        rows = eval_rows(view, step)
        parts.append(tag("h3", step.id))
        if not rows:
            parts.append(not_run(why_missing(view, "evaluate")))
            continue
        ok = gate_verdict(step, rows)
        word = {True: "passed", False: "FAILED", None: "not applied"}[ok]
        head = Raw(f'<p class="verdict">retention gate: {verdict_badge(ok)} {word}</p>')
        said = [tag("div", f"warning: {w}", "diag") for w in evaluation_warnings(rows)]
        parts += [head, _eval_table(rows), *said, not_run(POINTS + " " + MEANING)]
    if not parts:
        parts = [not_run(why_missing(view, "evaluate"))]
    return section("evaluation", "Fine-tuning and evaluation", *parts)


STUDY = ("Each tier is the target fine-tuned on an equal share of the labels, best aggregate quality first, "
         "and scored on the same items; Spearman ρ is the rank correlation of tier quality with score over "
         "the tiers (+1: better data, better model). Scores in points with n and a 95% bootstrap interval.")


def _score_cell(row: dict[str, Any], suite: str) -> str:
    score = (row.get("scores") or {}).get(suite)
    if not isinstance(score, int | float):
        return "–"
    ci = (row.get("ci") or {}).get(suite)
    text = f"{score:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")
    return f"{text} (n = {(row.get('n') or {}).get(suite, '?')})"


def _study_part(view: RunView, step: StepResult) -> list[Any]:
    rows = [r for r in view.dicts(step) if "tier" in r] or list(step.metrics.get("tiers") or [])
    if not rows:
        return [tag("h3", step.id), not_run(why_missing(view, "study"))]
    suites = sorted({name for r in rows for name in r.get("scores") or {}})
    body = [(r.get("tier"), r.get("records"), f"{num(r.get('mean_quality'))} ({num(r.get('min_quality'))}–"
             f"{num(r.get('max_quality'))})", *[_score_cell(r, s) for s in suites]) for r in rows]
    rho = step.metrics.get("spearman") or {}
    corr = [(s, study_reference(s), "–" if rho.get(s) is None else f"{rho[s]:+.2f}", f"{len(rows)} tiers",
             study_verdict([(r.get("mean_quality"), (r.get("scores") or {}).get(s)) for r in rows]))
            for s in suites]  # fmt: skip
    said = [tag("div", f"warning: {w}", "diag") for w in warnings_text(step)]
    return [tag("h3", step.id), table(["tier", "records", "quality mean (min–max)", *suites], body),
            table(["suite", "vs", "Spearman ρ (quality ⇄ score)", "over", "verdict"], corr), *said, not_run(STUDY)]


def study_reference(suite: str) -> str:
    """What a study suite's items are scored against: gold references, the labeller, or an answer key."""
    if suite.startswith("gold"):
        return "gold references"
    return "the labeller's answers (not accuracy)" if suite == "labeller_agreement" else "answer key"


def study_verdict(pairs: list[tuple[Any, Any]]) -> str:
    """A tier ⇄ score rank correlation in words, with its exact permutation p-value over the tiers (two-sided):
    with 3 or 4 tiers no ordering reaches p < 0.05, and the verdict says so."""
    import math
    from itertools import permutations

    from scipy.stats import spearmanr

    known = [(float(q), float(v)) for q, v in pairs if isinstance(q, int | float) and isinstance(v, int | float)]
    quality, scores = [q for q, _ in known], [v for _, v in known]
    if len(known) < 3 or len(set(scores)) < 2 or len(set(quality)) < 2:
        return "undefined (fewer than 3 tiers, or equal scores)"
    rho = float(spearmanr(quality, scores).statistic)
    if len(known) <= 8:
        perms = [float(spearmanr(quality, list(p)).statistic) for p in permutations(scores)]
        p_value = sum(abs(r) >= abs(rho) - 1e-9 for r in perms) / len(perms)
    else:
        p_value = float(spearmanr(quality, scores).pvalue)
    if p_value < ALPHA:
        return f"better data scored {'higher' if rho > 0 else 'lower'} (p = {p_value:.2g})"
    floor = "" if len(known) > 8 or 2 / math.factorial(len(known)) < ALPHA else (
        f"; {len(known)} tiers cannot show one at the 5% level")
    return f"no significant relation (p = {p_value:.2g}{floor})"


def warnings_text(step: StepResult) -> list[str]:
    return list(dict.fromkeys([*step.warnings, *(step.metrics.get("warnings") or [])]))


def study(view: RunView) -> Raw:
    """The quality ⇄ performance study: each tier's quality and scores, and their correlation."""
    parts = [part for step in view.steps("study") for part in _study_part(view, step)]
    return section("study", "Quality ⇄ performance study", *(parts or [not_run(why_missing(view, "study"))]))

"""evaluate.<name>: base vs fine-tuned model on gold references, the labeller hold-out and general suites → gate."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dialc.plan import EvaluateParams, Holdout, Plan, PromptFormat, Step, StudyParams
from dialc.plan import Suite as SuiteSpec
from dialc_runtime.data.split import held_out
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.evaluate.evidence import evaluation_warnings
from dialc_runtime.evaluate.gold import GoldItem, load_items
from dialc_runtime.evaluate.suites.readers import Suite, SuiteFormatError, read_suite

# 4: acc_norm per character and CMMLU prompted as lm-eval (shared-prefix scorer); 3: gold prompts say "or null"
# for nullable enum fields; 2: gold test sets, labeller_agreement row, verdicts
VERSION = "4"
MODELS = ("before", "after")  # base model, fine-tuned model
AGREEMENT = "labeller_agreement"  # the hold-out row: agreement with the labeller's answers, not domain accuracy
AGREEMENT_LABEL = "agreement with the labeller (hold-out; not domain accuracy)"


def holdout_records(records: Iterable[dict[str, Any]], holdout: Holdout | None) -> list[Mapping[str, Any]]:
    """The kept labelled records whose dialogue is in the hold-out the fine-tune left out."""
    return [record for record in records if record.get("kept") and held_out(record, holdout)]


def load_suites(general: list[SuiteSpec], limit: int) -> list[tuple[SuiteSpec, Suite]]:
    """Each `general` suite spec with its items; a step-level `limit` caps suites without one."""
    suites = []
    for spec in general:
        try:
            suite = read_suite(spec.path, spec.kind, spec.limit or limit or None, spec.subjects)
        except SuiteFormatError as exc:
            raise StepFailed(str(exc)) from None
        suites.append((spec, suite))
    return suites


def fine_tuned(ctx: StepContext[EvaluateParams]) -> tuple[str, Path | None]:
    """(model location, adapter dir or None) of the fine-tune it evaluates."""
    ids = ctx.role("adapter")
    if len(ids) != 1:
        raise StepFailed(f"evaluate needs exactly one finetune input, got {ids}")
    out = ctx.input_dir(ids[0])
    if (out / "adapter" / "adapter_config.json").is_file():
        return ctx.params.base.path, out / "adapter"
    for name in ("model", "merged"):
        if (out / name / "config.json").is_file():
            return str(out / name), None
    raise StepFailed(f"{ids[0]} left no adapter or model in {out}")


def evaluate_model(lm: Any, suites: list[tuple[SuiteSpec, Suite]], holdout: list[Mapping[str, Any]],
                   max_tokens: int) -> dict[str, Any]:
    """One model on every suite (and the labeller-agreement hold-out, if any) → name → SuiteResult."""
    from dialc_runtime.evaluate.scoring import evaluate_choice, evaluate_domain, evaluate_generation

    results = {}
    for spec, suite in suites:
        if suite.kind == "choice":
            results[suite.name] = evaluate_choice(lm, suite.items, suite.name)
        else:
            fewshot = spec.fewshot or 0
            results[suite.name] = evaluate_generation(
                lm, suite.items, suite.name, fewshot=fewshot, max_new_tokens=max_tokens
            )
    if holdout:
        results[AGREEMENT] = evaluate_domain(lm, holdout, AGREEMENT, max_new_tokens=max_tokens)
    return results


def calls_for(suites: list[tuple[SuiteSpec, Suite]], holdout: list[Mapping[str, Any]]) -> int:
    """Model calls of one model's evaluation: a log-likelihood per option, a generation per item or record."""
    calls = len(holdout)
    for _, suite in suites:
        calls += sum(len(item.options) for item in suite.items) if suite.kind == "choice" else len(suite.items)
    return calls


def run(ctx: StepContext[EvaluateParams]) -> StepOutput:
    """Score base and fine-tuned model; fail with the before/after table when retention drops."""
    from dialc_runtime.evaluate.scoring import HFModel, format_table

    p = ctx.params
    suites = load_suites(p.general, p.limit)
    holdout = holdout_records(ctx.role_records("records"), p.holdout)
    gold = load_items(p.gold, p.prompt or PromptFormat(), p.gold_limit, ctx.seed) if p.gold is not None else []
    if not suites and not holdout and not gold:
        raise StepFailed("nothing to evaluate: no general suite, no gold item and no hold-out records")
    location, adapter = fine_tuned(ctx)
    locations = {"before": (p.base.path, None), "after": (location, adapter)}
    max_tokens = p.base.max_tokens
    results: dict[str, dict[str, Any]] = {}
    with ctx.progress(len(MODELS), "evaluating") as bar:
        for label in MODELS:
            lm = HFModel.load(*locations[label])
            results[label] = {**evaluate_model(lm, suites, holdout, max_tokens), **score_gold(lm, gold, max_tokens)}
            ctx.account(model_calls=calls_for(suites, holdout) + gold_calls(gold))  # not through ctx.backend()
            del lm  # free the weights before loading the other model
            bar.advance()
    ok, rows = compare(results, [suite.name for _, suite in suites], p.max_drop)
    table = format_table(rows)
    write_report(ctx, results, rows, table)
    for message in evaluation_warnings(rows):
        ctx.warn(message)
    if not ok:
        raise StepFailed(f"retention gate failed (max_drop {p.max_drop} points):\n{table}")
    return StepOutput(metrics={**metrics(rows, len(holdout)), "gold_items": len(gold)}, message=table)


def score_gold(lm: Any, items: list[GoldItem], max_tokens: int) -> dict[str, Any]:
    """One model on the gold items → "gold/<task>" (and "gold/overall") → SuiteResult."""
    from dialc_runtime.evaluate.gold import evaluate_gold

    if not items:
        return {}
    return {f"gold/{name}": result for name, result in evaluate_gold(lm, items, max_tokens).items()}


def gold_calls(items: list[GoldItem]) -> int:
    from dialc_runtime.evaluate.gold import calls

    return calls(items)


def compare(results: dict[str, Any], general: list[str], max_drop: float) -> tuple[bool, list[dict[str, Any]]]:
    """Gold rows (per task and metric, then overall), gated rows for the general suites, then an ungated row
    for the agreement with the labeller on the hold-out; every row with a verdict in words."""
    from dialc_runtime.evaluate.scoring import check_retention, compare_row

    ok, general_rows = check_retention(
        {name: results["before"][name] for name in general},
        {name: results["after"][name] for name in general},
        max_drop,
    )
    rows = gold_rows(results) + [typed(r, r["suite"], "general", "primary") for r in general_rows]
    if AGREEMENT in results["before"]:
        row = compare_row(AGREEMENT_LABEL, results["before"][AGREEMENT], results["after"][AGREEMENT])
        rows.append(typed(row, f"{AGREEMENT}.score", "agreement", "score"))
    return ok, rows


def gold_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Before/after rows of the gold results: each task's primary metric and its secondary ones."""
    from dialc_runtime.evaluate.gold import secondary
    from dialc_runtime.evaluate.gold_metrics import METRIC_NAMES
    from dialc_runtime.evaluate.scoring import compare_row

    rows = []
    for name in [n for n in results["before"] if n.startswith("gold/")]:
        task = name.removeprefix("gold/")
        before, after = results["before"][name], results["after"][name]
        for b, a in [(before, after), *zip(secondary(before), secondary(after), strict=True)]:
            metric = METRIC_NAMES.get(b.primary, "mean of each item's primary metric")
            row = compare_row(f"gold · {task} · {metric}", b, a)
            rows.append(typed(row, f"gold.{task}.{b.primary}", "gold", b.primary))
    return rows


def typed(row: dict[str, Any], key: str, kind: str, metric: str) -> dict[str, Any]:
    """A before/after row with its machine key, its type (gold / general / agreement) and its verdict."""
    from dialc_runtime.evaluate.gold_metrics import LOWER_IS_BETTER, verdict

    lower = metric in LOWER_IS_BETTER
    return {**row, "key": key, "type": kind, "metric": metric, "better": "lower" if lower else "higher",
            "verdict": verdict(row.get("delta_ci"), lower)}


def write_report(ctx: Any, results: dict[str, Any], rows: list[dict[str, Any]], table: str) -> None:
    """Emit one record per (model, suite) and the table; write eval.json + eval.txt to out_dir."""
    for label, by_suite in results.items():
        for name, result in by_suite.items():
            ctx.emit(f"{label}/{name}", {"model": label, **asdict(result)})
    ctx.emit("table", {"rows": rows})
    report = {
        "rows": rows,
        "results": {k: {n: asdict(r) for n, r in v.items()} for k, v in results.items()},
    }
    (ctx.out_dir / "eval.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    (ctx.out_dir / "eval.txt").write_text(table + "\n")


def metrics(rows: list[dict[str, Any]], holdout: int) -> dict[str, Any]:
    """Flat metrics for the run report: before/after/change per suite, in points."""
    gated = [row["ok"] for row in rows if "ok" in row]
    out: dict[str, Any] = {"holdout_records": holdout, "retention_ok": all(gated),
                           "warnings": evaluation_warnings(rows)}
    for row in rows:
        name = row.get("key", row["suite"])
        for key in ("before", "after", "delta"):
            out[f"{name}.{key}"] = round(row[key], 2)
        if "n" in row:
            out[f"{name}.n"] = row["n"]
        if row.get("delta_ci"):
            out[f"{name}.delta_ci"] = [round(x, 2) for x in row["delta_ci"]]
        if "verdict" in row:
            out[f"{name}.verdict"] = row["verdict"]
    return out


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """The base and the fine-tuned model, each on every general suite, the hold-out and the gold items."""
    from dialc_runtime.engine.estimates import combine, evaluation, holdout_size, upstream_count

    p = step.params
    assert isinstance(p, EvaluateParams)
    generations = holdout_size(upstream_count(step, plan), p.holdout) + gold_size(p, plan)
    one = evaluation(p.general, p.limit, generations, p.base)
    return combine(one, one)


def gold_size(p: EvaluateParams | StudyParams, plan: Plan) -> int:
    """The gold items one model answers (0 when the files cannot be read: the run says why)."""
    from dialc.plan import resolve_paths

    if p.gold is None:
        return 0
    try:
        return len(load_items(resolve_paths(p.gold, plan.spec_dir()), p.prompt or PromptFormat(), p.gold_limit,
                              p.seed))
    except (StepFailed, OSError, ValueError):
        return 0

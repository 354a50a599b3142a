"""evaluate.<name>: base vs fine-tuned model on the domain hold-out and general suites → gate."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.data.split import is_holdout
from dialc_runtime.steps.finetune import holdout_setting
from dialc_runtime.evaluate.suites.readers import Suite, SuiteFormatError, read_suite

VERSION = "1"
MODELS = ("before", "after")  # base model, fine-tuned model


def holdout_records(ctx: Any) -> list[dict[str, Any]]:
    """Kept labelled records of the filter.* inputs whose dialogue is in the hold-out."""
    fraction, seed = holdout_setting(ctx.params, ctx)
    if fraction <= 0:
        return []
    return [
        record
        for step_id in ctx.step.inputs
        if step_id.startswith("filter.")
        for record in ctx.records(step_id)
        if record.get("kept") and is_holdout(str(record["dialogue_id"]), fraction, seed)
    ]


def load_suites(params: dict[str, Any]) -> list[tuple[dict[str, Any], Suite]]:
    """Each `general` suite spec with its items; a step-level `limit` caps suites without one."""
    suites = []
    for spec in params.get("general") or []:
        name = str(spec.get("path") or spec.get("suite"))
        limit = spec.get("limit") or params.get("limit") or None
        try:
            suite = read_suite(name, spec.get("kind"), limit, spec.get("subjects"))
        except SuiteFormatError as exc:
            raise StepFailed(str(exc)) from None
        suites.append((spec, suite))
    return suites


def fine_tuned(ctx: Any) -> tuple[str, Path | None]:
    """(model location, adapter dir or None) of the finetune.* input's output."""
    ids = [i for i in ctx.step.inputs if i.startswith("finetune.")]
    if len(ids) != 1:
        raise StepFailed(f"evaluate needs exactly one finetune input, got {ids}")
    out = ctx.input_dir(ids[0])
    if (out / "adapter" / "adapter_config.json").is_file():
        return base_path(ctx.params), out / "adapter"
    for name in ("model", "merged"):
        if (out / name / "config.json").is_file():
            return str(out / name), None
    raise StepFailed(f"{ids[0]} left no adapter or model in {out}")


def base_path(params: dict[str, Any]) -> str:
    base = params.get("base") or {}
    path = base.get("path") if isinstance(base, dict) else base
    if not path:
        raise StepFailed("evaluate needs the base model's path (params.base.path)")
    return str(path)


def evaluate_model(lm: Any, suites: list, holdout: list, max_tokens: int) -> dict[str, Any]:
    """One model on every suite (and the domain hold-out, if any) → name → SuiteResult."""
    from dialc_runtime.evaluate.scoring import evaluate_choice, evaluate_domain, evaluate_generation

    results = {}
    for spec, suite in suites:
        if suite.kind == "choice":
            results[suite.name] = evaluate_choice(lm, suite.items, suite.name)
        else:
            fewshot = int(spec.get("fewshot") or 0)
            results[suite.name] = evaluate_generation(
                lm, suite.items, suite.name, fewshot=fewshot, max_new_tokens=max_tokens
            )
    if holdout:
        results["domain"] = evaluate_domain(lm, holdout, "domain", max_new_tokens=max_tokens)
    return results


def run(ctx: StepContext) -> StepOutput:
    """Score base and fine-tuned model; fail with the before/after table when retention drops."""
    from dialc_runtime.evaluate.scoring import HFModel, format_table

    suites = load_suites(ctx.params)
    holdout = holdout_records(ctx)
    if not suites and not holdout:
        raise StepFailed("nothing to evaluate: no general suite and no hold-out records")
    location, adapter = fine_tuned(ctx)
    locations = {"before": (base_path(ctx.params), None), "after": (location, adapter)}
    max_tokens = int((ctx.params.get("base") or {}).get("max_tokens") or 256)
    results: dict[str, dict[str, Any]] = {}
    with ctx.progress(len(MODELS), "evaluating") as bar:
        for label in MODELS:
            lm = HFModel.load(*locations[label])
            results[label] = evaluate_model(lm, suites, holdout, max_tokens)
            del lm  # free the weights before loading the other model
            bar.advance()
    ok, rows = compare(results, [suite.name for _, suite in suites], ctx.params.get("max_drop"))
    table = format_table(rows)
    write_report(ctx, results, rows, table)
    if not ok:
        drop = ctx.params.get("max_drop", 1.0)
        raise StepFailed(f"retention gate failed (max_drop {drop} points):\n{table}")
    return StepOutput(metrics=metrics(rows, len(holdout)), message=table)


def compare(results: dict, general: list[str], max_drop: Any) -> tuple[bool, list[dict]]:
    """Gated rows for the general suites, then an ungated row for the domain hold-out."""
    from dialc_runtime.evaluate.scoring import check_retention, compare_row

    ok, rows = check_retention(
        {name: results["before"][name] for name in general},
        {name: results["after"][name] for name in general},
        1.0 if max_drop is None else float(max_drop),
    )
    if "domain" in results["before"]:
        rows.append(compare_row("domain", results["before"]["domain"], results["after"]["domain"]))
    return ok, rows


def write_report(ctx: Any, results: dict, rows: list[dict], table: str) -> None:
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


def metrics(rows: list[dict], holdout: int) -> dict[str, Any]:
    """Flat metrics for the run report: before/after/change per suite, in points."""
    gated = [row["ok"] for row in rows if "ok" in row]
    out: dict[str, Any] = {"holdout_records": holdout, "retention_ok": all(gated)}
    for row in rows:
        for key in ("before", "after", "delta"):
            out[f"{row['suite']}.{key}"] = round(row[key], 2)
    return out

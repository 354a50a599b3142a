"""evaluate.<name>: base vs fine-tuned model on the domain hold-out and general suites → gate."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from collections.abc import Iterable, Mapping
from typing import Any

from dialc.plan import EvaluateParams, Holdout
from dialc.plan import Suite as SuiteSpec
from dialc_runtime.data.split import held_out
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.evaluate.suites.readers import Suite, SuiteFormatError, read_suite

VERSION = "1"
MODELS = ("before", "after")  # base model, fine-tuned model


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
    """One model on every suite (and the domain hold-out, if any) → name → SuiteResult."""
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
        results["domain"] = evaluate_domain(lm, holdout, "domain", max_new_tokens=max_tokens)
    return results


def run(ctx: StepContext[EvaluateParams]) -> StepOutput:
    """Score base and fine-tuned model; fail with the before/after table when retention drops."""
    from dialc_runtime.evaluate.scoring import HFModel, format_table

    p = ctx.params
    suites = load_suites(p.general, p.limit)
    holdout = holdout_records(ctx.role_records("records"), p.holdout)
    if not suites and not holdout:
        raise StepFailed("nothing to evaluate: no general suite and no hold-out records")
    location, adapter = fine_tuned(ctx)
    locations = {"before": (p.base.path, None), "after": (location, adapter)}
    max_tokens = p.base.max_tokens
    results: dict[str, dict[str, Any]] = {}
    with ctx.progress(len(MODELS), "evaluating") as bar:
        for label in MODELS:
            lm = HFModel.load(*locations[label])
            results[label] = evaluate_model(lm, suites, holdout, max_tokens)
            del lm  # free the weights before loading the other model
            bar.advance()
    ok, rows = compare(results, [suite.name for _, suite in suites], p.max_drop)
    table = format_table(rows)
    write_report(ctx, results, rows, table)
    if not ok:
        raise StepFailed(f"retention gate failed (max_drop {p.max_drop} points):\n{table}")
    return StepOutput(metrics=metrics(rows, len(holdout)), message=table)


def compare(results: dict[str, Any], general: list[str], max_drop: float) -> tuple[bool, list[dict[str, Any]]]:
    """Gated rows for the general suites, then an ungated row for the domain hold-out."""
    from dialc_runtime.evaluate.scoring import check_retention, compare_row

    ok, rows = check_retention(
        {name: results["before"][name] for name in general},
        {name: results["after"][name] for name in general},
        max_drop,
    )
    if "domain" in results["before"]:
        rows.append(compare_row("domain", results["before"]["domain"], results["after"]["domain"]))
    return ok, rows


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
    out: dict[str, Any] = {"holdout_records": holdout, "retention_ok": all(gated)}
    for row in rows:
        for key in ("before", "after", "delta"):
            out[f"{row['suite']}.{key}"] = round(row[key], 2)
    return out

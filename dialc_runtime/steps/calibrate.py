"""calibrate.<quality>: gold items → the labeller's answers, their quality verdicts and correctness → predictiveness."""

from __future__ import annotations

import json

from dialc.plan import CalibrateParams, JudgeDimension, Plan, Step
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.evaluate.quality_gold import figures, render, run_check

VERSION = "1"


def run(ctx: StepContext[CalibrateParams]) -> StepOutput:
    check = run_check(ctx.params, ctx.backend, ctx.progress)
    for record in check.records:
        ctx.emit(str(record["id"]), record)
    shown = figures(check)
    text = render(shown)
    (ctx.out_dir / "calibrate.json").write_text(json.dumps(shown, indent=1, ensure_ascii=False))
    (ctx.out_dir / "calibrate.txt").write_text(text + "\n")
    for row in check.dimensions:
        for note in row.notes:
            ctx.warn(f"quality vs gold, {row.dimension}{f' on {row.task}' if row.task else ''}: {note}")
    return StepOutput(metrics=shown, message=text)


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """One labelling per gold item and candidate, plus the judges' calls on each (the executor hands the step
    with its paths resolved)."""
    from dialc.plan import PromptFormat
    from dialc_runtime.engine.estimates import combine, generation, usage
    from dialc_runtime.errors import StepFailed
    from dialc_runtime.evaluate.gold import load_items

    p = step.params
    assert isinstance(p, CalibrateParams)
    try:
        items = len(load_items(p.gold, p.prompt or PromptFormat(), p.gold_limit, p.seed))
    except (StepFailed, OSError, ValueError):
        items = 0
    labels = items * p.candidates
    judged = sum(d.scale[1] - d.scale[0] + 1 if d.method == "expected" else 1
                 for d in p.dimensions if isinstance(d, JudgeDimension))
    return combine(generation(labels, p.model), usage(labels * judged, labels * judged * 400, 0))

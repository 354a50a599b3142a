"""Expression axes (+ optional model paraphrases of each task instruction) → expression records."""

from __future__ import annotations

from dialc.plan import ExpressionsParams, Paraphrase
from dialc_runtime.data.prompts import EVOLVE_SCHEMA, paraphrase_messages
from dialc_runtime.data.seeds import derive
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.models.generation import generate_each, json_request

VERSION = "1"


def run(ctx: StepContext[ExpressionsParams]) -> StepOutput:
    p = ctx.params
    for axis, values in sorted(p.axes.items()):
        ctx.emit(f"axis-{axis}", {"kind": "axis", "axis": axis, "values": values})
    paraphrased = 0
    if p.paraphrase is not None:
        paraphrased = _paraphrase(ctx, p.paraphrase)
    return StepOutput(metrics={"axes": {a: len(v) for a, v in p.axes.items()}, "paraphrases": paraphrased})


def _paraphrase(ctx: StepContext[ExpressionsParams], cfg: Paraphrase) -> int:
    """n paraphrases per task instruction, each under a JSON schema; failures are skipped, not kept."""
    tasks = list(ctx.role_records("tasks"))
    jobs = [(t, i) for t in tasks for i in range(cfg.n) if f"para-{t['id']}-{i}" not in ctx.done]
    model = cfg.model
    made = sum(1 for k in ctx.done if k.startswith("para-"))
    requests = [json_request(paraphrase_messages(task["instruction"]), EVOLVE_SCHEMA, model,
                             derive(ctx.seed, task["id"], i)) for task, i in jobs]
    for index, result in generate_each(ctx, model, requests, "paraphrasing"):
        task, i = jobs[index]
        if result.ok and isinstance(result.value, dict):
            ctx.emit(f"para-{task['id']}-{i}", {"kind": "paraphrase", "task_id": task["id"],
                                                 "instruction": result.value["instruction"].strip()})
            made += 1
    return made

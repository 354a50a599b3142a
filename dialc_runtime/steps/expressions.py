"""Expression axes (+ optional model paraphrases of each task instruction) → expression records."""

from __future__ import annotations

from typing import Any

from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.models.generation import json_request
from dialc_runtime.data.prompts import EVOLVE_SCHEMA
from dialc_runtime.data.seeds import derive

VERSION = "1"


def run(ctx: StepContext) -> StepOutput:
    p = ctx.params
    for axis, values in sorted(p["axes"].items()):
        ctx.emit(f"axis-{axis}", {"kind": "axis", "axis": axis, "values": values})
    paraphrased = 0
    if p.get("paraphrase"):
        paraphrased = _paraphrase(ctx, p["paraphrase"])
    return StepOutput(metrics={"axes": {a: len(v) for a, v in p["axes"].items()}, "paraphrases": paraphrased})


def _paraphrase(ctx: StepContext, cfg: dict[str, Any]) -> int:
    """n paraphrases per task instruction, each under a JSON schema; failures are skipped, not kept."""
    tasks = list(ctx.records(ctx.step.inputs[0]))
    jobs = [(t, i) for t in tasks for i in range(cfg["n"]) if f"para-{t['id']}-{i}" not in ctx.done]
    model = cfg["model"]
    backend = ctx.backend(model)
    made = sum(1 for k in ctx.done if k.startswith("para-"))
    with ctx.progress(len(jobs), "paraphrasing") as bar:
        for task, i in jobs:
            messages = ({"role": "user", "content": "Paraphrase this task instruction, same meaning, different "
                         f"wording:\n{task['instruction']}\nReply as {{\"instruction\": \"...\"}}."},)
            request = json_request(messages, EVOLVE_SCHEMA, model, derive(ctx.seed, task["id"], i))
            result = backend.generate([request])[0]
            if result.ok and isinstance(result.value, dict):
                ctx.emit(f"para-{task['id']}-{i}", {"kind": "paraphrase", "task_id": task["id"],
                                                     "instruction": result.value["instruction"].strip()})
                made += 1
            bar.advance()
    return made

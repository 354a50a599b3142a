"""Dialogues, tasks and expressions → production prompts (weighted, balanced, without replacement)."""

from __future__ import annotations

from typing import Any

from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.data.prompts import output_format, render_prompt, transcript
from dialc_runtime.data.sampling import balance_report, cell_weights, declared_weights, draw_prompts
from dialc_runtime.data.seeds import rng

VERSION = "1"


def run(ctx: StepContext) -> StepOutput:
    p = ctx.params
    dialogues, tasks, paraphrases = _inputs(ctx)
    if not dialogues:
        raise StepFailed("no dialogues to sample from (the source produced no records)")
    if not tasks:
        raise StepFailed("no usable tasks to sample (all filtered or rejected in review)")
    draws = draw_prompts(dialogues, tasks, p["axes"], p, ctx.seed)
    if len(draws) < p["count"]:
        ctx.warn(f"only {len(draws)} distinct dialogue × task × expression combinations; count is {p['count']}")
    by_dialogue = {d["id"]: d for d in dialogues}
    by_task = {t["id"]: t for t in tasks}
    for index, draw in enumerate(draws):
        record = _record(ctx.step.name, index, draw, by_dialogue[draw.dialogue], by_task[draw.task],
                         paraphrases.get(draw.task, []), p, ctx.seed)
        ctx.emit(f"{index:06d}", record)
    return StepOutput(metrics={"prompts": len(draws), "balance": _balance(draws, dialogues, tasks, p)})


def _inputs(ctx: StepContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, list[str]]]:
    dialogues: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    paraphrases: dict[str, list[str]] = {}
    for step_id in ctx.step.inputs:
        kind = step_id.split(".", 1)[0]
        records = list(ctx.records(step_id))
        if kind == "ingest":
            dialogues.extend(records)
        elif kind == "expressions":
            for r in records:
                if r.get("kind") == "paraphrase":
                    paraphrases.setdefault(r["task_id"], []).append(r["instruction"])
        else:
            tasks.extend(t for t in records if not t.get("filtered"))
    return dialogues, tasks, paraphrases


def _record(name: str, index: int, draw: Any, dialogue: dict[str, Any], task: dict[str, Any],
            paraphrases: list[str], p: dict[str, Any], seed: int) -> dict[str, Any]:
    instruction = task["instruction"]
    phrasing = "original"
    if paraphrases:  # the paraphrase is one more expression axis, drawn uniformly with the original
        choice = rng(seed, "phrasing", index).randrange(len(paraphrases) + 1)
        if choice:
            instruction, phrasing = paraphrases[choice - 1], f"paraphrase-{choice}"
    expression = dict(draw.expression)
    values = {**expression, "dialogue": transcript(dialogue), "instruction": instruction,
              "scenario": draw.scenario, "category": draw.category, "task_id": task["id"],
              "scenario_description": (p.get("scenarios") or {}).get(draw.scenario, {}).get("description",
                                                                                              draw.scenario),
              "output_format": output_format(task["output"])}
    return {"id": f"{name}-{index:06d}", "dialogue_id": draw.dialogue, "scenario": draw.scenario,
            "task_id": task["id"], "category": draw.category, "instruction": instruction,
            "expression": expression, "output": task["output"],
            "messages": render_prompt(p.get("template"), p.get("system"), values),
            "lineage": {"task_origin": task.get("origin", "declared"), "chain": task.get("chain", []),
                        "phrasing": phrasing, "reviewed": task.get("reviewed")}}


def _balance(draws: list[Any], dialogues: list[dict[str, Any]], tasks: list[dict[str, Any]],
             p: dict[str, Any]) -> dict[str, Any]:
    scenario_weights = {k: v["weight"] for k, v in (p.get("scenarios") or {}).items()}
    cells = cell_weights(dialogues, tasks, scenario_weights, p.get("balance") or [])
    keys = list(dict.fromkeys([*(p.get("balance") or []), "scenario", "category"]))
    return {key: balance_report(draws, declared_weights(cells, p["axes"], key), key) for key in keys}

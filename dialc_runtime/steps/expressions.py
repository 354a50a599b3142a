"""Expression axes (+ optional model paraphrases of each task instruction) → expression records."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dialc.plan import ExpressionsParams, Paraphrase, Plan, Step, TasksParams
from dialc_runtime.data.instructions import failure_reason
from dialc_runtime.data.prompts import EVOLVE_SCHEMA, paraphrase_messages
from dialc_runtime.data.seeds import derive
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.models.generation import generate_each, json_request

VERSION = "2"  # 2: paraphrases carry id/category/chain and the evolution failure filters' verdict


def run(ctx: StepContext[ExpressionsParams]) -> StepOutput:
    p = ctx.params
    for axis, values in sorted(p.axes.items()):
        ctx.emit(f"axis-{axis}", {"kind": "axis", "axis": axis, "values": values})
    metrics: dict[str, Any] = {"axes": {a: len(v) for a, v in p.axes.items()}, "paraphrases": 0}
    if p.paraphrase is not None:
        metrics.update(_paraphrase(ctx, p.paraphrase))
    return StepOutput(metrics=metrics)


def _paraphrase(ctx: StepContext[ExpressionsParams], cfg: Paraphrase) -> dict[str, Any]:
    """n paraphrases of each usable task's instruction (declared and evolved), each under a JSON schema and
    through the evolution failure filters (too short, a copy of the original, unanswerable): a failed one
    is kept with its `filtered` reason, so neither the review gate nor the sample uses it."""
    tasks = [t for t in ctx.role_records("tasks") if not t.get("filtered") and t.get("kind") != "paraphrase"]
    known = {t["id"]: [t["instruction"]] for t in tasks}  # what a paraphrase must not copy
    for record in ctx.done.values():
        if record.get("kind") == "paraphrase" and not record.get("filtered") and record["task_id"] in known:
            known[record["task_id"]].append(record["instruction"])
    jobs = [(t, i) for t in tasks for i in range(cfg.n) if _key(t, i) not in ctx.done]
    requests = [json_request(paraphrase_messages(task["instruction"]), EVOLVE_SCHEMA, cfg.model,
                             derive(ctx.seed, task["id"], i)) for task, i in jobs]
    made = [r for r in ctx.done.values() if r.get("kind") == "paraphrase"]
    for index, result in generate_each(ctx, cfg.model, requests, "paraphrasing"):
        task, i = jobs[index]
        record = _record(task, i, result)
        record["filtered"] = failure_reason(record, known[task["id"]])
        if not record["filtered"]:
            known[task["id"]].append(record["instruction"])
        ctx.emit(_key(task, i), record)
        made.append(record)
    filtered = Counter(str(r["filtered"]).split(":")[0] for r in made if r.get("filtered"))
    return {"paraphrases": sum(1 for r in made if not r.get("filtered")), "filtered": dict(sorted(filtered.items()))}


def _key(task: dict[str, Any], i: int) -> str:
    return f"para-{task['id']}-{i}"


def _record(task: dict[str, Any], i: int, result: Any) -> dict[str, Any]:
    """A paraphrase as a review candidate: the parent task's id and category, its chain one step longer."""
    text = result.value.get("instruction", "").strip() if result.ok and isinstance(result.value, dict) else ""
    return {"kind": "paraphrase", "id": f"{task['id']}#p{i + 1}", "task_id": task["id"],
            "category": task["category"], "instruction": text, "error": None if result.ok else result.error,
            "chain": [*task.get("chain", []), {"operator": "paraphrase", "parent": task["id"]}]}


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """n paraphrases of each task's instruction (short prompts; evolved tasks not counted)."""
    from dialc_runtime.engine.estimates import generation, usage

    assert isinstance(step.params, ExpressionsParams)
    para = step.params.paraphrase
    if para is None:
        return usage(0, 0, 0)
    tasks = sum(len(s.params.declared) for s in plan.steps if isinstance(s.params, TasksParams))
    return generation(para.n * max(tasks, 1), para.model, prompt_tokens=80)

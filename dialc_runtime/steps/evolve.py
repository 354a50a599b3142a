"""Task records → the same tasks plus evolved ones (operators × rounds), failed evolutions marked filtered."""

from __future__ import annotations

import re
from typing import Any

from dialc.plan import EvolveParams, ModelSpec, Operator, Plan, Step, TasksParams
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.models.generation import generate_batched, json_request
from dialc_runtime.data.prompts import EVOLVE_SCHEMA, evolve_messages
from dialc_runtime.data.seeds import derive, rng
from dialc_runtime.data.similarity import is_near_copy

VERSION = "1"
COPY_THRESHOLD = 0.9  # an evolution this similar to its parent (or any task) adds nothing
MIN_WORDS = 5  # shorter instructions are too vague to label
# asks for information no dialogue holds → unanswerable from the dialogue
OUTSIDE_WORLD = re.compile(r"\b(internet|online search|browse|latest (market )?data|look up|website|google)\b"
                           r"|上网|搜索|最新数据", re.I)


def run(ctx: StepContext[EvolveParams]) -> StepOutput:
    p = ctx.params
    tasks = [t for t in ctx.role_records("tasks") if not t.get("filtered")]
    for index, task in enumerate(tasks):
        ctx.emit(f"0-{index:05d}", task)
    frontier, known = tasks, [t["instruction"] for t in tasks]
    reasons: dict[str, int] = {}
    produced = 0
    for round_no in range(1, p.rounds + 1):
        chosen = _choose(frontier, p.per_round, ctx.seed, round_no)
        evolved = _evolve_round(ctx, chosen, round_no)
        frontier = []
        for key, task in evolved:
            reason = failure_reason(task, known)
            task["filtered"] = reason
            if reason:
                reasons[reason.split(":")[0]] = reasons.get(reason.split(":")[0], 0) + 1
            else:
                known.append(task["instruction"])
                frontier.append(task)
                produced += 1
            if key not in ctx.done:
                ctx.emit(key, task)
    return StepOutput(metrics={"input_tasks": len(tasks), "evolved_kept": produced, "filtered": reasons})


def _choose(frontier: list[dict[str, Any]], per_round: int, seed: int, round_no: int) -> list[dict[str, Any]]:
    if per_round <= 0 or per_round >= len(frontier):
        return list(frontier)
    return rng(seed, "round", round_no).sample(frontier, per_round)


def _evolve_round(ctx: StepContext[EvolveParams], chosen: list[dict[str, Any]],
                  round_no: int) -> list[tuple[str, dict[str, Any]]]:
    """Each chosen task rewritten by one operator; finished candidates reused from an interrupted run."""
    p = ctx.params
    jobs: list[tuple[str, dict[str, Any], Operator]] = []
    for task in chosen:
        op = rng(ctx.seed, "operator", round_no, task["id"]).choice(p.operators)
        jobs.append((f"{round_no}-{task['id']}~{op.name}", task, op))
    todo = [j for j in jobs if j[0] not in ctx.done]
    model: ModelSpec = p.model
    requests = [json_request(evolve_messages(op.name, op.prompt, task, _scenario(task)),
                             EVOLVE_SCHEMA, model, derive(ctx.seed, key))
                for key, task, op in todo]
    generated = generate_batched(ctx, model, requests, f"evolving round {round_no}")
    results = {key: result for (key, _, _), result in zip(todo, generated, strict=True)}
    out = []
    for key, task, op in jobs:
        out.append((key, ctx.done[key] if key in ctx.done else _child(task, op.name, round_no, results[key])))
    return out


def _scenario(task: dict[str, Any]) -> str:
    return str((task.get("scenarios") or ["these"])[0])


def _child(parent: dict[str, Any], operator: str, round_no: int, result: Any) -> dict[str, Any]:
    text = result.value.get("instruction", "").strip() if result.ok and isinstance(result.value, dict) else ""
    return {**parent, "id": f"{parent['id']}~{operator}{round_no}", "instruction": text, "origin": "evolved",
            "chain": [*parent.get("chain", []), {"operator": operator, "parent": parent["id"]}],
            "error": None if result.ok else result.error}


def failure_reason(task: dict[str, Any], known: list[str]) -> str | None:
    """Why an evolved task is unusable (empty, copied, unanswerable), or None when it is fine."""
    text = task["instruction"]
    if task.get("error") or not text:
        return f"empty: {task.get('error') or 'no instruction produced'}"
    if len(text.split()) < MIN_WORDS and len(text) < 12:
        return "empty: too short to be a task"
    copy = is_near_copy(text, known, COPY_THRESHOLD)
    if copy is not None:
        return f"copied: near-duplicate of {copy[:60]!r}"
    if OUTSIDE_WORLD.search(text):
        return "unanswerable: needs information outside the dialogue"
    return None


def estimate(step: Step, plan: Plan) -> dict[str, int]:
    """At most per_round (or every task) rewrites per round."""
    from dialc_runtime.engine.estimates import generation

    assert isinstance(step.params, EvolveParams)
    declared = sum(len(s.params.declared) for s in plan.steps if isinstance(s.params, TasksParams))
    per_round = step.params.per_round or max(declared, 1)
    return generation(per_round * step.params.rounds, step.params.model, prompt_tokens=120)

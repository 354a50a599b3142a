"""Task records → the same tasks plus evolved ones (operators × rounds), failed evolutions marked filtered."""

from __future__ import annotations

from typing import Any

from dialc.plan import EvolveParams, ModelSpec, Operator, Plan, Step, TasksParams
from dialc_runtime.data.instructions import failure_reason
from dialc_runtime.data.prompts import EVOLVE_SCHEMA, evolve_messages, transcript
from dialc_runtime.data.seeds import derive, rng
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.models.generation import generate_batched, json_request

VERSION = "3"  # 2: instructions of 2-4 words are filtered as too short; 3: a context dialogue per candidate
CONTEXT_CHARS = 1500  # the context dialogue's transcript a reviewer reads beside a candidate (cut in the middle)


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
        _attach_context(ctx, [task for _, task in evolved])
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


def _attach_context(ctx: StepContext[EvolveParams], children: list[dict[str, Any]]) -> None:
    """With `evolve { context = SOURCE }`: each candidate gets one dialogue of its scenario (seeded by its
    id), the dialogue the review gate shows it with, to check that it is answerable from such a dialogue.
    Two passes over the dialogues: ids and scenarios first, then the transcripts of the chosen ones."""
    index = [(str(d["id"]), d.get("scenario")) for d in ctx.role_records("dialogues")]
    if not index:
        return
    chosen: dict[str, str] = {}
    for task in children:
        scenarios = task.get("scenarios") or []
        pool = [i for i, s in index if s in scenarios] or [i for i, _ in index]
        chosen[task["id"]] = rng(ctx.seed, "context", task["id"]).choice(pool)
    wanted = set(chosen.values())
    shown = {str(d["id"]): {"id": str(d["id"]), "scenario": d.get("scenario"), "text": transcript(d, CONTEXT_CHARS)}
             for d in ctx.role_records("dialogues") if str(d["id"]) in wanted}
    for task in children:
        task["context_dialogue"] = shown[chosen[task["id"]]]


def _scenario(task: dict[str, Any]) -> str:
    return str((task.get("scenarios") or ["these"])[0])


def _child(parent: dict[str, Any], operator: str, round_no: int, result: Any) -> dict[str, Any]:
    text = result.value.get("instruction", "").strip() if result.ok and isinstance(result.value, dict) else ""
    return {**parent, "id": f"{parent['id']}~{operator}{round_no}", "instruction": text, "origin": "evolved",
            "chain": [*parent.get("chain", []), {"operator": operator, "parent": parent["id"]}],
            "error": None if result.ok else result.error}


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """At most per_round (or every task) rewrites per round."""
    from dialc_runtime.engine.estimates import generation

    assert isinstance(step.params, EvolveParams)
    declared = sum(len(s.params.declared) for s in plan.steps if isinstance(s.params, TasksParams))
    per_round = step.params.per_round or max(declared, 1)
    return generation(per_round * step.params.rounds, step.params.model, prompt_tokens=120)

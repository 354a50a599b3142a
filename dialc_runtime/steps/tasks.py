"""Declared tasks (+ optional model proposals from sampled dialogues) → task records, near-duplicates removed."""

from __future__ import annotations

from typing import Any

from dialc.plan import GenerateTasks, Plan, Step, TasksParams
from dialc_runtime.data.prompts import PROPOSE_SCHEMA, propose_messages
from dialc_runtime.data.seeds import derive, rng
from dialc_runtime.data.similarity import is_near_copy
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.models.generation import generate_batched, json_request

VERSION = "1"
GENERATED_OUTPUT = {"kind": "text", "max_chars": 400}  # when no declared task of the category exists


def run(ctx: StepContext[TasksParams]) -> StepOutput:
    p = ctx.params
    tasks = [t.model_dump(mode="json") for t in p.declared]
    dropped = 0
    if p.generate is not None:
        proposals = _proposals(ctx, p.generate, tasks)
        kept_texts = [t["instruction"] for t in tasks]
        for task in proposals:
            if is_near_copy(task["instruction"], kept_texts, p.dedup_threshold):
                dropped += 1
                continue
            kept_texts.append(task["instruction"])
            tasks.append(task)
    for index, task in enumerate(tasks):
        ctx.emit(f"{index:05d}", task)
    categories = sorted({t["category"] for t in tasks})
    return StepOutput(metrics={"tasks": len(tasks), "declared": len(p.declared),
                               "generated": len(tasks) - len(p.declared), "near_duplicates_dropped": dropped,
                               "categories": categories})


def _proposals(ctx: StepContext[TasksParams], gen: GenerateTasks,
               declared: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One request per (scenario, category, i); each answered as {"instruction": …} under a JSON schema."""
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for dialogue in ctx.role_records("dialogues"):
        by_scenario.setdefault(dialogue["scenario"], []).append(dialogue)
    outputs = {t["category"]: t["output"] for t in reversed(declared)}
    jobs = []
    for scenario in sorted(by_scenario):
        known = gen.scenarios.get(scenario)
        description = known.description if known is not None else scenario
        for category in gen.categories:
            for i in range(gen.per_scenario):
                dialogue = rng(ctx.seed, "propose", scenario, category, i).choice(by_scenario[scenario])
                jobs.append((scenario, category, i, propose_messages(dialogue, category, description)))
    model = gen.model
    requests = [json_request(m, PROPOSE_SCHEMA, model, derive(ctx.seed, "propose", s, c, i)) for s, c, i, m in jobs]
    results = generate_batched(ctx, model, requests, "proposing tasks")
    tasks = []
    for (scenario, category, i, _), result in zip(jobs, results, strict=True):
        if not result.ok or not isinstance(result.value, dict):
            continue
        tasks.append({"id": f"gen-{scenario}-{category}-{i}", "category": category,
                      "instruction": result.value["instruction"].strip(),
                      "output": outputs.get(category, GENERATED_OUTPUT), "weight": 1.0, "scenarios": [scenario],
                      "origin": "generated", "chain": []})
    return tasks


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """One proposal per scenario × category × per_scenario (the taxonomy's scenarios, at least one)."""
    from dialc_runtime.engine.estimates import generation, usage

    assert isinstance(step.params, TasksParams)
    gen = step.params.generate
    if gen is None:
        return usage(0, 0, 0)
    return generation(max(len(gen.scenarios), 1) * len(gen.categories) * gen.per_scenario, gen.model)

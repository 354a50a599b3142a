"""Paraphrases pass the same review gate and failure filters as evolved tasks, and evolved tasks are paraphrased."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline_kit import SPEC, compile_spec, write_project
from runtime_fakes import MemoryContext

from dialc_runtime.models.base import GenRequest, GenResult
from dialc_runtime.steps import expressions as expressions_step
from dialc_runtime.steps import review as review_step
from dialc_runtime.steps import sample as sample_step

PARAPHRASED = SPEC.replace("expressions style {{ tone = {{formal: 1, friendly: 3}} }}",
                           "expressions style {{ tone = {{formal: 1, friendly: 3}}  paraphrase = tiny  "
                           "paraphrases = 2 }}").replace("dialogues * tasks * style", "dialogues * evolved * style")
REVIEWED = PARAPHRASED + 'evolve evolved {{ from = tasks  model = tiny  review = "review.jsonl" }}\n'
UNREVIEWED = PARAPHRASED + "evolve evolved {{ from = tasks  model = tiny }}\n"


def test_the_compiler_routes_paraphrases_of_evolved_tasks_through_the_gate(tmp_path: Path) -> None:
    plan = compile_spec(write_project(tmp_path, spec=REVIEWED))
    assert plan.step("expressions.style").inputs == {"tasks": ["evolve.evolved"]}  # evolved tasks too
    assert plan.step("review.evolved").inputs == {"candidates": ["evolve.evolved", "expressions.style"]}
    sample = plan.step("sample.prompts")
    assert sample.inputs["tasks"] == ["review.evolved"] and "expressions" not in sample.inputs  # no bypass


def test_without_a_gate_evolved_tasks_are_paraphrased_too(tmp_path: Path) -> None:
    plan = compile_spec(write_project(tmp_path, spec=UNREVIEWED))
    assert plan.step("expressions.style").inputs == {"tasks": ["evolve.evolved"]}
    assert plan.step("sample.prompts").inputs["expressions"] == ["expressions.style"]


class Paraphraser:
    """Answers every paraphrase request from a script, in order."""

    name = "fake"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        out = [GenResult(json.dumps({"instruction": a}), True, {"instruction": a}) for a in self.answers]
        self.answers = self.answers[len(requests):]
        return out[: len(requests)]


MODEL = {"name": "tiny", "path": "fake"}
TASKS = [
    {"id": "summary", "category": "summary", "instruction": "Summarise the dialogue for the agent's notes.",
     "output": {"kind": "text", "max_chars": 200}, "origin": "declared", "chain": []},
    {"id": "summary~deepen1", "category": "summary", "instruction": "Summarise the customer's needs and the "
     "reasons behind them.", "output": {"kind": "text", "max_chars": 200}, "origin": "evolved",
     "chain": [{"operator": "deepen", "parent": "summary"}], "filtered": None},
]


def paraphrase(answers: list[str]) -> MemoryContext:
    ctx = MemoryContext("expressions.style", {"axes": {}, "paraphrase": {"model": MODEL, "n": 2}},
                        {"evolve.evolved": TASKS}, backend=Paraphraser(answers))
    expressions_step.run(ctx)  # type: ignore[arg-type]
    return ctx


def test_paraphrases_pass_the_evolution_failure_filters() -> None:
    ctx = paraphrase(["Detailed Instructions", "Write a short summary of the conversation for the agent's notes.",
                      "Summarise the customer's needs and the reasons behind them.",
                      "Explain what the customer needs and why, in a few sentences."])
    made = {r["id"]: r for r in ctx.emitted.values() if r["kind"] == "paraphrase"}
    assert set(made) == {"summary#p1", "summary#p2", "summary~deepen1#p1", "summary~deepen1#p2"}
    assert made["summary#p1"]["filtered"].startswith("empty: too short")
    assert made["summary~deepen1#p1"]["filtered"].startswith("copied")  # the original, repeated
    assert made["summary#p2"]["filtered"] is None and made["summary#p2"]["chain"] == [
        {"operator": "paraphrase", "parent": "summary"}]


def review(path: Path, inputs: dict[str, list[dict[str, Any]]]) -> MemoryContext:
    """A review step reading both inputs as candidates (as the compiler wires it)."""
    ctx = MemoryContext("review.evolved", {"path": str(path)}, inputs)
    ctx.step = ctx.step.model_copy(update={"inputs": {"candidates": list(inputs)}})
    return ctx


def test_the_review_gate_holds_paraphrases_until_a_person_decides(tmp_path: Path) -> None:
    para = [r for r in paraphrase(["Detailed Instructions", "Write a short summary of the conversation.",
                                   "Say what the customer needs and why they need it.",
                                   "Explain the customer's needs and their reasons briefly."]).emitted.values()
            if r["kind"] == "paraphrase"]
    path = tmp_path / "review.jsonl"
    inputs = {"evolve.evolved": TASKS, "expressions.style": para}
    ctx = review(path, inputs)
    out = review_step.run(ctx)  # type: ignore[arg-type]
    assert out.status == "blocked" and "3 paraphrase(s)" in out.message
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["id"] for r in rows} == {"summary~deepen1", "summary#p2", "summary~deepen1#p1",
                                       "summary~deepen1#p2"}  # the filtered one never reaches a person
    decisions = {"summary~deepen1": "reject", "summary#p2": "accept", "summary~deepen1#p1": "accept",
                 "summary~deepen1#p2": "accept"}
    path.write_text("".join(json.dumps({**r, "decision": decisions[r["id"]]}) + "\n" for r in rows))
    ctx = review(path, inputs)
    out = review_step.run(ctx)  # type: ignore[arg-type]
    kept = list(ctx.emitted.values())
    assert [t["id"] for t in kept if t.get("kind") != "paraphrase"] == ["summary"]
    assert [p["id"] for p in kept if p.get("kind") == "paraphrase"] == ["summary#p2"]  # not of a rejected task
    assert out.metrics["paraphrases_accepted"] == 1


def test_the_sample_uses_reviewed_paraphrases_and_never_filtered_ones() -> None:
    dialogues = [{"id": f"d{i}", "scenario": "rental", "turns": [{"role": "customer", "text": "hi"}]} for i in range(6)]
    reviewed = [TASKS[0], {"kind": "paraphrase", "id": "summary#p1", "task_id": "summary", "category": "summary",
                           "instruction": "Write a brief summary.", "filtered": None, "reviewed": "accepted"},
                {"kind": "paraphrase", "id": "summary#p2", "task_id": "summary", "category": "summary",
                 "instruction": "Detailed Instructions", "filtered": "empty: too short to be a task"}]
    ctx = MemoryContext("sample.prompts", {"count": 6, "seed": 1}, {"ingest.d": dialogues,
                                                                    "review.evolved": reviewed})
    sample_step.run(ctx)  # type: ignore[arg-type]
    used = {r["instruction"] for r in ctx.emitted.values()}
    assert "Detailed Instructions" not in used and used <= {"Write a brief summary.", TASKS[0]["instruction"]}
    assert {r["task_id"] for r in ctx.emitted.values()} == {"summary"}  # a paraphrase is no task

"""Best-of-N labelling: the language, the candidates' ids and seeds, and the filter's choice of one per prompt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pipeline_kit import SPEC, compile_spec, write_project
from runtime_fakes import MemoryContext

from dialc.frontend import run_frontend
from dialc.plan import LabelParams, ModelSpec
from dialc_runtime.quality.aggregate import Decision
from dialc_runtime.quality.best_of import candidate_fields, one_per_prompt, select_best, selection_metrics
from dialc_runtime.steps import filter as filter_step
from dialc_runtime.steps.label import request_for

SCHEMA = {"type": "object", "properties": {"budget": {"type": ["integer", "null"]}}, "required": ["budget"],
          "additionalProperties": False}
DIALOGUE = {"id": "d1", "scenario": "rental", "turns": [{"role": "customer", "text": "My budget is 2,800 a month."}]}


def candidate(prompt: str, k: int, budget: Any, ok: bool = True, n: int = 3) -> dict[str, Any]:
    return {"id": prompt, **candidate_fields(prompt, k, n), "dialogue_id": "d1", "scenario": "rental",
            "task_id": "extract", "category": "extraction", "expression": {},
            "output": {"kind": "json", "schema": SCHEMA},
            "messages": [{"role": "user", "content": "Extract."}], "answer": json.dumps({"budget": budget}),
            "value": {"budget": budget} if ok else None, "ok": ok, "error": None if ok else "invalid JSON"}


def decision(aggregate: float | None, cause: str = "kept") -> Decision:
    return Decision(cause == "kept", cause, cause, aggregate)


# ---- the choice ------------------------------------------------------------------------------------------


def test_the_highest_aggregate_among_selectable_candidates_wins() -> None:
    records = [candidate("p", k, 1) for k in range(3)] + [{"id": "single", "ok": True}]
    decisions = [decision(0.9, "gate:valid"), decision(0.4), decision(0.7, "keep"), decision(0.1)]
    out, extra = select_best(records, decisions)
    assert extra[2] == {"selected": True} and out[2] == decisions[2]  # the winner keeps its keep-rule verdict
    assert extra[0] == {"selected": False} and out[0].cause == "gate:valid"  # failed a gate: not a contender
    assert extra[1] == {"selected": False, "lost_to": "p#c2"} and out[1].cause == "best_of" and not out[1].kept
    assert "lost to p#c2 (aggregate 0.400 < 0.700)" in out[1].reason
    assert extra[3] == {} and out[3] == decisions[3]  # not a candidate: untouched


def test_ties_go_to_the_lower_candidate_index_and_no_aggregate_ranks_last() -> None:
    records = [candidate("p", k, 1) for k in range(3)]
    out, extra = select_best(records, [decision(None), decision(0.5), decision(0.5)])
    assert [e.get("selected") for e in extra] == [False, True, False]
    assert "same aggregate 0.500, lower candidate index wins" in out[2].reason
    assert extra[0]["lost_to"] == "p#c1"


def test_a_prompt_without_a_selectable_candidate_selects_none_and_counts_once() -> None:
    records = [candidate("p", k, 1, ok=False) for k in range(3)] + [candidate("q", k, 2) for k in range(3)]
    decisions = [decision(None, "label")] * 3 + [decision(0.2), decision(0.8), decision(0.3)]
    out, extra = select_best(records, decisions)
    assert all(e == {"selected": False} for e in extra[:3]) and [d.cause for d in out[:3]] == ["label"] * 3
    rows = [{**r, **e, "kept": d.kept, "aggregate": d.aggregate} for r, e, d in zip(records, extra, out, strict=True)]
    assert [r["id"] for r in one_per_prompt(rows)] == ["q#c1", "p#c0"]
    figures = selection_metrics(rows)
    assert figures["prompts"] == 2 and figures["none_selectable"] == 1 and figures["later_candidate_won"] == 1


def test_candidates_have_their_own_seeds_and_candidate_zero_is_the_single_label() -> None:
    model = ModelSpec(name="m", path="builtin:x", temperature=0.7)
    prompt = {"id": "prompts-000001", "messages": [{"role": "user", "content": "hi"}], "output": {"kind": "text",
                                                                                                "max_chars": 50}}
    seeds = [request_for(prompt, model, 7, k).seed for k in range(4)]
    assert len(set(seeds)) == 4 and seeds == [request_for(prompt, model, 7, k).seed for k in range(4)]
    assert seeds[0] == request_for(prompt, model, 7).seed  # N = 1 and candidate 0 ask the same question
    assert request_for({**prompt, "id": "prompts-000002"}, model, 7, 1).seed != seeds[1]
    assert candidate_fields("p", 2, 4) == {"id": "p#c2", "prompt_id": "p", "candidate": 2, "candidates": 4}
    assert candidate_fields("p", 0, 1) == {}


# ---- the filter step -------------------------------------------------------------------------------------


def scored(records: list[dict[str, Any]], grounded: dict[str, float]) -> dict[str, list[dict[str, Any]]]:
    valid = [{"id": r["id"], "score": 1.0 if r["ok"] else None, "passed": True if r["ok"] else None, "detail": ""}
             for r in records]
    ground = [{"id": r["id"], "score": grounded[r["id"]], "passed": grounded[r["id"]] >= 0.5, "detail": ""}
              for r in records]
    return {"label.labels": records, "score.valid": valid, "score.grounded": ground}


def test_the_filter_keeps_the_best_candidate_and_keeps_the_losers_with_their_lineage() -> None:
    records = [candidate("a", 0, 9000), candidate("a", 1, 2800), candidate("a", 2, 2800, ok=False),
               candidate("b", 0, 2800), candidate("b", 1, 1), candidate("b", 2, 2)]
    grounded = {"a#c0": 0.0, "a#c1": 1.0, "a#c2": 0.0, "b#c0": 1.0, "b#c1": 1.0, "b#c2": 0.2}
    params = {"dimensions": {"valid": {"kind": "rule", "gate": True}, "grounded": {"kind": "grounding"}},
              "keep": {"op": ">=", "left": {"ref": "score"}, "right": 0.5},
              "expects": [{"metric": "kept_rate", "op": ">=", "value": 0.9}]}
    ctx = MemoryContext("filter.quality", params, scored(records, grounded))
    out = filter_step.run(ctx)  # type: ignore[arg-type]
    rows = ctx.emitted
    assert len(rows) == 6  # every candidate stays in the store, with its scores
    assert [k for k, r in rows.items() if r["kept"]] == ["a#c1", "b#c0"]
    assert rows["a#c0"]["lost_to"] == "a#c1" and rows["a#c0"]["selected"] is False
    assert rows["a#c0"]["cause"] == "best_of"
    assert rows["a#c0"]["scores"]["grounded"] == 0.0
    assert rows["a#c2"]["cause"] == "label" and "lost_to" not in rows["a#c2"]
    assert rows["b#c1"]["lost_to"] == "b#c0"  # same aggregate as b#c0: the lower index wins
    assert out.metrics["records"] == 2 and out.metrics["kept"] == 2  # rates count prompts, not candidates
    assert out.status == "ok"  # kept_rate 2/2, not 2/6
    assert out.metrics["best_of"]["later_candidate_won"] == 1 and out.metrics["best_of"]["candidates"] == 6


# ---- the language ----------------------------------------------------------------------------------------


def test_candidates_compile_into_the_label_params_and_single_labels_keep_their_plan(tmp_path: Path) -> None:
    spec = write_project(tmp_path)
    single = compile_spec(spec)
    label = single.step("label.labels")
    assert isinstance(label.params, LabelParams) and label.params.candidates == 1
    assert "candidates" not in label.params_json()  # plans and cache keys of single labels as before
    best = compile_spec(spec, ["label.labels.candidates=4"])
    assert best.step("label.labels").params.candidates == 4  # type: ignore[union-attr]
    assert best.step("label.labels").params_json()["candidates"] == 4
    assert best.step("label.labels").fingerprint != label.fingerprint


@pytest.mark.parametrize("value, code", [("0", "out-of-range"), ("17", "out-of-range"), ("two", "type-mismatch")])
def test_candidates_out_of_bounds_are_refused(tmp_path: Path, value: str, code: str) -> None:
    spec = write_project(tmp_path, spec=SPEC.replace("model = tiny }}", f"model = tiny  candidates = {value} }}}}"))
    front = run_frontend(spec)
    assert [d.code for d in front.diags.items if d.severity == "error"] == [code]


def test_candidates_from_a_greedy_labeller_are_warned_about(tmp_path: Path) -> None:
    greedy = SPEC.replace("temperature = 0.7", "temperature = 0").replace("model = tiny }}",
                                                                        "model = tiny  candidates = 3 }}")
    front = run_frontend(write_project(tmp_path, spec=greedy))
    found = [d for d in front.diags.items if d.code == "greedy-candidates"]
    assert len(found) == 1 and "3 candidates" in found[0].message and found[0].severity == "warning"
    warm = run_frontend(write_project(tmp_path / "warm", spec=SPEC.replace("model = tiny }}",
                                                                           "model = tiny  candidates = 3 }}")))
    assert not [d for d in warm.diags.items if d.code == "greedy-candidates"]


class SeedEcho:
    """Answers each request with its seed, so candidates can be told apart."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    def generate(self, requests: list[Any]) -> list[Any]:
        from dialc_runtime.models.base import GenResult

        self.seeds += [r.seed for r in requests]
        return [GenResult(text=f"answer {r.seed}", ok=True, value=f"answer {r.seed}") for r in requests]


def test_the_label_step_emits_n_candidates_per_prompt_with_their_lineage() -> None:
    from dialc_runtime.steps import label as label_step

    prompts = [{"id": f"prompts-00000{i}", "dialogue_id": "d1", "messages": [{"role": "user", "content": f"q{i}"}],
                "output": {"kind": "text", "max_chars": 50}} for i in range(2)]
    model = {"name": "m", "path": "fake", "temperature": 0.7, "batch_size": 4}
    backend = SeedEcho()
    ctx = MemoryContext("label.labels", {"model": model, "seed": 7, "candidates": 3}, {"sample.prompts": prompts},
                        backend=backend)
    out = label_step.run(ctx)  # type: ignore[arg-type]
    assert list(ctx.emitted) == [f"{i:06d}#c{k}" for i in range(2) for k in range(3)]  # keys: the prompt's + #c<k>
    first = ctx.emitted["000000#c1"]
    assert first["id"] == "prompts-000000#c1" and first["prompt_id"] == "prompts-000000" and first["candidate"] == 1
    assert first["candidates"] == 3 and first["messages"] == prompts[0]["messages"]
    assert len(set(backend.seeds)) == 6 and out.metrics["labelled"] == 6
    single = MemoryContext("label.labels", {"model": model, "seed": 7}, {"sample.prompts": prompts}, backend=SeedEcho())
    label_step.run(single)  # type: ignore[arg-type]
    assert single.emitted["000000"]["answer"] == ctx.emitted["000000#c0"]["answer"]  # candidate 0 = the single label
    assert "candidate" not in single.emitted["000000"]


def test_a_dedup_gate_does_not_reject_a_candidate_for_repeating_its_sibling() -> None:
    """Candidates of one prompt are alternatives (one is kept): the same choice twice is not a copy; the same
    answer to another prompt of the dialogue still is."""
    from dialc_runtime.steps.score import score_dedup

    def rec(prompt: str, k: int | None, answer: str) -> dict[str, object]:
        base = {"ok": True, "dialogue_id": "d1", "output": {"kind": "choice"}, "answer": answer, "value": answer}
        if k is None:
            return {**base, "id": prompt}
        return {**base, "id": f"{prompt}#c{k}", "prompt_id": prompt, "candidate": k, "candidates": 3}

    labels = [rec("p1", 0, "ready"), rec("p1", 1, "ready"), rec("p1", 2, "browsing"), rec("p2", None, "ready")]
    verdicts = dict(score_dedup(labels, {"name": "novel", "method": "minhash", "threshold": 0.85})[0])
    assert [verdicts[k].passed for k in ("p1#c0", "p1#c1", "p1#c2")] == [True, True, True]
    assert verdicts["p2"].passed is False and verdicts["p2"].extra["duplicate_of"] == "p1#c0"

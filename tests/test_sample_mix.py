"""`min_per` and capacity: at least N prompts per balance-key value within `count`, and a mix the corpus
cannot supply is said out loud (by `validate` when the corpus is readable, and by the run)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from runtime_fakes import MemoryContext

from dialc.frontend import run_frontend
from dialc.mix import allocate, holdable_count, minimum_shortfall, short_cells
from dialc.plan import SampleParams
from dialc_runtime.data.sampling import draw_prompts
from dialc_runtime.steps import sample as sample_step

CELLS = {(s, c): 1.0 for s in ("rental", "purchase", "viewing", "complaint") for c in ("a", "b", "c", "d")}
ROOMY = {cell: 100 for cell in CELLS}


def test_min_per_never_multiplies_count() -> None:
    """Issue 9: with 16 cells, min_per = 2 took 32 prompts before the weights had their say (28 → 56)."""
    alloc = allocate(CELLS, ROOMY, 28, 2, (0, 1))
    assert sum(alloc.values()) == 28
    for index in (0, 1):
        totals = Counter()
        for cell, n in alloc.items():
            totals[cell[index]] += n
        assert min(totals.values()) >= 2


def test_min_per_keeps_the_declared_weights_where_they_already_give_enough() -> None:
    weights = {("rental", "a"): 3.0, ("purchase", "a"): 1.0}
    assert allocate(weights, {c: 100 for c in weights}, 28, 2, (0,)) == {("rental", "a"): 21, ("purchase", "a"): 7}
    rare = {("rental", "a"): 10.0, ("purchase", "a"): 1.0}
    assert allocate(rare, {c: 100 for c in rare}, 20, 5, (0,)) == {("rental", "a"): 15, ("purchase", "a"): 5}


def test_min_per_is_per_value_not_per_cell() -> None:
    weights = {("rental", "a"): 9.0, ("rental", "b"): 1.0, ("purchase", "a"): 9.0, ("purchase", "b"): 1.0}
    alloc = allocate(weights, {c: 100 for c in weights}, 20, 4, (1,))  # category b: at least 4 in all
    assert alloc[("rental", "b")] + alloc[("purchase", "b")] == 4 and sum(alloc.values()) == 20


def test_an_impossible_minimum_is_an_error() -> None:
    assert minimum_shortfall({"category": 4}, 7, 2) == ("min_per = 2 for each of the 4 category values needs "
                                                        "8 prompts, but count is 7")
    assert minimum_shortfall({"category": 4, "scenario": 3}, 8, 2) is None


def test_capacity_per_cell_and_the_count_the_mix_can_hold() -> None:
    weights = {("rental", "a"): 3.0, ("complaint", "a"): 1.0}
    capacity = {("rental", "a"): 1000, ("complaint", "a"): 5}
    assert holdable_count(weights, capacity) == 21  # complaint's share of 21 (5.25) rounds to its 5
    assert short_cells(weights, capacity, 100) == [(("complaint", "a"), 25, 5)]
    assert short_cells(weights, capacity, 20) == []


def dialogues(n: dict[str, int]) -> list[dict[str, Any]]:
    return [{"id": f"{s}-{i}", "scenario": s, "turns": [{"role": "customer", "text": f"{s} {i}"}]}
            for s, k in n.items() for i in range(k)]


TASKS = [{"id": "t", "category": "summary", "instruction": "Sum up.", "output": {"kind": "text", "max_chars": 80},
          "weight": 1.0}]
SCENARIOS = {"rental": {"description": "Renting", "weight": 3}, "complaint": {"description": "Complaints",
                                                                             "weight": 1}}


def test_the_sample_step_says_when_the_mix_cannot_be_met() -> None:
    params = {"count": 100, "balance": ["scenario"], "scenarios": SCENARIOS, "seed": 1}
    ctx = MemoryContext("sample.prompts", params, {"ingest.d": dialogues({"rental": 200, "complaint": 5}),
                                                  "tasks.tasks": TASKS})
    out = sample_step.run(ctx)  # type: ignore[arg-type]
    assert any("cannot follow its declared mix" in w and "count = 21" in w for w in ctx.warnings), ctx.warnings
    assert out.metrics["capacity"]["holdable_count"] == 21
    assert out.metrics["capacity"]["short"] == [{"scenario": "complaint", "category": "summary", "share": 25,
                                                 "capacity": 5}]


def test_the_sample_step_refuses_an_impossible_minimum() -> None:
    import pytest

    from dialc_runtime.errors import StepFailed

    params = {"count": 3, "balance": ["scenario"], "min_per": 2, "scenarios": SCENARIOS, "seed": 1}
    ctx = MemoryContext("sample.prompts", params, {"ingest.d": dialogues({"rental": 20, "complaint": 5}),
                                                  "tasks.tasks": TASKS})
    with pytest.raises(StepFailed, match="min_per = 2 for each of the 2 scenario values needs 4 prompts"):
        sample_step.run(ctx)  # type: ignore[arg-type]


def test_draws_meet_min_per_and_count() -> None:
    params = SampleParams(count=24, balance=["scenario"], min_per=8, seed=0,
                          scenarios={"rental": {"description": "r", "weight": 10}, "complaint": {"description": "c",
                                                                                                 "weight": 1}})
    draws = draw_prompts(dialogues({"rental": 30, "complaint": 30}), TASKS, {}, params, seed=0)
    assert len(draws) == 24 and Counter(d.scenario for d in draws) == {"rental": 16, "complaint": 8}


def test_validate_checks_min_per_and_capacity_on_a_readable_corpus(tmp_path: Path) -> None:
    rows = [f'{{"id": "r{i}", "scenario": "rental", "turns": []}}' for i in range(40)]
    rows += [f'{{"id": "c{i}", "scenario": "complaint", "turns": []}}' for i in range(2)]
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = tmp_path / "x.dial"
    spec.write_text("""
model small { path = "builtin:smollm2-135m-instruct" }
source dialogues { path = "d.jsonl"  roles = [agent, customer] }
scenarios {
  rental    "Renting"     weight 3
  complaint "Complaints"  weight 1
}
task reply { category = reply  instruction = "Reply."  output = text(max = 200) }
task sum { category = summary  instruction = "Sum up."  output = text(max = 200) }
sample big { from = dialogues * tasks  count = 40  balance = [scenario, category] }
sample tight { from = dialogues * tasks  count = 3  balance = [scenario, category]  min_per = 2 }
sample loose { from = dialogues * tasks  count = 5  min_per = 2 }
label a { from = big  model = small }
label b { from = tight  model = small }
label c { from = loose  model = small }
""", encoding="utf-8")
    diags = run_frontend(spec).diags
    found = {(d.code, d.span.line if d.span else 0): d.message for d in diags.items if d.code != "unused"}
    assert "holds only 2 distinct prompts" in found[("sample-too-large", 10)]
    assert "at most count = 18" in found[("sample-too-large", 10)]  # complaint cells: 2.25 → 2 each
    assert "min_per = 2 for each of the 2 scenario values needs 4 prompts, but count is 3" in found[
        ("out-of-range", 11)]
    assert "balance is empty" in found[("missing-field", 12)]


def test_a_minimum_the_corpus_cannot_hold_is_warned_about() -> None:
    params = {"count": 20, "balance": ["scenario"], "min_per": 6, "scenarios": SCENARIOS, "seed": 1}
    ctx = MemoryContext("sample.prompts", params, {"ingest.d": dialogues({"rental": 30, "complaint": 2}),
                                                  "tasks.tasks": TASKS})
    sample_step.run(ctx)  # type: ignore[arg-type]
    assert "min_per = 6 not met: scenario complaint has 2 prompts (the corpus holds no more)" in ctx.warnings

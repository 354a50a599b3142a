"""Review files: what a candidate row shows, decisions merged one at a time under a lock, the terminal
review's $EDITOR editing and its display of the output constraint."""

from __future__ import annotations

import json
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from review_kit import CANDIDATES, DIALOGUE, IDS, TASKS, write_candidates
from typer.testing import CliRunner

from dialc.cli import app
from dialc_runtime.data.review import (
    Decision,
    constraint_text,
    decide_pending,
    merge_candidates,
    read_review,
    record_decision,
    state,
)


def test_rows_show_operator_source_task_output_constraint_and_dialogue(tmp_path: Path) -> None:
    rows = read_review(write_candidates(tmp_path / "r.jsonl"))
    row = rows["extract~deepen1"]
    assert (row["operator"], row["parent"], row["original"]) == ("deepen", "extract", TASKS["extract"]["instruction"])
    assert row["output"] == "{ budget: int? [0..100000000]  district: str? (max 40) }"
    assert row["dialogue"] == DIALOGUE
    para = rows["reply#p1"]  # a paraphrase shows the constraint of the task it rephrases
    assert (para["operator"], para["output"], para["original"]) == ("paraphrase", "text(max = 300)",
                                                                    TASKS["reply"]["instruction"])
    assert "dialogue" not in para  # none recorded for a declared task: the key is left out, not null


def test_constraints_read_like_the_spec() -> None:
    assert constraint_text({"kind": "choice", "options": ["yes", "no"]}) == "choice([yes, no])"
    assert constraint_text({"kind": "regex", "pattern": r"^\d{4}$"}) == r'regex("^\\d{4}$")'
    listed = {"kind": "json", "schema": {"properties": {
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 5},
        "purpose": {"type": ["string", "null"], "enum": ["rent", "buy", None]}}}}
    assert constraint_text(listed) == "{ tags: [str (max 20)] (max 5)  purpose: enum(rent, buy)? }"


def test_a_new_run_keeps_decisions_and_edits_and_refreshes_what_is_shown(tmp_path: Path) -> None:
    path = write_candidates(tmp_path / "r.jsonl")
    record_decision(path, Decision("reply~concretize1", "accept", "Reply with two viewing times."))
    older = [{k: v for k, v in json.loads(line).items() if k not in ("output", "dialogue")}
             for line in path.read_text().splitlines()]  # as an older dialc wrote it: no context keys
    path.write_text("".join(json.dumps(row) + "\n" for row in older))
    rows = {r["id"]: r for r in merge_candidates(path, CANDIDATES, TASKS)}
    assert rows["reply~concretize1"]["decision"] == "accept"
    assert rows["reply~concretize1"]["instruction"] == "Reply with two viewing times."  # the edit survives
    again = read_review(path)
    assert again["extract~deepen1"]["dialogue"] == DIALOGUE and again["reply#p1"]["output"] == "text(max = 300)"


def test_a_decision_merges_into_the_file_as_it_is_now(tmp_path: Path) -> None:
    path = write_candidates(tmp_path / "r.jsonl")
    first = read_review(path)  # two reviewers read the file at the same time
    record_decision(path, Decision(IDS[0], "accept", seen=state(first[IDS[0]])))
    record_decision(path, Decision(IDS[1], "reject", seen=state(first[IDS[1]])))  # from the stale view
    rows = read_review(path)
    assert (rows[IDS[0]]["decision"], rows[IDS[1]]["decision"]) == ("accept", "reject")


def test_a_decision_on_a_candidate_changed_meanwhile_is_a_conflict(tmp_path: Path) -> None:
    path = write_candidates(tmp_path / "r.jsonl")
    seen = state(read_review(path)[IDS[0]])
    assert not record_decision(path, Decision(IDS[0], "accept", seen=seen)).conflict
    outcome = record_decision(path, Decision(IDS[0], "reject", seen=seen))  # saw it pending: stale
    assert outcome.conflict and outcome.row["decision"] == "accept"
    assert read_review(path)[IDS[0]]["decision"] == "accept"
    assert not record_decision(path, Decision(IDS[0], "accept", seen=seen)).conflict  # changes nothing: fine
    with pytest.raises(ValueError, match="cannot be empty"):
        record_decision(path, Decision(IDS[1], "accept", "   "))
    with pytest.raises(ValueError, match="no candidate"):
        record_decision(path, Decision("nope", "accept"))


def test_concurrent_decisions_from_many_threads_all_survive(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    candidates = [{**CANDIDATES[0], "id": f"c{i:03d}"} for i in range(40)]
    merge_candidates(path, candidates, TASKS)
    barrier = threading.Barrier(8)

    def decide(worker: int) -> None:
        barrier.wait()
        for i in range(worker, 40, 8):
            record_decision(path, Decision(f"c{i:03d}", "accept" if i % 2 else "reject"))

    threads = [threading.Thread(target=decide, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = read_review(path)
    assert [rows[f"c{i:03d}"]["decision"] for i in range(40)] == ["accept" if i % 2 else "reject" for i in range(40)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]  # no temporary file left behind


def test_writes_keep_the_file_mode_and_bulk_decisions_count(tmp_path: Path) -> None:
    path = write_candidates(tmp_path / "r.jsonl")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # committed beside the spec: not a private 0600 file
    path.chmod(0o664)
    assert decide_pending(path, "reject") == 4 and decide_pending(path, "accept") == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


# ---- the terminal review --------------------------------------------------------------------------
def _fake_editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.py"
    script.write_text(f"import sys\n{body}\n")
    return f"{sys.executable} {script}"


def _review(path: Path, answers: str, editor: str | None) -> tuple[int, str]:
    env = {"EDITOR": editor or ""}
    result = CliRunner().invoke(app, ["review", str(path)], input=answers, env=env)
    return result.exit_code, result.stdout


def test_terminal_edit_in_editor_saves_the_edited_instruction(tmp_path: Path) -> None:
    path = write_candidates(tmp_path / "r.jsonl")
    editor = _fake_editor(tmp_path, "text = open(sys.argv[1]).read()\n"
                                    "assert text.startswith('Extract the budget and district')\n"
                                    "open(sys.argv[1], 'w').write('Extract the budget only.\\n# a comment\\n')")
    code, out = _review(path, "e\nq\n", editor)
    assert code == 3  # three still pending
    assert "output:    { budget: int? [0..100000000]  district: str? (max 40) }" in out
    assert "check against dialogue d07 (rental)" in out and "Customer: I need a 2-bedroom flat" in out
    row = read_review(path)["extract~add_constraint1"]
    assert (row["decision"], row["instruction"]) == ("accept", "Extract the budget only.")


def test_terminal_edit_abandoned_when_the_editor_fails_or_empties_the_text(tmp_path: Path) -> None:
    path = write_candidates(tmp_path / "r.jsonl")
    failing = _fake_editor(tmp_path, "sys.exit(1)")
    code, out = _review(path, "e\nq\n", failing)
    assert "exited with status 1: not changed" in out and read_review(path)[IDS[0]]["decision"] == "pending"
    emptying = _fake_editor(tmp_path, "open(sys.argv[1], 'w').write('# nothing\\n')")
    code, out = _review(path, "e\nq\n", emptying)
    assert "empty instruction: not changed" in out and read_review(path)[IDS[0]]["decision"] == "pending"


def test_terminal_edit_without_editor_prompts_inline(tmp_path: Path) -> None:
    path = write_candidates(tmp_path / "r.jsonl")
    code, out = _review(path, "e\nExtract the district only.\nr\nq\n", None)
    rows = read_review(path)
    assert (rows[IDS[0]]["decision"], rows[IDS[0]]["instruction"]) == ("accept", "Extract the district only.")
    assert rows[IDS[1]]["decision"] == "reject" and "new instruction" in out


# ---- the evolve step: with `context = SOURCE`, each candidate carries the dialogue it is checked against
class Rewriter:
    """Answers every evolution request with a new instruction naming its request number."""

    name = "fake"

    def __init__(self) -> None:
        self.asked = 0

    def generate(self, requests: list[Any]) -> list[Any]:
        from dialc_runtime.models.base import GenResult

        out = []
        for _ in requests:
            self.asked += 1
            text = f"Rewrite number {self.asked}: list what the customer asks for and why, in order."
            out.append(GenResult(json.dumps({"instruction": text}), True, {"instruction": text}))
        return out


def _evolve(dialogues: list[dict[str, Any]]) -> dict[str, Any]:
    from runtime_fakes import MemoryContext

    from dialc_runtime.steps import evolve

    tasks = [{**TASKS["reply"], "scenarios": ["purchase"], "origin": "declared", "chain": [], "weight": 1.0},
             {**TASKS["extract"], "scenarios": [], "origin": "declared", "chain": [], "weight": 1.0}]
    params = {"model": {"name": "tiny", "path": "fake"}, "operators": [{"name": "deepen"}], "rounds": 2,
              "per_round": 0, "seed": 3}
    inputs: dict[str, list[Any]] = {"tasks.tasks": tasks}
    if dialogues:
        inputs["ingest.dialogues"] = dialogues
    ctx = MemoryContext("evolve.evolved", params, inputs, backend=Rewriter())
    evolve.run(ctx)  # type: ignore[arg-type]
    return {t["id"]: t for t in ctx.emitted.values() if t.get("origin") == "evolved"}


def test_evolved_candidates_carry_a_dialogue_of_their_scenario_from_the_context() -> None:
    dialogues = [{"id": f"d{i}", "scenario": "purchase" if i % 4 == 0 else "rental",
                  "turns": [{"role": "customer", "text": f"Question {i}?"}, {"role": "agent", "text": "Answer."}]}
                 for i in range(12)]
    made = _evolve(dialogues)
    assert set(made) == {"reply~deepen1", "extract~deepen1", "reply~deepen1~deepen2", "extract~deepen1~deepen2"}
    for task_id in ("reply~deepen1", "reply~deepen1~deepen2"):  # the reply task is about purchases only
        shown = made[task_id]["context_dialogue"]
        assert shown["scenario"] == "purchase" and shown["text"].startswith(f"Customer: Question {shown['id'][1:]}?")
    assert {made[t]["context_dialogue"]["id"] for t in made} <= {d["id"] for d in dialogues}
    assert _evolve(dialogues) == made  # seeded: the same dialogue every run
    assert all("context_dialogue" not in t for t in _evolve([]).values())  # no context: none

"""Model-driven data steps on the tiny model: task proposals, evolution, labels, export, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_kit import SPEC, records, run, write_project

from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.models.validation import check_output

GEN_SPEC = SPEC.replace("dialogues * tasks * style", "dialogues * evolved * style") + """
tasks {{ model = tiny  from = dialogues  generate = 1  categories = [extraction]  dedup = 0.9 }}
evolve evolved {{ from = tasks  model = tiny  rounds = 2  per_round = 2  review = "review.jsonl" }}
"""


def _value(label: dict) -> object:
    return label["value"] if label["output"]["kind"] == "json" else label["answer"]


@pytest.fixture(scope="module")
def labelled(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("kit")
    spec = write_project(root, model=tiny_model_dir, count=10)
    return root, run(spec, root / "run", select=["+export.dataset"])


def test_labels_satisfy_their_constraints_and_exports_validate(labelled: tuple[Path, object]) -> None:
    root, res = labelled
    labels = records(root / "run", res, "label.labels")
    assert len(labels) == 10
    for label in labels:
        assert label["attempts"] >= 1 and {"answer", "value", "ok", "label_model", "lineage"} <= set(label)
        if label["ok"]:
            assert check_output(_value(label), label["output"]) == []
    exported = res.step("export.dataset")
    assert exported.status == "ok"
    out = RunLayout(root / "run").artifact_dir(exported.key or "")
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert rows and all(r["messages"][-1]["role"] == "assistant" for r in rows)
    by_id = {label["id"]: label for label in labels}
    for row in rows:  # 100% of exported records validate against their task's schema
        assert check_output(_value(by_id[row["metadata"]["id"]]), by_id[row["metadata"]["id"]]["output"]) == []
    import pyarrow.parquet as pq

    assert pq.read_table(out / "train.parquet").num_rows == len(rows)
    from datasets import load_from_disk

    dataset = load_from_disk(str(out / "hf_dataset"))["train"]  # no fine-tune here: no hold-out split
    assert dataset.num_rows == len(rows) and dataset[0]["messages"][-1]["role"] == "assistant"


def test_same_seed_gives_identical_records(labelled: tuple[Path, object], tiny_model_dir: Path,
                                           tmp_path: Path) -> None:
    root, first = labelled
    spec = write_project(tmp_path / "again", model=tiny_model_dir, count=10)
    second = run(spec, tmp_path / "again" / "run", select=["+label.labels"])
    assert records(root / "run", first, "label.labels") == records(tmp_path / "again" / "run", second,
                                                                  "label.labels")


def test_rerun_is_a_no_op_with_zero_model_calls(labelled: tuple[Path, object], tiny_model_dir: Path) -> None:
    root, _ = labelled
    again = run(root / "kit.dial", root / "run", select=["+export.dataset"])
    assert {s.status for s in again.steps} == {"cached"}
    assert sum(s.model_calls for s in again.steps) == 0


def test_proposals_evolution_and_the_review_gate(tiny_model_dir: Path, tmp_path: Path) -> None:
    spec = write_project(tmp_path, model=tiny_model_dir, count=6, spec=GEN_SPEC)
    first = run(spec, tmp_path / "run", select=["+sample.prompts"])
    tasks = first.step("tasks.tasks")
    assert tasks.status == "ok" and tasks.model_calls >= 2  # one proposal per scenario
    evolve = first.step("evolve.evolved")
    assert evolve.status == "ok" and evolve.model_calls >= 2
    review = first.step("review.evolved")
    evolved = [t for t in records(tmp_path / "run", first, "evolve.evolved") if t["origin"] == "evolved"]
    usable = [t for t in evolved if not t["filtered"]]
    if not usable:  # every candidate was filtered: nothing to review, the gate opens by itself
        assert review.status == "ok"
        return
    assert review.status == "blocked" and "dialc review" in review.message
    assert first.step("sample.prompts").status == "blocked"  # below the gate: blocked, not failed
    rows = [json.loads(line) for line in (tmp_path / "review.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows} == {t["id"] for t in usable}
    rows[0]["decision"], rows[0]["instruction"] = "accept", "Edited by a person: list the customer's needs."
    for row in rows[1:]:
        row["decision"] = "reject"
    (tmp_path / "review.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    second = run(spec, tmp_path / "run", select=["+sample.prompts"])
    assert second.step("evolve.evolved").status == "cached"  # the review re-ran, not the model
    assert second.step("review.evolved").status == "ok"
    final = records(tmp_path / "run", second, "review.evolved")
    edited = [t for t in final if t["origin"] == "evolved"]
    assert [t["instruction"] for t in edited] == ["Edited by a person: list the customer's needs."]
    assert edited[0]["reviewed"] == "edited" and edited[0]["chain"]


def test_paraphrases_become_an_expression_of_the_instruction(tiny_model_dir: Path, tmp_path: Path) -> None:
    spec_text = SPEC.replace("expressions style {{ tone = {{formal: 1, friendly: 3}} }}",
                             "expressions style {{ tone = {{formal: 1, friendly: 3}}  paraphrase = tiny  "
                             "paraphrases = 2 }}")
    spec = write_project(tmp_path, model=tiny_model_dir, count=12, spec=spec_text)
    res = run(spec, tmp_path / "run", select=["+sample.prompts"])
    expressions = records(tmp_path / "run", res, "expressions.style")
    made = [r for r in expressions if r["kind"] == "paraphrase" and not r["filtered"]]  # the filters' survivors
    assert res.step("expressions.style").model_calls >= 6  # 3 tasks × 2 paraphrases (+ retries)
    assert all(r["task_id"] in {"extract", "summary", "intent"} and r["instruction"] for r in made)
    prompts = records(tmp_path / "run", res, "sample.prompts")
    phrasings = {p["lineage"]["phrasing"] for p in prompts}
    assert "original" in phrasings
    if made:  # with paraphrases available, some prompts use them, and say so in their lineage
        used = [p for p in prompts if p["lineage"]["phrasing"] != "original"]
        assert used and all(p["instruction"] in {r["instruction"] for r in made} for p in used)

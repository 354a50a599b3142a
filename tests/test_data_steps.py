"""Data-production steps on real (small) pipelines: ingest, sampling, review gate, determinism."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pipeline_kit import DIALOGUES, SPEC, records, run, write_project

from dialc.mix import cell_weights
from dialc.plan import SampleParams
from dialc_runtime.data.review import read_review, write_review
from dialc_runtime.data.sampling import Draw, balance_report, declared_weights, draw_prompts
from dialc_runtime.engine.layout import RunLayout


def test_ingest_quarantines_malformed_rows_with_file_and_line(tmp_path: Path) -> None:
    spec = write_project(tmp_path)
    good = [json.dumps(d) for d in DIALOGUES[:3]]
    bad = ['{"id": "x1", "scenario": "rental"', json.dumps({"id": "x2", "scenario": "rental", "turns": [
        {"role": "landlord", "text": "hi"}]}), json.dumps({"scenario": "rental", "turns": []}), good[0]]
    (tmp_path / "dialogues.jsonl").write_text("\n".join(good + bad) + "\n", encoding="utf-8")
    spec.write_text(spec.read_text().replace("pii_scrub = true", "pii_scrub = true  max_quarantine = 0.6"))
    res = run(spec, tmp_path / "run", select=["ingest.dialogues"])
    step = res.step("ingest.dialogues")
    assert step.status == "ok" and step.metrics["dialogues"] == 3 and step.metrics["quarantined"] == 4
    quarantine = RunLayout(tmp_path / "run").quarantine(step.key or "").read_text()
    assert "dialogues.jsonl:4: invalid JSON" in quarantine
    assert "dialogues.jsonl:5: turn 1: unknown speaker 'landlord'" in quarantine
    assert "dialogues.jsonl:7: duplicate dialogue id 'd00'" in quarantine


def test_ingest_fails_when_the_field_mapping_matches_nothing(tmp_path: Path) -> None:
    """Issue 9: a corpus whose fields the mapping does not name quarantined every line, and ingest said ok."""
    spec = write_project(tmp_path, dialogues=[{"conv": d["id"], "topic": d["scenario"], "turns": d["turns"]}
                                              for d in DIALOGUES])
    res = run(spec, tmp_path / "run", select=["ingest.dialogues"])
    step = res.step("ingest.dialogues")
    assert step.status == "failed", step.message
    assert "no dialogue" in step.message and "all 12" in step.message
    assert "missing or empty field 'id'" in step.message and "field mapping" in step.message
    quarantine = RunLayout(tmp_path / "run").quarantine(step.key or "")
    assert str(quarantine) in step.message and quarantine.read_text().count("\n") == 12


def test_ingest_fails_above_its_declared_quarantine_share(tmp_path: Path) -> None:
    spec = write_project(tmp_path)
    lines = [json.dumps(d) for d in DIALOGUES[:8]] + ["not json", json.dumps({"id": "x", "scenario": "rental"})]
    (tmp_path / "dialogues.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = run(spec, tmp_path / "run", select=["ingest.dialogues"])  # default max_quarantine = 0.1
    step = res.step("ingest.dialogues")
    assert step.status == "failed"
    assert "2 of 10 rows (20%) quarantined, above max_quarantine = 0.1" in step.message
    spec.write_text(spec.read_text().replace("pii_scrub = true", "pii_scrub = true  max_quarantine = 0.25"))
    res = run(spec, tmp_path / "run", select=["ingest.dialogues"])
    step = res.step("ingest.dialogues")
    assert step.status == "ok" and step.metrics["quarantined"] == 2
    where = str(RunLayout(tmp_path / "run").quarantine(step.key or ""))
    assert step.metrics["quarantine_file"] == where
    assert any(where in w and "2 malformed row(s) quarantined" in w for w in step.warnings)


def test_ingest_fail_policy_points_at_the_bad_line(tmp_path: Path) -> None:
    spec = write_project(tmp_path)
    (tmp_path / "dialogues.jsonl").write_text(json.dumps(DIALOGUES[0]) + "\nnot json\n", encoding="utf-8")
    text = spec.read_text().replace("pii_scrub = true", "pii_scrub = true  on_error = fail")
    spec.write_text(text)
    res = run(spec, tmp_path / "run", select=["ingest.dialogues"])
    step = res.step("ingest.dialogues")
    assert step.status == "failed" and "dialogues.jsonl:2: invalid JSON" in step.message
    assert step.diagnostic().startswith(f"{spec}:")


def test_ingest_masks_pii_before_any_model_sees_it(tmp_path: Path) -> None:
    spec = write_project(tmp_path)
    res = run(spec, tmp_path / "run", select=["ingest.dialogues"])
    texts = " ".join(t["text"] for d in records(tmp_path / "run", res, "ingest.dialogues") for t in d["turns"])
    assert "555-01" not in texts and "[PHONE]" in texts
    assert res.step("ingest.dialogues").metrics["pii_masked"] == {"phone": 12}


def test_csv_source_maps_raw_speaker_labels(tmp_path: Path) -> None:
    rows = ["conversation_id,topic,speaker,message", "c1,refund,Customer,Where is my refund?",
            "c1,refund,Support,It was issued today.", "c2,delivery,Customer,Late parcel",
            'c2,delivery,Robot,"beep, boop"']
    (tmp_path / "chats.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = tmp_path / "s.dial"
    spec.write_text('pipeline s {}\nsource chats { path = "chats.csv"  id = field("conversation_id")  '
                    'scenario = field("topic")  role = field("speaker")  text = field("message")  '
                    'roles = {agent: ["Support"], customer: ["Customer"]}  max_quarantine = 1 }\n')
    res = run(spec, tmp_path / "run", select=["ingest.chats"])
    dialogues = records(tmp_path / "run", res, "ingest.chats")
    assert [d["id"] for d in dialogues] == ["c1"]
    assert [t["role"] for t in dialogues[0]["turns"]] == ["customer", "agent"]
    assert res.step("ingest.chats").metrics["quarantined"] == 2  # the bad row and its dialogue


def _synthetic(n_dialogues: int = 2400) -> tuple[list[dict], list[dict], dict]:
    scenarios = ["rental"] * 3 + ["purchase"] * 2 + ["complaint"]
    dialogues = [{"id": f"d{i}", "scenario": scenarios[i % 6]} for i in range(n_dialogues)]
    tasks = [{"id": "e1", "category": "extract", "weight": 2.0}, {"id": "e2", "category": "extract", "weight": 1.0},
             {"id": "s1", "category": "summary", "weight": 1.0}, {"id": "r1", "category": "reply", "weight": 2.0}]
    axes = {"tone": {"formal": 2.0, "friendly": 1.0, "terse": 1.0}, "length": {"short": 1.0, "long": 1.0}}
    return dialogues, tasks, axes


def _sample_params(**fields: Any) -> SampleParams:
    """Sample params as the compiler would build them (with their seed)."""
    return SampleParams(seed=0, **fields)


def test_sampler_matches_declared_weights_on_10000_draws() -> None:
    dialogues, tasks, axes = _synthetic()
    scenario_weights = {name: {"description": name, "weight": w}
                        for name, w in (("rental", 1.0), ("purchase", 2.0), ("complaint", 1.0))}
    params = _sample_params(count=10_000, balance=["scenario", "category", "tone"], scenarios=scenario_weights)
    draws = draw_prompts(dialogues, tasks, axes, params, seed=3)
    assert len(draws) == 10_000 and len(set(draws)) == 10_000  # without replacement
    cells = cell_weights(dialogues, tasks, {k: v["weight"] for k, v in scenario_weights.items()},
                         params.balance)
    for key in ("scenario", "category", "tone"):
        report = balance_report(draws, declared_weights(cells, axes, key), key)
        for name, share in report["declared"].items():
            assert abs(report["achieved"][name] - share) < 0.01, (key, name, report)
        assert report["p_value"] is not None and report["p_value"] > 0.05
    # an unbalanced axis still follows its weights, within sampling noise
    lengths = Counter(dict(d.expression)["length"] for d in draws)
    assert abs(lengths["short"] / 10_000 - 0.5) < 0.03


def test_sampler_is_reproducible_from_the_seed() -> None:
    dialogues, tasks, axes = _synthetic(60)
    params = _sample_params(count=500, balance=["category"])
    first = draw_prompts(dialogues, tasks, axes, params, seed=11)
    assert first == draw_prompts(dialogues, tasks, axes, params, seed=11)
    assert first != draw_prompts(dialogues, tasks, axes, params, seed=12)


def test_sampler_stops_at_the_number_of_distinct_combinations() -> None:
    dialogues = [{"id": "d1", "scenario": "a"}, {"id": "d2", "scenario": "a"}]
    tasks = [{"id": "t", "category": "c", "weight": 1.0}]
    draws = draw_prompts(dialogues, tasks, {"tone": {"x": 1.0, "y": 1.0}}, _sample_params(count=50), seed=0)
    assert sorted(draws, key=str) == sorted({Draw(d, "a", "t", "c", (("tone", v),))
                                             for d in ("d1", "d2") for v in ("x", "y")}, key=str)


def test_sample_step_renders_prompts_with_lineage(tmp_path: Path) -> None:
    spec = write_project(tmp_path, count=12)
    res = run(spec, tmp_path / "run", select=["+sample.prompts"])
    prompts = records(tmp_path / "run", res, "sample.prompts")
    assert len(prompts) == 12
    first = prompts[0]
    assert first["messages"][-1]["role"] == "user" and "Task:" in first["messages"][-1]["content"]
    assert {"dialogue_id", "task_id", "category", "expression", "output", "lineage"} <= set(first)
    balance = res.step("sample.prompts").metrics["balance"]
    assert balance["scenario"]["declared"] == pytest.approx({"purchase": 0.25, "rental": 0.75}, abs=1e-3)


def test_review_file_roundtrip_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_review(path, [{"id": "b", "decision": "pending", "instruction": "two"},
                        {"id": "a", "decision": "accept", "instruction": "one"}])
    assert [line.split('"')[3] for line in path.read_text().splitlines()] == ["a", "b"]  # sorted: small diffs
    assert read_review(path)["a"]["decision"] == "accept"
    path.write_text('{"id": "a", "decision": "maybe", "instruction": "x"}\n')
    with pytest.raises(Exception, match="r.jsonl:1: decision must be one of"):
        read_review(path)


def test_spec_template_is_shared_with_the_kit() -> None:
    assert "{model}" in SPEC  # the kit formats the model path into every test spec

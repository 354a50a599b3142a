"""`dialc run --dry-run`: model calls, tokens and a time estimate for every model step of the shipped specs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_kit import compile_spec
from typer.testing import CliRunner

from dialc.plan import Plan
from dialc_runtime.engine.executor import execute

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def realestate() -> Plan:
    return compile_spec(ROOT / "specs" / "realestate.dial")


def estimates(plan: Plan, tmp_path: Path) -> dict[str, dict]:
    res = execute(plan, tmp_path / "nothing", dry_run=True)
    return {s.id: s.estimate or {} for s in res.steps}


def test_every_model_step_estimates_calls_and_time(realestate: Plan, tmp_path: Path) -> None:
    """Issue 9: the dry run showed 0 model calls everywhere and no time."""
    est = estimates(realestate, tmp_path)
    count = next(s.params.count for s in realestate.steps if s.kind == "sample")
    assert est["label.labels"]["model_calls"] == count
    for step_id in ("evolve.evolved", "label.labels", "score.helpful", "evaluate.after"):
        assert est[step_id]["model_calls"] > 0, step_id
        assert est[step_id]["seconds"] > 0, step_id
    assert est["finetune.domain"]["seconds"] > 0 and est["finetune.domain"]["train_tokens"] > 0
    assert est["score.valid"]["model_calls"] == 0
    labels = est["label.labels"]
    assert labels["tokens"] == labels["prompt_tokens"] + labels["completion_tokens"]


def test_generated_tasks_paraphrases_and_the_study_are_estimated(tmp_path: Path) -> None:
    est = estimates(compile_spec(ROOT / "tests" / "specs" / "generated_tasks.dial"), tmp_path)
    assert est["tasks.tasks"]["model_calls"] > 0 and est["expressions.voice"]["model_calls"] > 0
    study = estimates(compile_spec(ROOT / "specs" / "realestate_study.dial"), tmp_path / "s")
    tiers = study["study.tiers"]
    assert tiers["model_calls"] > 0 and tiers["seconds"] > study["finetune.domain"]["seconds"]


def test_the_dry_run_table_shows_estimated_calls_and_time(tmp_path: Path) -> None:
    from dialc.cli import app

    result = CliRunner().invoke(app, ["run", str(ROOT / "specs" / "realestate.dial"), "--dry-run",
                                      "--run-dir", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.stderr.splitlines() if line.startswith("│")}
    status, seconds, records, calls, tokens = rows["label.labels"]
    assert status == "pending" and int(calls) > 0 and int(tokens) > 0 and seconds.startswith("≈")
    assert "estimated: " in result.stderr and "model calls" in result.stderr and " min" in result.stderr


def test_choice_scoring_reads_each_context_once_and_counts_cjk_as_more_tokens() -> None:
    from dialc_runtime.engine.estimates import choice_scoring, text_tokens
    from dialc_runtime.evaluate.suites.readers import ChoiceItem

    assert text_tokens("abcdef") == 2 and text_tokens("答案") == 3
    item = ChoiceItem("q", "?", ("a", "b"), 0, "x" * 300, (" a", " b"))
    one, ten = choice_scoring([item]), choice_scoring([item] * 10)
    assert one["model_calls"] == 2 and one["prompt_tokens"] == round(100 + 2 * 2 / 3)  # the context once, not twice
    assert ten["prompt_tokens"] == round(10 * (100 + 4 / 3)) and 3 < ten["seconds"] < 4 and not one["completion_tokens"]

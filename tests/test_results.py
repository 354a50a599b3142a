"""dialc_runtime.engine.results: step outcomes → run_results.json (versioned) and compiler-style messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.results import RESULTS_FORMAT, RunResults, StepResult, load_results

SPAN = {"file": "specs/x.dial", "line": 12, "col": 3, "end_line": 12, "end_col": 9}


def run_results(*steps: StepResult, dry_run: bool = False) -> RunResults:
    return RunResults(pipeline="p", spec="specs/x.dial", run_dir="runs/p", started="2025-01-01T00:00:00.000+00:00",
                      dry_run=dry_run, selected=[s.id for s in steps], steps=list(steps))


def step(step_id: str, status: str, **fields: object) -> StepResult:
    return StepResult(id=step_id, kind=step_id.split(".")[0], status=status, **fields)  # type: ignore[arg-type]


def test_results_survive_a_write_and_a_read(tmp_path: Path) -> None:
    original = run_results(
        step("gen.a", "ok", key="k1", records=5, metrics={"n": 5, "nested": {"x": [1, 2]}}, span=SPAN,
             model_calls=3, prompt_tokens=10, completion_tokens=20, warnings=["w"]),
        step("boom.b", "failed", internal=True, log="logs/boom.b.log", message="ZeroDivisionError: division by zero"),
    )
    path = RunLayout(tmp_path).results
    original.write(path)
    assert load_results(path) == original
    assert list(tmp_path.iterdir()) == [path]  # the temporary file is gone


def test_the_file_is_versioned_and_carries_totals(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    run_results(step("gen.a", "ok", model_calls=2, prompt_tokens=5, completion_tokens=7),
                step("gen.b", "cached"), step("map.c", "skipped")).write(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == RESULTS_FORMAT
    # an ok step was made now (its own usage); a cached one without `made` is counted as unknown
    made = {"seconds": 0, "model_calls": 2, "prompt_tokens": 5, "completion_tokens": 7, "tokens": 12, "unknown": 1}
    assert data["totals"] == {"steps": {"ok": 1, "cached": 1, "skipped": 1}, "model_calls": 2,
                              "prompt_tokens": 5, "completion_tokens": 7, "made": made}


def test_a_dry_run_totals_its_estimates() -> None:
    res = run_results(step("llm.a", "pending", estimate={"model_calls": 4, "tokens": 400}),
                      step("gen.b", "cached"), dry_run=True)
    assert res.totals()["estimate"] == {"model_calls": 4, "tokens": 400}
    assert "estimate" not in run_results(step("gen.b", "ok")).totals()


def test_another_format_is_refused_with_both_versions(tmp_path: Path) -> None:
    path = RunLayout(tmp_path).results
    path.write_text(json.dumps({"format": RESULTS_FORMAT + 1, "steps": []}), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"run results format {RESULTS_FORMAT + 1}, expected {RESULTS_FORMAT}"):
        load_results(path)


def test_unknown_fields_are_ignored_on_read(tmp_path: Path) -> None:
    """A results file with extra fields (a newer dialc of the same format) still loads."""
    data = run_results(step("gen.a", "ok")).to_dict()
    data["new_top_level"] = 1
    data["steps"][0]["new_field"] = "x"
    path = RunLayout(tmp_path).results
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_results(path).step("gen.a").status == "ok"


@pytest.mark.parametrize(
    ("statuses", "ok"),
    [
        (["ok", "cached"], True),
        (["ok", "blocked", "skipped"], False),  # skipped: an upstream failed (below a gate is "blocked")
        (["ok", "blocked"], True),  # a gate is not an error
        (["failed"], False),
        ([], True),
    ],
)
def test_a_run_is_ok_unless_a_step_failed_or_was_skipped(statuses: list[str], ok: bool) -> None:
    res = run_results(*(step(f"gen.s{i}", s) for i, s in enumerate(statuses)))
    assert res.ok is ok


def test_steps_are_found_by_id_and_status() -> None:
    res = run_results(step("gen.a", "ok"), step("gen.b", "failed"), step("gen.c", "ok"))
    assert res.by_status("ok") == ["gen.a", "gen.c"]
    assert res.step("gen.b").status == "failed"
    with pytest.raises(KeyError):
        res.step("gen.zzz")


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (step("gen.a", "failed", span=SPAN, message="3 rows have no id"),
         'specs/x.dial:12:3: error: step "gen.a" failed: 3 rows have no id'),
        (step("gen.a", "failed", span=SPAN, internal=True, message="KeyError: 'x'", log="logs/gen.a.log"),
         'specs/x.dial:12:3: error: internal error in step "gen.a": KeyError: \'x\' (traceback in logs/gen.a.log)'),
        (step("review.r", "blocked", span=SPAN, message="2 candidates await review"),
         'specs/x.dial:12:3: warning: step "review.r" blocked: 2 candidates await review'),
        (step("gen.a", "failed", message="no span"), 'gen.a: error: step "gen.a" failed: no span'),
        (step("gen.a", "ok", span=SPAN), None),
        (step("gen.a", "skipped", message="upstream gen.x failed"), None),  # its upstream says why
    ],
)
def test_failed_and_blocked_steps_read_like_compiler_messages(result: StepResult, line: str | None) -> None:
    assert result.diagnostic() == line

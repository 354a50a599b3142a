"""dialc_runtime.quality.calibrate: human ratings vs machine scores on runs whose right answers are known."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from runtime_fakes import make_plan

from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.registry import DictRegistry
from dialc_runtime.quality.calibrate import CalibrationError, calibrate, parse_scale, render

IDS = ["r1", "r2", "r3", "r4", "r5"]
HELPFUL = [0.0, 0.25, 0.5, 0.75, 1.0]  # judge scores on 0..1 (scale 1..5); pass mark 0.5
VALID = [1.0, 1.0, 0.0, 1.0, 0.0]  # a yes/no rule


def _score(ctx: StepContext) -> StepOutput:
    """Emits the verdicts given in params (a score.* step with known answers)."""
    for v in ctx.params.get("verdicts"):
        ctx.emit(v["id"], v)
    return StepOutput(metrics={"records": len(ctx.params.get("verdicts"))})


REGISTRY = DictRegistry({"score": SimpleNamespace(VERSION="1", run=_score)})


def verdicts(scores: list[float], mark: float) -> list[dict[str, Any]]:
    return [
        {"id": i, "score": s, "passed": s >= mark, "detail": ""}
        for i, s in zip(IDS, scores, strict=True)
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    helpful = {"kind": "judge", "scale": [1, 5], "name": "helpful"}
    valid = {"kind": "rule", "check": "schema", "name": "valid"}
    plan = make_plan([
        ("score.helpful", {"dimension": helpful, "verdicts": verdicts(HELPFUL, 0.5)}, []),
        ("score.valid", {"dimension": valid, "verdicts": verdicts(VALID, 1.0)}, []),
    ])  # fmt: skip
    execute(plan, tmp, registry=REGISTRY, quiet=True)
    return tmp


def ratings(values: list[float], **extra: Any) -> list[dict[str, Any]]:
    """Human rows {id, helpful, …} for IDS in order."""
    return [{"id": i, "helpful": v, **extra} for i, v in zip(IDS, values, strict=True)]


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_perfect_correlation(run_dir: Path, tmp_path: Path) -> None:
    human = jsonl(tmp_path / "h.jsonl", ratings([1, 2, 3, 4, 5]))
    (a,) = calibrate(run_dir, human).dimensions
    assert a.dimension == "helpful" and a.n == 5 and a.scale == (1.0, 5.0)
    assert a.rho == pytest.approx(1.0) and a.p_value is not None and a.p_value < 0.01
    assert a.agreement == 1.0 and a.agreement_n == 5  # r3..r5 pass on both sides
    assert a.mean_abs_diff == 0.0


def test_reversed_ratings(run_dir: Path, tmp_path: Path) -> None:
    human = jsonl(tmp_path / "h.jsonl", ratings([5, 4, 3, 2, 1]))
    (a,) = calibrate(run_dir, human).dimensions
    assert a.rho == pytest.approx(-1.0)
    assert a.agreement == pytest.approx(0.2)  # only r3 (machine 0.5 pass, human 3 pass) agrees
    assert a.mean_abs_diff == pytest.approx(0.6)  # |0-1|, |.25-.75|, 0, .5, 1


def test_csv_with_blanks_and_extra_columns(run_dir: Path, tmp_path: Path) -> None:
    human = tmp_path / "h.csv"
    human.write_text(
        "id,helpful,valid,comment\nr1,1,1,fine\nr2,2,1,\nr3,3,,unsure\nr4,4,1,\nr5,5,0,bad\n",
        encoding="utf-8",
    )
    result = calibrate(run_dir, human)
    by_dim = {a.dimension: a for a in result.dimensions}
    assert result.records == 5 and result.ignored == ["comment"]
    assert by_dim["helpful"].rho == pytest.approx(1.0)
    valid = by_dim["valid"]
    assert valid.n == 4 and valid.scale == (0.0, 1.0)  # r3 left blank
    assert valid.agreement == 1.0 and valid.mean_abs_diff == 0.0


def test_constant_ratings_have_no_rank_correlation(run_dir: Path, tmp_path: Path) -> None:
    human = jsonl(tmp_path / "h.jsonl", ratings([4] * 5))
    (a,) = calibrate(run_dir, human).dimensions
    assert a.rho is None and a.p_value is None and "undefined" in a.note
    assert a.agreement == pytest.approx(0.6)  # human says pass for all; machine passes r3..r5


def test_a_judge_without_pass_mark_is_flagged(tmp_path: Path) -> None:
    plan = make_plan([("score.helpful", {"dimension": {"kind": "judge", "scale": [1, 5]},
                                         "verdicts": verdicts(HELPFUL, 0.0)}, [])])  # fmt: skip
    execute(plan, tmp_path, registry=REGISTRY, quiet=True)
    human = jsonl(tmp_path / "h.jsonl", ratings([1, 2, 3, 4, 5]))
    (a,) = calibrate(tmp_path, human).dimensions
    assert a.agreement == pytest.approx(0.6) and "passes every record" in a.note


def test_explicit_scale(run_dir: Path, tmp_path: Path) -> None:
    human = jsonl(tmp_path / "h.jsonl", ratings([0, 2.5, 5, 7.5, 10]))
    (a,) = calibrate(run_dir, human, scale=(0, 10)).dimensions
    assert a.scale == (0, 10) and a.mean_abs_diff == 0.0 and a.agreement == 1.0


def test_malformed_rows_are_reported_with_lines(run_dir: Path, tmp_path: Path) -> None:
    human = tmp_path / "bad.jsonl"
    human.write_text(
        '{"id": "r1", "helpful": 3}\n'
        "{not json\n"
        '{"helpful": 2}\n'
        '{"id": "r2", "helpful": "great"}\n'
        "\n"
        '["r3", 4]\n'
        '{"id": "r1", "helpful": 5}\n',
        encoding="utf-8",
    )
    with pytest.raises(CalibrationError) as info:
        calibrate(run_dir, human)
    text = str(info.value)
    assert f"{human}:2: error: invalid JSON" in text
    assert f'{human}:3: error: missing "id"' in text
    assert f"{human}:4: error: helpful = 'great' is not a number" in text
    assert f"{human}:6: error: expected an object" in text
    assert f"{human}:7: error: id 'r1' already rated on line 1" in text
    assert len(info.value.problems) == 5


def test_unknown_ids(run_dir: Path, tmp_path: Path) -> None:
    human = jsonl(tmp_path / "h.jsonl", [{"id": "r1", "helpful": 1}, {"id": "zz", "helpful": 2}])
    with pytest.raises(CalibrationError, match=r"h\.jsonl:2: error: record id 'zz' not found"):
        calibrate(run_dir, human)


def test_no_dimension_column_and_no_run(run_dir: Path, tmp_path: Path) -> None:
    human = jsonl(tmp_path / "h.jsonl", [{"id": "r1", "fluency": 3}])
    with pytest.raises(CalibrationError, match="no column names a quality dimension"):
        calibrate(run_dir, human)
    with pytest.raises(CalibrationError, match="no run results"):
        calibrate(tmp_path / "empty", human)
    with pytest.raises(CalibrationError, match="cannot read"):
        calibrate(run_dir, tmp_path / "missing.jsonl")


def test_render(run_dir: Path, tmp_path: Path) -> None:
    human = jsonl(tmp_path / "h.jsonl", ratings([1, 2, 3, 4, 5], note="x"))
    console = Console(file=io.StringIO(), width=160)
    console.print(render(calibrate(run_dir, human)))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "helpful" in text and "1.000" in text and "100.0% of 5" in text and "1..5" in text
    assert "ignored columns" in text and "note" in text


def test_parse_scale() -> None:
    assert parse_scale("1..5") == (1.0, 5.0) and parse_scale("0..1") == (0.0, 1.0)
    for bad in ("5..1", "1-5", "a..b", "3..3"):
        with pytest.raises(ValueError, match="LO..HI"):
            parse_scale(bad)

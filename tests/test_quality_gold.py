"""Does quality predict correctness: the statistics, the labeller-on-gold check, its step, plan and CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from pipeline_kit import SPEC, TESTSET, compile_spec, write_gold, write_project
from runtime_fakes import MemoryContext

from dialc.frontend import run_frontend
from dialc.plan import (
    CalibrateParams,
    DimensionWeight,
    FieldMapping,
    GoldSet,
    GroundingDimension,
    ModelSpec,
    PromptFormat,
    RuleDimension,
    TaskSpec,
)
from dialc_runtime.evaluate.quality_gold import run_check
from dialc_runtime.models.base import GenResult
from dialc_runtime.quality.predictive import Pair, auc, format_table, is_correct, predictiveness, spearman
from dialc_runtime.steps import calibrate as calibrate_step

# ---- the statistics --------------------------------------------------------------------------------------


def pairs(scores: list[float], correctness: list[float], kind: str = "choice") -> list[Pair]:
    return [Pair(s, s >= 0.5, c, is_correct(kind, c)) for s, c in zip(scores, correctness, strict=True)]


def test_a_perfect_dimension_has_rho_and_auc_near_one_and_keeps_only_correct_labels() -> None:
    rng = random.Random(1)
    correct = [float(rng.random() < 0.5) for _ in range(200)]
    scores = [0.6 + 0.4 * rng.random() if c else 0.4 * rng.random() for c in correct]
    p = predictiveness("perfect", pairs(scores, correct), seed=3)
    assert p.n == 200 and p.auc == 1.0 and p.rho is not None and p.rho > 0.85
    assert p.auc_ci is not None and p.auc_ci[0] > 0.99
    assert p.kept_precision == 1.0 and p.rejected_precision == 0.0
    assert p.verdict == "predicts correctness" and not p.notes


def test_a_random_dimension_has_rho_near_zero_and_auc_near_a_half() -> None:
    rng = random.Random(2)
    correct = [float(rng.random() < 0.5) for _ in range(400)]
    p = predictiveness("coin", pairs([rng.random() for _ in correct], correct), seed=4)
    assert p.rho is not None and abs(p.rho) < 0.12 and p.auc is not None and abs(p.auc - 0.5) < 0.07
    assert p.auc_ci is not None and p.auc_ci[0] < 0.5 < p.auc_ci[1]
    assert p.verdict == "no evidence it predicts correctness"


def test_an_inverted_dimension_prefers_wrong_labels() -> None:
    correct = [float(i % 2) for i in range(60)]
    p = predictiveness("upside down", pairs([1 - c * 0.8 for c in correct], correct), seed=5)
    assert p.auc == 0.0 and p.verdict == "prefers wrong labels"


def test_small_or_one_sided_samples_say_so() -> None:
    few = predictiveness("few", pairs([0.1, 0.9, 0.5, 0.7], [0.0, 1.0, 0.0, 1.0]))
    assert few.verdict == "too few items to tell" and any("fewer than 30" in n for n in few.notes)
    flat = predictiveness("flat", pairs([1.0] * 40, [float(i % 2) for i in range(40)]))
    assert flat.rho is None and flat.auc == 0.5 and flat.verdict == "no verdict (the same score for every label)"
    none_right = predictiveness("all wrong", pairs([i / 40 for i in range(40)], [0.0] * 40))
    assert none_right.auc is None and none_right.verdict.startswith("no verdict")
    graded = [Pair(i / 60, True, 0.7 * i / 60 + (0.3 if i >= 58 else 0.0), i >= 58) for i in range(60)]
    rare = predictiveness("rare", graded, seed=6)  # field F1 rises with the score; 2 labels reach "correct"
    assert rare.correct == 2 and rare.verdict == "predicts correctness (by ρ: too few in a class for AUC)"
    table = format_table([few, flat])
    assert "Spearman" in table and "AUC" in table and "note: all tasks, few: n = 4 scored items" in table


def test_figures_per_task_undo_a_pooled_paradox() -> None:
    """Within each task the score ranks answers right, but it scores task b (rarely correct) above task a
    (often correct): pooled it looks perverse, and the per-task rows say what it does."""
    from dialc_runtime.evaluate.quality_gold import dimension_figures

    rows = []
    for i in range(80):
        task, right = ("a", i % 4 != 0) if i < 40 else ("b", i % 4 == 0)
        score = (0.3 if right else 0.1) if task == "a" else (0.9 if right else 0.7)
        rows.append({"task_id": task, "scores": {"judge": score}, "passed": {"judge": True}, "aggregate": score,
                     "kept_alone": True, "correctness": float(right), "correct": right})
    figures = {(f.task, f.dimension): f for f in dimension_figures(rows, ["judge"], seed=1)}
    assert set(figures) == {("", "judge"), ("", "score"), ("a", "judge"), ("a", "score"), ("b", "judge"),
                            ("b", "score")}
    pooled, a, b = figures[("", "judge")], figures[("a", "judge")], figures[("b", "judge")]
    assert pooled.auc is not None and pooled.auc < 0.5 and a.auc == b.auc == 1.0
    assert pooled.verdict.endswith("(pooled over tasks: read the per-task rows)")
    assert a.verdict == "predicts correctness"
    assert a.n == b.n == 40 and a.scope == "a" and pooled.scope == "all tasks"


def test_candidates_of_one_prompt_are_resampled_together() -> None:
    """Four copies of each of 30 answers are not 120 independent items: the interval must stay as wide as 30's."""
    rng = random.Random(3)
    base = [(rng.random(), float(rng.random() < 0.5)) for _ in range(30)]
    flat = [Pair(s, None, c, c == 1.0) for s, c in base for _ in range(4)]
    grouped = [Pair(s, None, c, c == 1.0, f"p{n}") for n, (s, c) in enumerate(base) for _ in range(4)]
    alone, together = predictiveness("x", flat, seed=1), predictiveness("x", grouped, seed=1)
    assert alone.auc == together.auc and alone.auc_ci and together.auc_ci
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(together.auc_ci) > 1.5 * width(alone.auc_ci)


def test_spearman_and_auc_on_hand_made_cases() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auc([0.5, 0.5], [True, False]) == 0.5  # ties count half
    assert auc([0.1, 0.9, 0.8], [True, True, False]) == 0.5


def test_correct_thresholds_per_kind() -> None:
    assert is_correct("json", 0.75) and not is_correct("json", 0.7)
    assert is_correct("choice", 1.0) and not is_correct("choice", 0.0)
    assert is_correct("text", 0.31) and not is_correct("text", 0.2)


# ---- the check: a fake labeller whose odd-seeded answers invent values ---------------------------------

SCHEMA = {"type": "object", "properties": {"budget": {"type": ["integer", "null"]},
                                           "district": {"type": ["string", "null"], "maxLength": 40},
                                           "bedrooms": {"type": ["integer", "null"]}},
          "required": ["budget", "district", "bedrooms"], "additionalProperties": False}


def gold_set(root: Path, n: int = 40) -> GoldSet:
    dialogues = [{"id": f"g{i:02d}", "scenario": "rental",
                  "turns": [{"role": "customer",
                             "text": f"I want to rent in Northgate for at most {1000 + i} a month."},
                            {"role": "agent", "text": "Noted, I will look for you."}]} for i in range(n)]
    (root / "gold.jsonl").write_text("".join(json.dumps(d) + "\n" for d in dialogues), encoding="utf-8")
    refs = [{"id": d["id"], "answers": {"extract": {"budget": 1000 + i, "district": "Northgate", "bedrooms": None}}}
            for i, d in enumerate(dialogues)]
    (root / "refs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in refs), encoding="utf-8")
    task = TaskSpec(id="extract", category="extraction", instruction="Extract.",
                    output={"kind": "json", "schema": SCHEMA})
    return GoldSet(name="gold", path=str(root / "gold.jsonl"), format="jsonl", fields=FieldMapping(),
                   roles={"agent": ["agent"], "customer": ["customer"]}, references=str(root / "refs.jsonl"),
                   tasks=[task])


class Labeller:
    """Even seeds: the dialogue's budget and district; odd seeds: an invented district, budget and bedrooms."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    def generate(self, requests: list[Any]) -> list[GenResult]:
        out = []
        for request in requests:
            self.seeds.append(request.seed)
            text = request.messages[-1]["content"]
            budget = int(text.split("at most ")[1].split(" ")[0])
            value = ({"budget": budget, "district": "Northgate", "bedrooms": None} if request.seed % 2 == 0 else
                     {"budget": 7777, "district": "Aurora", "bedrooms": 3})
            out.append(GenResult(text=json.dumps(value), ok=True, value=value))
        return out


def params(root: Path, candidates: int) -> CalibrateParams:
    return CalibrateParams(
        model=ModelSpec(name="m", path="fake", temperature=0.7, batch_size=16), candidates=candidates,
        dimensions=[RuleDimension(name="valid", check="schema", gate=True),
                    GroundingDimension(name="grounded", min=0.5),
                    RuleDimension(name="brief", check="length", max=500)],
        weights={"valid": DimensionWeight(kind="rule", gate=True), "grounded": DimensionWeight(kind="grounding"),
                 "brief": DimensionWeight(kind="rule", weight=0.1)},
        gold=gold_set(root), prompt=PromptFormat(), seed=11)


def test_grounding_predicts_correctness_when_wrong_labels_invent_values(tmp_path: Path) -> None:
    labeller = Labeller()
    check = run_check(params(tmp_path, 1), lambda model: labeller)
    assert len(check.records) == 40 and len(set(labeller.seeds)) == 40
    by_name = {d.dimension: d for d in check.dimensions}
    assert list(by_name) == ["valid", "grounded", "brief", "score"]
    grounded = by_name["grounded"]
    assert 10 <= grounded.correct <= 30  # about half the seeds are even
    assert grounded.auc == 1.0 and grounded.rho == pytest.approx(1.0) and grounded.verdict == "predicts correctness"
    assert grounded.kept_precision == 1.0 and grounded.rejected_precision == 0.0
    assert by_name["valid"].rho is None and by_name["valid"].verdict.startswith("no verdict")  # passes everything
    assert by_name["score"].auc == 1.0  # the aggregate is mostly grounding
    wrong = next(r for r in check.records if not r["correct"])
    assert wrong["hallucinated"] == 1 and wrong["gold_nulls"] == 1 and wrong["correctness"] == 0.0
    assert check.best_of == {}


def test_best_of_four_keeps_more_correct_labels_than_one_on_the_same_prompts(tmp_path: Path) -> None:
    labeller = Labeller()
    check = run_check(params(tmp_path, 4), lambda model: labeller)
    assert len(check.records) == 160 and len(set(labeller.seeds)) == 160
    single = run_check(params(tmp_path, 1), lambda model: Labeller())
    firsts = [r for r in check.records if r["candidate"] == 0]
    assert [r["answer"] for r in firsts] == [r["answer"] for r in single.records]  # candidate 0 = the single label
    one, best = check.best_of["single"], check.best_of["best"]
    assert one["kept"] == best["kept"] == 40  # no keep rule: every valid label is kept
    assert one["accuracy"] == pytest.approx(sum(r["correct"] for r in single.records) / 40)
    assert best["accuracy"] > 0.85 > one["accuracy"] and best["hallucination"] < one["hallucination"]
    low, high = check.best_of["delta_ci"]["accuracy"]
    assert low > 0 and high >= low
    losers = [r for r in check.records if r.get("lost_to")]
    assert losers and all(r["cause"] == "best_of" and not r["kept"] for r in losers)


def test_the_calibrate_step_emits_every_label_and_writes_the_table(tmp_path: Path) -> None:
    p = {**params(tmp_path, 2).model_dump(mode="json"), "gold_limit": 12}
    ctx = MemoryContext("calibrate.quality", p, {}, backend=Labeller(), out_dir=tmp_path / "out")
    out = calibrate_step.run(ctx)  # type: ignore[arg-type]
    assert len(ctx.emitted) == 24 and out.metrics["gold_items"] == 12 and out.metrics["labels"] == 24
    assert [d["dimension"] for d in out.metrics["dimensions"]] == ["valid", "grounded", "brief", "score"]
    assert out.metrics["best_of"]["n"] == 2
    text = (tmp_path / "out" / "calibrate.txt").read_text()
    assert "does quality predict correctness?" in text and "grounded" in text and "N = 2" in text
    assert any(w.startswith("quality vs gold, grounded: n = 24 scored items, fewer than 30") for w in ctx.warnings)


# ---- the language ----------------------------------------------------------------------------------------

def project(root: Path, quality_extra: str) -> Path:
    spec = SPEC.replace("keep when score >= 0", f"keep when score >= 0\n  {quality_extra}") + TESTSET
    path = write_project(root, spec=spec)
    write_gold(root)
    return path


def test_calibrate_against_gold_compiles_into_a_calibrate_step(tmp_path: Path) -> None:
    plan = compile_spec(project(tmp_path, "calibrate = gold(gold)  calibrate_limit = 3"),
                        ["label.labels.candidates=2"])
    step = plan.step("calibrate.quality")
    p = step.params
    assert isinstance(p, CalibrateParams) and step.inputs == {}
    assert p.candidates == 2 and p.gold_limit == 3 and [d.name for d in p.dimensions] == ["valid", "brief"]
    assert p.model == plan.step("label.labels").params.model  # type: ignore[union-attr]
    assert p.weights == plan.step("filter.quality").params.dimensions  # type: ignore[union-attr]
    assert [t.id for t in p.gold.tasks] == ["intent"] and p.gold.references.endswith("refs.jsonl")
    assert len(p.files) == 2
    from dialc_runtime.engine.executor import resolved

    estimate = calibrate_step.estimate(resolved(step, plan), plan)
    assert estimate["model_calls"] == 3 * 2  # 3 gold dialogues × 1 task × 2 candidates; no judge
    assert "calibrate.quality" not in [s.id for s in compile_spec(project(tmp_path / "off", "")).steps]


@pytest.mark.parametrize("value, code", [("holdout(0.2)", "type-mismatch"), ("gold(nope)", "unknown-ref"),
                                         ("gold(prompts)", "unknown-ref")])
def test_calibrate_takes_only_a_declared_testset(tmp_path: Path, value: str, code: str) -> None:
    front = run_frontend(project(tmp_path, f"calibrate = {value}"))
    errors = [d.code for d in front.diags.items if d.severity == "error"]
    assert code in errors or (code == "unknown-ref" and errors), errors


# ---- dialc calibrate SPEC --gold -------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from dialc.cli import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_calibrate_gold_measures_without_human_ratings_then_reads_the_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    from dialc_runtime.engine.executor import execute

    spec = project(tmp_path, "")
    spec.write_text(spec.read_text().replace("builtin:smollm2-135m-instruct", str(tiny_model_dir)))
    code, out, err = invoke("calibrate", str(spec), "--gold", "--limit", "3", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert "measuring calibrate.quality now" in err and shown["gold_items"] == 3 and shown["labels"] == 3
    assert [d["dimension"] for d in shown["dimensions"]] == ["valid", "brief", "score"]
    assert all(d["n"] <= 3 and d["verdict"] for d in shown["dimensions"])
    plan = compile_spec(spec, ["quality.calibrate=gold(gold)", "quality.calibrate_limit=3"])
    execute(plan, plan.run_dir(), select=["calibrate.quality"], quiet=True)
    code, out, err = invoke("calibrate", str(spec), "--gold", "--limit", "3")
    assert code == 0 and "from the run's calibrate.quality" in err
    assert "does quality predict correctness? 3 labels of 3 gold items" in out and "Spearman" in out
    code, _, err = invoke("calibrate", str(spec))
    assert code == 2 and "--human FILE" in err and "--gold" in err
    from dialc_runtime.report.page import write_report

    html = (write_report(plan.run_dir()) or Path("missing")).read_text(encoding="utf-8")
    assert "Does quality predict correctness?" in html and "calibrate.quality" in html and "AUC" in html


def test_the_report_section_shows_the_table_and_says_how_to_measure_when_absent(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from dialc_runtime.engine.results import StepResult
    from dialc_runtime.evaluate.quality_gold import figures
    from dialc_runtime.report.gold_quality import predicts

    check = run_check(params(tmp_path, 2), lambda model: Labeller())
    step = StepResult(id="calibrate.quality", kind="calibrate", status="ok",
                      metrics=json.loads(json.dumps(figures(check))))
    html = str(predicts(SimpleNamespace(steps=lambda kind: [step] if kind == "calibrate" else [])))  # type: ignore[arg-type]
    assert "grounded" in html and "predicts correctness" in html and "best of 2 vs a single label" in html
    assert "0.5 is a coin toss" in html
    empty = str(predicts(SimpleNamespace(steps=lambda kind: [])))  # type: ignore[arg-type]
    assert "not measured" in empty and "dialc calibrate SPEC --gold" in empty

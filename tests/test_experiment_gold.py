"""bench/experiment_gold.py: the teacher becomes the labeller only, and the experiment's settings compile."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from dialc.cli.common import load_plan

ROOT = Path(__file__).resolve().parent.parent


def experiment() -> Any:
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("experiment_gold", ROOT / "bench" / "experiment_gold.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def args(**kw: Any) -> argparse.Namespace:
    defaults = {"count": 130, "gold_limit": 0, "general_limit": 0, "tasks": None, "teacher": None,
                "teacher_url": None, "teacher_model": None}
    return argparse.Namespace(**{**defaults, **kw})


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the script names its specs relative to the repository root


def test_without_a_teacher_the_study_spec_runs_as_shipped_at_the_experiment_scale() -> None:
    exp = experiment()
    spec, teacher_sets = exp.teacher_spec(args())
    assert spec == exp.STUDY_SPEC and teacher_sets == []
    plan = load_plan(spec, exp.pipeline_sets(args()))
    assert plan.step("sample.prompts").params.count == 130
    evaluate, study = plan.step("evaluate.after").params, plan.step("study.tiers").params
    assert evaluate.gold_limit == study.gold_limit == 0 and study.gold == evaluate.gold is not None
    assert evaluate.limit == 0 and [s.path for s in evaluate.general] == ["builtin:general-probe"]


@pytest.mark.parametrize("kind", ["file", "server"])
def test_a_teacher_labels_while_student_judge_and_evaluated_models_stay_embedded(kind: str) -> None:
    exp = experiment()
    teacher = (args(teacher=str(ROOT / "bench" / "experiment_gold.py")) if kind == "file" else
               args(teacher_url="http://127.0.0.1:8000/v1", teacher_model="qwen-7b"))
    spec, teacher_sets = exp.teacher_spec(teacher)
    try:
        plan = load_plan(spec, exp.pipeline_sets(teacher) + teacher_sets)
    finally:
        spec.unlink()
    label = plan.step("label.labels").params.model
    if kind == "file":
        assert label.backend == "transformers" and label.path.endswith("experiment_gold.py")
    else:
        assert label.backend == "openai" and label.path == "qwen-7b" and label.base_url.endswith("/v1")
    embedded = plan.step("finetune.domain").params.base
    assert embedded.path == "builtin:smollm2-135m-instruct" != label.path
    assert plan.step("evaluate.after").params.base == embedded == plan.step("study.tiers").params.base
    judge = plan.step("score.helpful").params.dimension
    assert judge.model.path == embedded.path

"""dialc's multiple-choice scorer vs lm-evaluation-harness on the embedded model: same acc and acc_norm.

Two local lm-eval tasks are written into a temp folder: a CMMLU subject read from ../shared/data (the
official lm-eval cmmlu template and subject instruction, over a JSON copy of the shared csv made in the
temp folder) and the built-in general probe (its packaged jsonl, as lm-eval's usual "Question: …
Answer:" task). lm-eval's HFLM loads the HF directory dialc converts the embedded GGUF into (the same
weights dialc scores with, fp32 on CPU). Nothing is downloaded (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SUBJECT = "philosophy"  # 105 test items, Chinese text
MODEL = "builtin:smollm2-135m-instruct"
TOLERANCE = 0.1  # accuracy points

pytestmark = pytest.mark.slow


def lm_eval_cmmlu_template() -> tuple[dict[str, Any], str]:
    """lm-eval's own CMMLU template (doc_to_text/choice/target, metrics) and the subject's instruction."""
    import yaml
    from lm_eval import tasks

    folder = Path(tasks.__file__).parent / "cmmlu"
    template = yaml.safe_load((folder / "_default_template_yaml").read_text(encoding="utf-8"))
    subject = yaml.safe_load((folder / f"cmmlu_{SUBJECT}.yaml").read_text(encoding="utf-8"))
    return template, subject["description"]


def csv_to_jsonl(source: Path, target: Path) -> Path:
    """A CMMLU csv as JSON lines of strings (a csv loader would turn "0.50" into a float)."""
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    target.write_text(
        "".join(json.dumps({k or "id": v for k, v in row.items()}, ensure_ascii=False) + "\n" for row in rows),
        encoding="utf-8",
    )
    return target


def write_tasks(folder: Path) -> None:
    """The two local tasks, as YAML files lm-eval's TaskManager finds through include_path."""
    import yaml

    from dialc_runtime.evaluate.suites import general_probe_path

    template, description = lm_eval_cmmlu_template()
    cache = str(folder / "hf-datasets")
    data = {
        split: str(csv_to_jsonl(SHARED / "cmmlu" / split / f"{SUBJECT}.csv", folder / f"{SUBJECT}-{split}.jsonl"))
        for split in ("test", "dev")
    }
    cmmlu = {
        **template,
        "task": f"dialc_cmmlu_{SUBJECT}",
        "dataset_path": "json",
        "description": description,
        "dataset_kwargs": {"data_files": data, "cache_dir": cache},
    }
    cmmlu.pop("dataset_name", None)
    probe = {
        "task": "dialc_general_probe",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(general_probe_path())}, "cache_dir": cache},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{question.strip()}}\nAnswer:",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "answer",
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")],
    }
    for spec in (cmmlu, probe):
        (folder / f"{spec['task']}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")


def run_lm_eval(model_dir: Path, folder: Path) -> dict[str, dict[str, float]]:
    """task → {acc, acc_norm} in points, from lm-eval's simple_evaluate, 0-shot."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=8)
    out = simple_evaluate(
        model=lm,
        tasks=[f"dialc_cmmlu_{SUBJECT}", "dialc_general_probe"],
        num_fewshot=0,
        task_manager=TaskManager(include_path=str(folder)),
        log_samples=False,
    )
    assert out is not None
    return {
        task: {m: 100 * float(values[f"{m},none"]) for m in ("acc", "acc_norm")}
        for task, values in out["results"].items()
    }


def run_dialc() -> dict[str, dict[str, float]]:
    """The same two suites through dialc's reader and scorer (the path `evaluate` takes)."""
    from dialc_runtime.evaluate.scoring import HFModel, evaluate_choice
    from dialc_runtime.evaluate.suites.readers import read_suite

    lm = HFModel.load(MODEL)
    suites = {
        f"dialc_cmmlu_{SUBJECT}": read_suite(str(SHARED / "cmmlu" / "test" / f"{SUBJECT}.csv")),
        "dialc_general_probe": read_suite("builtin:general-probe"),
    }
    results = {}
    for task, suite in suites.items():
        result = evaluate_choice(lm, suite.items, task)
        results[task] = {m: 100 * result.metrics[m] for m in ("acc", "acc_norm")} | {"n": float(result.n)}
    return results


@pytest.mark.skipif(not (SHARED / "cmmlu" / "test" / f"{SUBJECT}.csv").is_file(), reason="no ../shared/data")
def test_acc_and_acc_norm_agree_with_lm_eval_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("lm_eval")
    from dialc_runtime.models.locate import resolve_model

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    write_tasks(tmp_path)
    theirs = run_lm_eval(resolve_model(MODEL), tmp_path)  # the HF directory dialc itself loads
    ours = run_dialc()
    print(json.dumps({"lm_eval": theirs, "dialc": ours}, indent=1))
    assert ours[f"dialc_cmmlu_{SUBJECT}"]["n"] == 105 and ours["dialc_general_probe"]["n"] >= 300
    assert theirs["dialc_general_probe"]["acc"] != theirs["dialc_general_probe"]["acc_norm"]  # both really compared
    for task, metrics in theirs.items():
        for metric, value in metrics.items():
            assert ours[task][metric] == pytest.approx(value, abs=TOLERANCE), (task, metric, ours, theirs)

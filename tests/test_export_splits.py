"""Export: the fine-tune's hold-out dialogues go to their own files and dataset split, never into train."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline_kit import SPEC, compile_spec, write_project
from runtime_fakes import MemoryContext

from dialc.plan import ExportParams, FinetuneParams, Holdout
from dialc_runtime.data.split import held_out
from dialc_runtime.steps import export as export_step

HOLDOUT = {"fraction": 0.3, "seed": 5}


def kept(i: int) -> dict[str, Any]:
    return {"id": f"p{i}", "dialogue_id": f"d{i:02d}", "scenario": "rental", "category": "summary",
            "task_id": "summary", "messages": [{"role": "user", "content": f"Summarise dialogue {i}."}],
            "answer": f"Summary {i}.", "ok": True, "kept": True, "aggregate": 0.9}


def export(tmp_path: Path, formats: list[str], holdout: dict[str, Any] | None = HOLDOUT) -> MemoryContext:
    ctx = MemoryContext("export.dataset", {"formats": formats, "holdout": holdout},
                        {"filter.quality": [kept(i) for i in range(20)]}, out_dir=tmp_path / "out")
    export_step.run(ctx)  # type: ignore[arg-type]
    return ctx


def test_chat_jsonl_keeps_train_and_holdout_apart(tmp_path: Path) -> None:
    ctx = export(tmp_path, ["chat_jsonl", "parquet"])
    split = Holdout(**HOLDOUT)
    out = tmp_path / "out"
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    holdout = [json.loads(line) for line in (out / "holdout.jsonl").read_text().splitlines()]
    assert train and holdout and len(train) + len(holdout) == 20
    assert not any(held_out(row["metadata"], split) for row in train)
    assert all(held_out(row["metadata"], split) for row in holdout)
    assert {r["metadata"]["split"] for r in train} == {"train"}
    import pyarrow.parquet as pq

    assert pq.read_table(out / "train.parquet").num_rows == len(train)
    assert pq.read_table(out / "holdout.parquet").num_rows == len(holdout)
    assert {r["split"] for r in ctx.emitted.values()} == {"train", "holdout"}  # the text is in the files


def test_hf_dataset_has_a_train_and_a_holdout_split(tmp_path: Path) -> None:
    from datasets import load_from_disk

    export(tmp_path, ["hf_dataset"])
    dataset = load_from_disk(str(tmp_path / "out" / "hf_dataset"))
    assert set(dataset) == {"train", "holdout"}
    assert dataset["train"].num_rows + dataset["holdout"].num_rows == 20


def test_without_a_holdout_everything_is_train(tmp_path: Path) -> None:
    export(tmp_path, ["chat_jsonl"], holdout=None)
    assert len((tmp_path / "out" / "train.jsonl").read_text().splitlines()) == 20
    assert not (tmp_path / "out" / "holdout.jsonl").exists()


def test_compiler_gives_the_export_the_finetunes_holdout(tmp_path: Path) -> None:
    spec = SPEC + """
finetune tuned {{ base = tiny }}
evaluate after {{ model = tuned  domain = holdout(0.25)  general = [suite("builtin:general-probe")] }}
"""
    plan = compile_spec(write_project(tmp_path, spec=spec))
    export_params = plan.step("export.dataset").params
    finetune = plan.step("finetune.tuned").params
    assert isinstance(export_params, ExportParams) and isinstance(finetune, FinetuneParams)
    assert export_params.holdout is not None and export_params.holdout == finetune.holdout


def test_an_empty_holdout_split_still_loads(tmp_path: Path) -> None:
    from datasets import load_from_disk

    export(tmp_path, ["hf_dataset", "parquet"], holdout={"fraction": 0.0, "seed": 5})
    dataset = load_from_disk(str(tmp_path / "out" / "hf_dataset"))
    assert dataset["holdout"].num_rows == 0 and dataset["train"].num_rows == 20

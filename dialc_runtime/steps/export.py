"""Quality-filtered records → chat JSONL (TRL / LLaMA-Factory / axolotl), Parquet and a HF dataset, with lineage."""

from __future__ import annotations

import json
from typing import Any

from dialc.plan import ExportParams
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.train.samples import chat_sample, trainable

VERSION = "1"
LINEAGE_FIELDS = ("id", "dialogue_id", "scenario", "task_id", "category", "instruction", "expression", "lineage",
                  "label_model", "attempts", "scores", "aggregate", "kept", "reason")


def run(ctx: StepContext[ExportParams]) -> StepOutput:
    p = ctx.params
    records = [r for r in ctx.role_records("records") if p.include == "all" or r.get("kept")]
    rows = [chat_sample(r, LINEAGE_FIELDS) for r in records if trainable(r)]
    files: dict[str, str] = {}
    if "chat_jsonl" in p.formats:
        path = ctx.out_dir / "train.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        files["chat_jsonl"] = path.name
    if "parquet" in p.formats:
        files["parquet"] = _parquet(ctx, rows)
    if "hf_dataset" in p.formats:
        files["hf_dataset"] = _hf_dataset(ctx, rows)
    for index, row in enumerate(rows):
        ctx.emit(f"{index:06d}", row)
    return StepOutput(metrics={"exported": len(rows), "files": files, "dir": str(ctx.out_dir)})


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """Columns for tabular formats: messages stay a list of structs, lineage is kept as JSON text."""
    meta = row["metadata"]
    return {"id": meta["id"], "scenario": meta.get("scenario"), "category": meta.get("category"),
            "task_id": meta.get("task_id"), "dialogue_id": meta.get("dialogue_id"),
            "aggregate": meta.get("aggregate"), "messages": row["messages"],
            "metadata": json.dumps(meta, ensure_ascii=False, sort_keys=True)}


def _parquet(ctx: StepContext[ExportParams], rows: list[dict[str, Any]]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([_flat(r) for r in rows])
    path = ctx.out_dir / "train.parquet"
    pq.write_table(table, path)
    return path.name


def _hf_dataset(ctx: StepContext[ExportParams], rows: list[dict[str, Any]]) -> str:
    from datasets import Dataset

    path = ctx.out_dir / "hf_dataset"
    Dataset.from_list([_flat(r) for r in rows]).save_to_disk(str(path))
    return path.name

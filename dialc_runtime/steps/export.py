"""Quality-filtered records → chat JSONL (TRL / LLaMA-Factory / axolotl), Parquet and a HF dataset, with lineage."""

from __future__ import annotations

import json
from typing import Any

from dialc.plan import ExportParams, Holdout
from dialc_runtime.data.split import held_out
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.train.samples import chat_sample, trainable

VERSION = "2"  # 2: the fine-tune's hold-out exported apart (holdout.*), metadata.split on every row
LINEAGE_FIELDS = ("id", "dialogue_id", "scenario", "task_id", "category", "instruction", "expression", "lineage",
                  "label_model", "attempts", "scores", "aggregate", "kept", "reason")
SPLITS = ("train", "holdout")  # file stems and dataset split names: train.jsonl, holdout.jsonl …


def run(ctx: StepContext[ExportParams]) -> StepOutput:
    p = ctx.params
    records = [r for r in ctx.role_records("records") if p.include == "all" or r.get("kept")]
    splits = split_rows([r for r in records if trainable(r)], p.holdout)
    names = list(SPLITS) if p.holdout is not None else ["train"]
    files: dict[str, list[str]] = {}
    if "chat_jsonl" in p.formats:
        files["chat_jsonl"] = [_jsonl(ctx, name, splits[name]) for name in names]
    if "parquet" in p.formats:
        files["parquet"] = [_parquet(ctx, name, splits[name]) for name in names]
    if "hf_dataset" in p.formats:
        files["hf_dataset"] = [_hf_dataset(ctx, {name: splits[name] for name in names})]
    for index, row in enumerate(splits["train"] + splits["holdout"]):
        ctx.emit(f"{index:06d}", row)
    counts = {name: len(splits[name]) for name in names}
    return StepOutput(metrics={"exported": len(splits["train"]), "splits": counts, "files": files,
                               "dir": str(ctx.final_dir)})


def split_rows(records: list[dict[str, Any]], holdout: Holdout | None) -> dict[str, list[dict[str, Any]]]:
    """Chat samples by split: a record of a hold-out dialogue (the fine-tune's, `held_out`) is never train."""
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    for record in records:
        row = chat_sample(record, LINEAGE_FIELDS)
        split = "holdout" if held_out(record, holdout) else "train"
        row["metadata"]["split"] = split
        splits[split].append(row)
    return splits


def _jsonl(ctx: StepContext[ExportParams], name: str, rows: list[dict[str, Any]]) -> str:
    path = ctx.out_dir / f"{name}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    return path.name


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """Columns for tabular formats: messages stay a list of structs, lineage is kept as JSON text."""
    meta = row["metadata"]
    return {"id": meta["id"], "scenario": meta.get("scenario"), "category": meta.get("category"),
            "task_id": meta.get("task_id"), "dialogue_id": meta.get("dialogue_id"),
            "aggregate": meta.get("aggregate"), "messages": row["messages"],
            "metadata": json.dumps(meta, ensure_ascii=False, sort_keys=True)}


def _parquet(ctx: StepContext[ExportParams], name: str, rows: list[dict[str, Any]]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = ctx.out_dir / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist([_flat(r) for r in rows], schema=_schema() if not rows else None), path)
    return path.name


def _schema() -> Any:
    """The columns of an empty split (pyarrow cannot infer them from no rows)."""
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    text = ("id", "scenario", "category", "task_id", "dialogue_id")
    return pa.schema([*((c, pa.string()) for c in text), ("aggregate", pa.float64()),
                      ("messages", pa.list_(message)), ("metadata", pa.string())])


def _hf_dataset(ctx: StepContext[ExportParams], splits: dict[str, list[dict[str, Any]]]) -> str:
    from datasets import Dataset, DatasetDict

    path = ctx.out_dir / "hf_dataset"
    dataset = DatasetDict({name: Dataset.from_list([_flat(r) for r in rows]) if rows
                           else Dataset(_schema().empty_table()) for name, rows in splits.items()})
    dataset.save_to_disk(str(path), num_shards={name: 1 for name in splits})  # an empty split needs its shard
    return path.name

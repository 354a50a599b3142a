"""Quality-filtered records → chat JSONL (TRL / LLaMA-Factory / axolotl), Parquet and a HF dataset, with lineage.

Records stream from the store into the files (Parquet a row group at a time; a HF dataset is built from
rows held in memory, so only that format holds them all). The files carry the full text; the step's own
stored records only say which record went to which split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dialc.plan import ExportParams, Holdout
from dialc_runtime.data.split import held_out
from dialc_runtime.data.trainer_formats import write_trainer_files
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.train.samples import chat_sample, trainable

VERSION = "4"  # 2: the fine-tune's hold-out exported apart (holdout.*), metadata.split on every row;
# 3: dataset_info.json (LLaMA-Factory), axolotl.yaml and trl_sft.py beside the chat JSONL;
# 4: streamed; a stored record is {id, split} (the text is in the files)
ROW_GROUP = 2000  # Parquet rows written at a time
LINEAGE_FIELDS = ("id", "dialogue_id", "scenario", "task_id", "category", "instruction", "expression", "lineage",
                  "label_model", "attempts", "scores", "aggregate", "kept", "reason")
SPLITS = ("train", "holdout")  # file stems and dataset split names: train.jsonl, holdout.jsonl …


def run(ctx: StepContext[ExportParams]) -> StepOutput:
    p = ctx.params
    names = list(SPLITS) if p.holdout is not None else ["train"]
    sinks = Sinks(ctx, p.formats, names)
    counts = dict.fromkeys(SPLITS, 0)
    for record in ctx.role_records("records"):
        if (p.include == "all" or record.get("kept")) and trainable(record):
            row, split = export_row(record, p.holdout)
            sinks.write(split, row)
            ctx.emit(f"{sum(counts.values()):09d}", {"id": record.get("id"), "split": split})
            counts[split] += 1
    files = sinks.close()
    if "chat_jsonl" in p.formats:  # LLaMA-Factory dataset_info.json, axolotl and TRL snippets beside it
        files["trainers"] = write_trainer_files(ctx.out_dir, holdout=p.holdout is not None)
    return StepOutput(metrics={"exported": counts["train"], "splits": {name: counts[name] for name in names},
                               "files": files, "dir": str(ctx.final_dir)})


def export_row(record: dict[str, Any], holdout: Holdout | None) -> tuple[dict[str, Any], str]:
    """A record's chat sample and split: a record of a hold-out dialogue (the fine-tune's) is never train."""
    row = chat_sample(record, LINEAGE_FIELDS)
    split = "holdout" if held_out(record, holdout) else "train"
    row["metadata"]["split"] = split
    return row, split


class Sinks:
    """The files of each split, written as rows arrive."""

    def __init__(self, ctx: StepContext[ExportParams], formats: Sequence[str], names: list[str]) -> None:
        self.ctx, self.formats, self.names = ctx, formats, names
        self.jsonl = {n: (ctx.out_dir / f"{n}.jsonl").open("w", encoding="utf-8") for n in names
                      if "chat_jsonl" in formats}
        self.tables: dict[str, list[dict[str, Any]]] = {n: [] for n in names}  # Parquet rows not yet written
        self.writers: dict[str, Any] = {}
        self.held: dict[str, list[dict[str, Any]]] = {n: [] for n in names}  # for a HF dataset

    def write(self, split: str, row: dict[str, Any]) -> None:
        if split in self.jsonl:
            self.jsonl[split].write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        if "parquet" in self.formats:
            self.tables[split].append(_flat(row))
            if len(self.tables[split]) >= ROW_GROUP:
                self._row_group(split)
        if "hf_dataset" in self.formats:
            self.held[split].append(row)

    def _row_group(self, split: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if split not in self.writers:
            self.writers[split] = pq.ParquetWriter(self.ctx.out_dir / f"{split}.parquet", _schema())
        self.writers[split].write_table(pa.Table.from_pylist(self.tables[split], schema=_schema()))
        self.tables[split] = []

    def close(self) -> dict[str, list[str]]:
        """Finish every file; the file names by format."""
        files: dict[str, list[str]] = {}
        for handle in self.jsonl.values():
            handle.close()
        if "chat_jsonl" in self.formats:
            files["chat_jsonl"] = [f"{n}.jsonl" for n in self.names]
        if "parquet" in self.formats:
            for name in self.names:
                if self.tables[name] or name not in self.writers:  # an empty split still gets its file
                    self._row_group(name)
                self.writers[name].close()
            files["parquet"] = [f"{n}.parquet" for n in self.names]
        if "hf_dataset" in self.formats:
            files["hf_dataset"] = [_hf_dataset(self.ctx, self.held)]
        return files


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

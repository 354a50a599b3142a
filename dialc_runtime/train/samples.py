"""Labelled records (or suite questions) → chat SFT samples: the prompt's messages + the answer as the last turn.

The one sample builder: the export step writes these samples, and the finetune and study steps train
on them, so what is exported is what is trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def trainable(record: Mapping[str, Any]) -> bool:
    """A record that makes a sample: its label passed validation and has an answer."""
    return bool(record.get("ok", True) and record.get("answer"))


def chat_sample(record: Mapping[str, Any], metadata: Iterable[str] = ()) -> dict[str, Any]:
    """{"messages": the production prompt + the label as the assistant turn}, and the record's
    `metadata` fields (lineage) under "metadata" when any are named."""
    messages = [dict(m) for m in record["messages"]]
    if not messages or messages[-1]["role"] != "assistant":  # a prompt already ending in its answer
        messages.append({"role": "assistant", "content": record["answer"]})
    sample: dict[str, Any] = {"messages": messages}
    fields = tuple(metadata)
    if fields:
        sample["metadata"] = {k: record.get(k) for k in fields}
    return sample


def qa_sample(question: str, answer: str) -> dict[str, Any]:
    """A one-turn sample: the question as the user turn, the answer as the assistant turn."""
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}

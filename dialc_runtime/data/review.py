"""Review files: evolved task candidates ⇄ a diff-friendly JSONL file a person accepts, rejects or edits."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dialc_runtime.data.jsonl import JsonlError, read_jsonl

DECISIONS = ("pending", "accept", "reject")
HEADER_KEYS = ("id", "decision", "operator", "parent", "category", "instruction", "original")


class ReviewFileError(Exception):
    """A review file a person edited into something unreadable; the message names the line."""


def candidate_row(task: dict[str, Any], parents: dict[str, str]) -> dict[str, Any]:
    last = task["chain"][-1] if task.get("chain") else {}
    return {"id": task["id"], "decision": "pending", "operator": last.get("operator"),
            "parent": last.get("parent"), "category": task["category"], "instruction": task["instruction"],
            "original": parents.get(last.get("parent", ""), "")}


def read_review(path: Path) -> dict[str, dict[str, Any]]:
    """id → row; every line must be a JSON object with an id and a known decision."""
    rows: dict[str, dict[str, Any]] = {}
    try:
        for number, row in read_jsonl(path):
            _check_row(path, number, row)
            rows[row["id"]] = row
    except OSError as exc:  # a directory, a FIFO, a symlink loop, unreadable …
        raise ReviewFileError(f"review file {exc}") from None
    return rows


def _check_row(path: Path, number: int, row: Any) -> None:
    """One review line: a JSON object with an id, a known decision and a non-empty instruction."""
    if isinstance(row, JsonlError):
        raise ReviewFileError(str(row))
    if not isinstance(row, dict) or not isinstance(row.get("id"), str):
        raise ReviewFileError(f"{path}:{number}: each line needs an \"id\"")
    if row.get("decision") not in DECISIONS:
        raise ReviewFileError(f"{path}:{number}: decision must be one of {', '.join(DECISIONS)}")
    if not isinstance(row.get("instruction"), str) or not row["instruction"].strip():
        raise ReviewFileError(f"{path}:{number}: instruction must be non-empty text")


def write_review(path: Path, rows: list[dict[str, Any]]) -> None:
    """One candidate per line, sorted by id, keys in a fixed order: small, readable diffs. Atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(rows, key=lambda r: r["id"])
    text = "".join(json.dumps({k: r.get(k) for k in HEADER_KEYS}, ensure_ascii=False) + "\n" for r in ordered)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def merge_candidates(path: Path, candidates: list[dict[str, Any]], parents: dict[str, str]) -> list[dict[str, Any]]:
    """Existing decisions kept; new candidates added as pending; the file rewritten only if it changed."""
    existing = read_review(path) if os.path.lexists(path) else {}
    rows = dict(existing)
    for task in candidates:
        rows.setdefault(task["id"], candidate_row(task, parents))
    if rows.keys() != existing.keys():
        try:
            write_review(path, list(rows.values()))
        except OSError as exc:  # its folder is a file, or not writable …
            raise ReviewFileError(f"cannot write the review file {path}: {exc.strerror or exc}") from None
    return list(rows.values())

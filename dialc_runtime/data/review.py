"""Review files: evolved task candidates ⇄ a diff-friendly JSONL file a person accepts, rejects or edits.

The one reader and writer of review files: the review step (new candidates), `dialc review` in the
terminal and its web page all change a file through `merge_candidates`, `record_decision` and
`decide_pending`, each of which re-reads the file, applies its change and writes it atomically under
`review_lock`, so two reviewers (two pages, a page and a terminal) never lose each other's decisions.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialc_runtime.data.jsonl import JsonlError, read_jsonl

try:
    import fcntl
except ImportError:  # Windows: threads of one process are still serialised
    fcntl = None  # type: ignore[assignment]

DECISIONS = ("pending", "accept", "reject")
HEADER_KEYS = ("id", "decision", "operator", "parent", "category", "instruction", "original")
CONTEXT_KEYS = ("output", "dialogue")  # shown to the reviewer; written only when known
REFRESHED_KEYS = ("operator", "parent", "category", "original", *CONTEXT_KEYS)  # never the decision or instruction
NEW_FILE_MODE = 0o644  # a review file is committed beside the spec: readable like the spec
SCALAR_TYPES = {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class ReviewFileError(Exception):
    """A review file a person edited into something unreadable; the message names the line."""


# ---- candidates → rows ---------------------------------------------------------------------------
def candidate_row(task: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A pending row for a candidate; `tasks` (id → task) supplies its parent's instruction and, for a
    paraphrase, the output constraint and dialogue of the task it rephrases."""
    last = task["chain"][-1] if task.get("chain") else {}
    parent = tasks.get(str(last.get("parent", "")), {})
    source = tasks.get(str(task.get("task_id", "")), parent) if task.get("kind") == "paraphrase" else task
    row = {"id": task["id"], "decision": "pending", "operator": last.get("operator"),
           "parent": last.get("parent"), "category": task["category"], "instruction": task["instruction"],
           "original": parent.get("instruction", "")}
    output = source.get("output") or task.get("output")
    if output:
        row["output"] = constraint_text(output)
    dialogue = source.get("context_dialogue") or task.get("context_dialogue")
    if dialogue:
        row["dialogue"] = dialogue
    return row


def constraint_text(output: dict[str, Any]) -> str:
    """A task's output constraint in the spec's own syntax: `text(max = 300)`, `choice([a, b])`,
    `regex("…")`, `{ budget: int? [0..100]  district: str? (max 40) }`."""
    kind = output.get("kind")
    if kind == "text":
        return f"text(max = {output.get('max_chars')})"
    if kind == "choice":
        return f"choice([{', '.join(map(str, output.get('options', [])))}])"
    if kind == "regex":
        return f"regex({json.dumps(output.get('pattern', ''), ensure_ascii=False)})"
    if kind == "json":
        return _object_text(output.get("schema", {}))
    return json.dumps(output, ensure_ascii=False, sort_keys=True)


def _object_text(schema: dict[str, Any]) -> str:
    fields = "  ".join(f"{name}: {_type_text(s)}" for name, s in schema.get("properties", {}).items())
    return "{ " + fields + " }" if fields else "{ }"


def _type_text(schema: dict[str, Any]) -> str:
    """One JSON-schema field → `int? [0..10]`, `str (max 40)`, `[str (max 20)] (max 5)`, `enum(a, b)`."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    base = next((t for t in types if t != "null"), None)
    optional = "?" if "null" in types else ""
    if "enum" in schema:
        return f"enum({', '.join(str(v) for v in schema['enum'] if v is not None)}){optional}"
    if base == "array":
        text = f"[{_type_text(schema.get('items', {}))}]{optional}"
        return text + _keywords(schema, {"minItems": "min", "maxItems": "max"})
    if base == "object":
        return _object_text(schema) + optional
    text = SCALAR_TYPES.get(str(base), str(base)) + optional
    if "minimum" in schema and "maximum" in schema:
        text += f" [{schema['minimum']}..{schema['maximum']}]"
    return text + _keywords(schema, {"minLength": "min", "maxLength": "max"})


def _keywords(schema: dict[str, Any], words: dict[str, str]) -> str:
    return "".join(f" ({word} {schema[key]})" for key, word in words.items() if key in schema)


# ---- the file ------------------------------------------------------------------------------------
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
    """One candidate per line, sorted by id, keys in a fixed order: small, readable diffs. Atomic
    (a temporary file renamed over the old one), keeping the old file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(_ordered(r), ensure_ascii=False) + "\n" for r in sorted(rows, key=lambda r: r["id"]))
    mode = stat.S_IMODE(os.stat(path).st_mode) if path.is_file() else NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in HEADER_KEYS}
    out.update({k: row[k] for k in CONTEXT_KEYS if row.get(k) is not None})
    return out


@contextmanager
def review_lock(path: Path) -> Iterator[None]:
    """Held while a review file is re-read, changed and written: by the threads of this process and,
    where fcntl exists, by other processes (an flock on a lock file in the temp folder named after the
    review file's real path, so no lock file lands beside the committed review file)."""
    key = str(Path(path).resolve())
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.Lock())
    with thread_lock:
        handle = _lock_file(key)
        try:
            if handle is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            if handle is not None:
                handle.close()  # closing releases the flock


def _lock_file(key: str) -> Any:
    if fcntl is None:
        return None
    name = f"dialc-review-{os.getuid()}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.lock"
    try:
        return open(Path(tempfile.gettempdir()) / name, "a")  # noqa: SIM115 (closed by review_lock)
    except OSError:  # no writable temp folder: threads of this process are still serialised
        return None


# ---- changes: each one re-reads the file under the lock, applies itself and writes ---------------
def merge_candidates(path: Path, candidates: list[dict[str, Any]],
                     tasks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Existing decisions and instructions kept; new candidates added as pending; what the reviewer is
    shown (output constraint, dialogue, parent) refreshed; the file rewritten only if it changed."""
    with review_lock(path):
        existing = read_review(path) if os.path.lexists(path) else {}
        rows = {k: dict(v) for k, v in existing.items()}
        for task in candidates:
            fresh = candidate_row(task, tasks)
            row = rows.setdefault(task["id"], fresh)
            row.update({k: fresh[k] for k in REFRESHED_KEYS if fresh.get(k) not in (None, "")})
        if rows != existing:
            try:
                write_review(path, list(rows.values()))
            except OSError as exc:  # its folder is a file, or not writable …
                raise ReviewFileError(f"cannot write the review file {path}: {exc.strerror or exc}") from None
    return list(rows.values())


@dataclass(frozen=True)
class Decision:
    """One reviewer's decision on one candidate. `seen` is the candidate's state (decision and
    instruction) as that reviewer last saw it: when the file says otherwise, someone else decided in
    the meantime, and the decision is not applied (a conflict) unless it changes nothing."""

    id: str
    decision: str
    instruction: str | None = None  # an edit; None keeps the instruction
    seen: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    row: dict[str, Any]  # the candidate as the file now holds it
    conflict: bool = False


def state(row: dict[str, Any]) -> dict[str, Any]:
    """What a decision changes: the decision and the instruction."""
    return {"decision": row.get("decision"), "instruction": row.get("instruction")}


def record_decision(path: Path, decision: Decision) -> Outcome:
    """Apply one decision to the file as it is now (re-read under the lock), write it, return the row.
    ValueError for a bad decision, an empty edit or an unknown candidate."""
    if decision.decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
    edit = decision.instruction.strip() if decision.instruction is not None else None
    if edit is not None and not edit:
        raise ValueError("the instruction cannot be empty")
    with review_lock(path):
        rows = read_review(path)
        row = rows.get(decision.id)
        if row is None:
            raise ValueError(f"no candidate {decision.id!r} in {path}")
        wanted = {"decision": decision.decision, "instruction": edit if edit is not None else row["instruction"]}
        if state(row) == wanted:
            return Outcome(row)
        if decision.seen is not None and state(row) != decision.seen:
            return Outcome(row, conflict=True)
        row.update(wanted)
        write_review(path, list(rows.values()))
    return Outcome(row)


def decide_pending(path: Path, decision: str) -> int:
    """Every pending candidate accepted or rejected at once; how many were."""
    with review_lock(path):
        rows = read_review(path)
        pending = [r for r in rows.values() if r["decision"] == "pending"]
        for row in pending:
            row["decision"] = decision
        if pending:
            write_review(path, list(rows.values()))
    return len(pending)

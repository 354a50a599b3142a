"""Run directory → record store: SQLite (WAL) records, completed steps, file artifacts.

Durability: a step's records are committed in batches (engine/batches.py), one transaction each, in WAL
mode with `synchronous=NORMAL`. A commit is in the WAL (the OS page cache) once `put_many` returns, so
Ctrl-C or kill -9 of dialc loses at most the batch not yet committed; only an OS crash or power cut
could drop the last few commits, and even then the database stays consistent and the step resumes
from what survived. FULL would add an fsync per commit for protection against power loss, which
resume already covers.

A stored record may refer to the input record it was made from instead of copying it (engine/refs.py):
`records()` and `lookup()` give it whole, `rows()` (what the output digest covers) gives it as stored.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialc_runtime.engine import refs
from dialc_runtime.engine.canonical import load_record, record_json
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.errors import StoreDamaged

__all__ = ["Completed", "Store", "damaged", "find_record", "load_record", "record_json"]

SCHEMA_VERSION = 2  # 2: the refs table (version 1 stores are upgraded in place: the table is added)
PAGE_SIZE = 16384  # bytes per database page of a new store: a prompt-sized record fits in its page
_PAGE = 1000  # rows fetched per query when streaming a step's records

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    step_key TEXT NOT NULL,  -- cache key of the step attempt that wrote the record
    rkey     TEXT NOT NULL,  -- the record's key within the step (sortable)
    step_id  TEXT NOT NULL,
    data     TEXT NOT NULL,  -- canonical JSON
    PRIMARY KEY (step_key, rkey)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_rkey ON records (rkey);
CREATE TABLE IF NOT EXISTS steps (
    key         TEXT PRIMARY KEY,  -- cache key of a step whose output is complete
    step_id     TEXT NOT NULL,
    digest      TEXT NOT NULL,     -- output digest: records in key order + files in the out dir
    records     INTEGER NOT NULL,
    metrics     TEXT NOT NULL,     -- JSON
    timings     TEXT NOT NULL,     -- JSON: started, finished, seconds
    finished_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_by_id ON steps (step_id, finished_at);
"""
_REFS = """
CREATE TABLE IF NOT EXISTS refs (
    step_key TEXT NOT NULL,  -- a step attempt whose records refer to input records
    input_id TEXT NOT NULL,  -- the input step id a reference names
    target   TEXT NOT NULL,  -- that input's cache key
    PRIMARY KEY (step_key, input_id)
) WITHOUT ROWID;
"""


@dataclass
class Completed:
    """A finished step output, as recorded when the step succeeded."""

    key: str
    step_id: str
    digest: str
    records: int
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    finished_at: str = ""


class Store:
    """One run directory's records, completed steps and file artifacts."""

    def __init__(self, run_dir: Path, check: bool = False) -> None:
        """Open (or create) the store; `check` runs PRAGMA quick_check first (the last run did not end
        cleanly). A store SQLite cannot read raises StoreDamaged, with what to do about it."""
        self.layout = RunLayout(Path(run_dir))
        self.run_dir = self.layout.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._open(check)
        except sqlite3.DatabaseError as exc:
            if getattr(self, "db", None) is not None:
                self.db.close()
            raise damaged(self.layout, exc) from None

    def _open(self, check: bool) -> None:
        # isolation_level=None: autocommit, so each emit is one durable transaction
        self.db = sqlite3.connect(self.layout.store, isolation_level=None)
        self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new store only: must precede WAL and the tables
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, SCHEMA_VERSION):
            raise RuntimeError(f"{self.layout.store}: unknown store version {version}")
        if version == 0:
            self.db.executescript(_SCHEMA)
        if version != SCHEMA_VERSION:
            self.db.executescript(_REFS)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        if check:
            found = [row[0] for row in self.db.execute("PRAGMA quick_check(5)").fetchall()]
            if found != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(map(str, found)))

    @classmethod
    def existing(cls, run_dir: Path, check: bool = False) -> Store | None:
        """Open the store of a run directory without creating one."""
        return cls(run_dir, check) if RunLayout(Path(run_dir)).store.is_file() else None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # records -------------------------------------------------------------------------------

    def put(self, step_key: str, step_id: str, rkey: str, data: str, replace: bool) -> None:
        """Commit one record; `replace` overwrites a row left by an earlier attempt."""
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        self.db.execute(
            f"{verb} INTO records (step_key, rkey, step_id, data) VALUES (?, ?, ?, ?)",
            (step_key, rkey, step_id, data),
        )

    def put_many(self, step_key: str, step_id: str, rows: list[tuple[str, str, bool]]) -> None:
        """Commit a batch of (record key, JSON, replace) rows in one transaction."""
        with self.transaction():
            for rkey, data, replace in rows:
                self.put(step_key, step_id, rkey, data, replace)

    def keys(self, step_key: str) -> Iterator[str]:
        """The record keys of a step attempt, in key order."""
        for (rkey,) in self.db.execute("SELECT rkey FROM records WHERE step_key = ? ORDER BY rkey", (step_key,)):
            yield rkey

    def get_many(self, step_key: str, rkeys: list[str]) -> dict[str, str]:
        """Record key → stored JSON of the given keys that exist (any number of keys)."""
        found: dict[str, str] = {}
        for start in range(0, len(rkeys), _PAGE):
            chunk = rkeys[start:start + _PAGE]
            sql = f"SELECT rkey, data FROM records WHERE step_key = ? AND rkey IN ({','.join('?' * len(chunk))})"
            found.update(self.db.execute(sql, (step_key, *chunk)).fetchall())
        return found

    def set_refs(self, step_key: str, targets: dict[str, str]) -> None:
        """Which output each input step id named in this attempt's references is (input id → cache key)."""
        with self.transaction():
            for input_id, target in targets.items():
                self.db.execute("INSERT OR REPLACE INTO refs VALUES (?, ?, ?)", (step_key, input_id, target))

    def ref_targets(self, step_key: str) -> dict[str, str]:
        return dict(self.db.execute("SELECT input_id, target FROM refs WHERE step_key = ?", (step_key,)).fetchall())

    def rows(self, step_key: str) -> Iterator[tuple[str, str]]:
        """(record key, JSON) in key order, fetched page by page (keyset, never the whole step)."""
        sql = (
            "SELECT rkey, data FROM records WHERE step_key = ? AND rkey > ? "
            f"ORDER BY rkey LIMIT {_PAGE}"
        )
        last = ""  # every key sorts after the empty string, and keys are never empty
        while True:
            page = self.db.execute(sql, (step_key, last)).fetchall()
            yield from page
            if len(page) < _PAGE:
                return
            last = page[-1][0]

    def records(self, step_key: str) -> Iterator[tuple[str, Any]]:
        """(record key, record) in key order, each whole (references to input records resolved)."""
        page: list[tuple[str, str]] = []
        for row in self.rows(step_key):
            page.append(row)
            if len(page) == _PAGE:
                yield from refs.resolve_page(self, step_key, page)
                page = []
        yield from refs.resolve_page(self, step_key, page)

    def records_by_key(self, step_key: str, rkeys: list[str]) -> dict[str, Any]:
        """Record key → whole record, for the given keys that exist."""
        rows = sorted(self.get_many(step_key, rkeys).items())
        return dict(refs.resolve_page(self, step_key, rows))

    def count(self, step_key: str) -> int:
        sql = "SELECT COUNT(*) FROM records WHERE step_key = ?"
        return int(self.db.execute(sql, (step_key,)).fetchone()[0])

    # completed steps -----------------------------------------------------------------------

    def completed(self, key: str) -> Completed | None:
        row = self.db.execute("SELECT * FROM steps WHERE key = ?", (key,)).fetchone()
        return completed_row(row) if row else None

    def latest_completed(self, step_id: str) -> Completed | None:
        """The most recent completed output of a step id, whatever its key."""
        sql = "SELECT * FROM steps WHERE step_id = ? ORDER BY finished_at DESC LIMIT 1"
        row = self.db.execute(sql, (step_id,)).fetchone()
        return completed_row(row) if row else None

    def mark_completed(self, c: Completed) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                c.key,
                c.step_id,
                c.digest,
                c.records,
                json.dumps(c.metrics, sort_keys=True),
                json.dumps(c.timings, sort_keys=True),
                c.finished_at,
            ),
        )

    def purge(self, key: str) -> None:
        """Forget everything a step attempt wrote: completion, records, files, resume state."""
        with self.transaction():
            self.db.execute("DELETE FROM steps WHERE key = ?", (key,))
            self.db.execute("DELETE FROM records WHERE step_key = ?", (key,))
            self.db.execute("DELETE FROM refs WHERE step_key = ?", (key,))
        for path in (self.artifact_dir(key), self.layout.attempt_dir(key), self.layout.resume_dir(key)):
            shutil.rmtree(path, ignore_errors=True)

    def artifact_dir(self, key: str) -> Path:
        return self.layout.artifact_dir(key)

    # files of one attempt -------------------------------------------------------------------

    def begin_attempt(self, key: str) -> None:
        """A new attempt of a step that is not complete starts with no files: those of an interrupted
        or failed attempt (published or not) are removed; records and resume state are kept."""
        for path in (self.artifact_dir(key), self.layout.attempt_dir(key)):
            shutil.rmtree(path, ignore_errors=True)

    def publish(self, key: str) -> None:
        """Move the attempt's files into place in one rename (readers never see half an output)."""
        staged = self.layout.attempt_dir(key)
        if staged.is_dir():
            shutil.rmtree(self.artifact_dir(key), ignore_errors=True)
            os.replace(staged, self.artifact_dir(key))

    def end_resume(self, key: str) -> None:
        """The step completed: its resume state (checkpoints) is no longer needed."""
        shutil.rmtree(self.layout.resume_dir(key), ignore_errors=True)

    # lookup by record id (dialc show) ------------------------------------------------------

    def lookup(self, rkey: str, step_id: str | None = None) -> list[tuple[str, str, Any, bool]]:
        """Every stored copy of a record key: (step id, step key, record, step completed)."""
        sql = (
            "SELECT r.step_id, r.step_key, r.data, s.key IS NOT NULL FROM records r "
            "LEFT JOIN steps s ON s.key = r.step_key WHERE r.rkey = ?"
        )
        args: tuple[str, ...] = (rkey,)
        if step_id is not None:
            sql, args = sql + " AND r.step_id = ?", (rkey, step_id)
        rows = self.db.execute(sql, args).fetchall()
        return [(sid, key, refs.resolve_one(self, key, rkey, data), bool(done)) for sid, key, data, done in rows]


def damaged(layout: RunLayout, exc: BaseException) -> StoreDamaged:
    """What to tell a user whose store SQLite cannot read."""
    return StoreDamaged(f"{layout.store} is damaged ({exc}): its records cannot be trusted. `dialc run SPEC "
                        "--rebuild-store` moves it aside and rebuilds it from the steps whose outputs are intact "
                        "(verified by digest); the others run again.")


def completed_row(row: tuple[Any, ...]) -> Completed:
    key, step_id, digest, records, metrics, timings, finished_at = row
    return Completed(
        key, step_id, digest, records, json.loads(metrics), json.loads(timings), finished_at
    )


def find_record(run_dir: Path, record_id: str) -> tuple[str, Any] | None:
    """`dialc show`: a record by key, or `<step id>:<key>` to pick the step.

    A bare key found in several steps resolves to the copy from the latest run, furthest
    downstream (it carries the most lineage), preferring completed outputs.
    """
    store = Store.existing(run_dir)
    if store is None:
        return None
    with store:
        try:
            hits = store.lookup(record_id)
            step_id, _, rkey = record_id.partition(":")
            if not hits and rkey:
                hits = store.lookup(rkey, step_id)
        except sqlite3.DatabaseError as exc:
            raise damaged(store.layout, exc) from None
    if not hits:
        return None
    current, order = _current_keys(RunLayout(Path(run_dir)))

    def rank(hit: tuple[str, str, Any, bool]) -> tuple[bool, int, bool]:
        sid, key, _, done = hit
        return (current.get(sid) == key, order.get(sid, -1), done)

    best = max(hits, key=rank)
    return best[0], best[2]


def _current_keys(layout: RunLayout) -> tuple[dict[str, str], dict[str, int]]:
    """Step id → key from the last run_results.json, and step id → position in plan.json."""
    keys: dict[str, str] = {}
    order: dict[str, int] = {}
    try:
        results = json.loads(layout.results.read_text("utf-8"))
        keys = {s["id"]: s.get("key") for s in results.get("steps", [])}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        plan = json.loads(layout.plan.read_text("utf-8"))
        order = {s["id"]: i for i, s in enumerate(plan.get("steps", []))}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return keys, order

"""Run directory → record store: SQLite (WAL) records, completed steps, file artifacts.

Durability: a step's records are committed in batches (engine/batches.py), one transaction each, in WAL
mode with `synchronous=NORMAL`. A commit is in the WAL (the OS page cache) once `put_many` returns, so
Ctrl-C or kill -9 of dialc loses at most the batch not yet committed; only an OS crash or power cut
could drop the last few commits, and even then the database stays consistent and the step resumes
from what survived. FULL would add an fsync per commit for protection against power loss, which
resume already covers.

A stored record may refer to the input record it was made from instead of copying it (engine/refs.py):
`records()` and `lookup()` give it whole, `rows()` (what the output digest covers) gives it as stored.

A record's JSON longer than PACK_OVER bytes is stored compressed (a BLOB: a zstd frame; a version 3 store's
zlib streams are still read; shorter JSON stays TEXT, where compression saves little): every reader gets the
JSON text back, so digests do not depend on it. zstd level 3 against zlib level 6 on this project's prompt
records: about a third of the CPU to compress, half to decompress, 5% larger.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

from dialc_runtime.engine import refs
from dialc_runtime.engine.canonical import load_record, record_json
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.errors import StoreDamaged

__all__ = ["Completed", "Store", "damaged", "find_record", "load_record", "record_json"]

# 2: the refs table; 3: a record row carries its step attempt's small id (the attempts table maps it to the cache
# key and step id) instead of a 64-character key, and JSON longer than PACK_OVER bytes is stored compressed.
# 4: compressed JSON is a zstd frame (version 3 wrote zlib streams, still read: a version 3 store is upgraded by
# setting its version). Older stores are upgraded in place on opening (_upgrade); an older dialc refuses a newer one.
SCHEMA_VERSION = 4
PACK_OVER = 200  # bytes of JSON above which a record is stored compressed, when that is smaller
ZSTD_LEVEL = 3
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # how a zstd frame starts (a zlib stream starts with 0x78)
PAGE_SIZE = 16384  # bytes per database page of a new store: a prompt-sized record fits in its page
_PAGE = 1000  # rows fetched per query when streaming a step's records

_TABLES = [
    """CREATE TABLE IF NOT EXISTS attempts (
    id      INTEGER PRIMARY KEY,   -- a step attempt's small id: what its record rows carry
    key     TEXT NOT NULL UNIQUE,  -- its cache key
    step_id TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS record_rows (
    attempt INTEGER NOT NULL,  -- attempts.id of the step attempt that wrote the record
    rkey    TEXT NOT NULL,     -- the record's key within the step (sortable)
    data    NOT NULL,          -- canonical JSON: TEXT, or a zlib-compressed BLOB of it (pack)
    PRIMARY KEY (attempt, rkey)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS record_rows_by_rkey ON record_rows (rkey)",
    """CREATE TABLE IF NOT EXISTS steps (
    key         TEXT PRIMARY KEY,  -- cache key of a step whose output is complete
    step_id     TEXT NOT NULL,
    digest      TEXT NOT NULL,     -- output digest: records in key order + files in the out dir
    records     INTEGER NOT NULL,
    metrics     TEXT NOT NULL,     -- JSON
    timings     TEXT NOT NULL,     -- JSON: started, finished, seconds
    finished_at TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS steps_by_id ON steps (step_id, finished_at)",
    """CREATE TABLE IF NOT EXISTS refs (
    step_key TEXT NOT NULL,  -- a step attempt whose records refer to input records
    input_id TEXT NOT NULL,  -- the input step id a reference names
    target   TEXT NOT NULL,  -- that input's cache key
    PRIMARY KEY (step_key, input_id)
) WITHOUT ROWID""",
]
# a version 1 or 2 store's records table → attempts + record_rows (the rows' data is copied as it is)
_COPY = [
    "INSERT OR IGNORE INTO attempts (key, step_id) SELECT step_key, MIN(step_id) FROM records GROUP BY step_key",
    "INSERT INTO record_rows SELECT a.id, r.rkey, r.data FROM records r JOIN attempts a ON a.key = r.step_key",
    "DROP TABLE records",
]
# `records` as versions 1 and 2 had it, a view (readable and writable) for tools and tests that query it; the
# store itself reads and writes record_rows
_VIEW = [
    """CREATE VIEW IF NOT EXISTS records (step_key, rkey, step_id, data) AS
    SELECT a.key, r.rkey, a.step_id, r.data FROM record_rows r JOIN attempts a ON a.id = r.attempt""",
    """CREATE TRIGGER IF NOT EXISTS records_insert INSTEAD OF INSERT ON records BEGIN
    INSERT OR IGNORE INTO attempts (key, step_id) VALUES (NEW.step_key, NEW.step_id);
    INSERT INTO record_rows VALUES ((SELECT id FROM attempts WHERE key = NEW.step_key), NEW.rkey, NEW.data);
END""",
    """CREATE TRIGGER IF NOT EXISTS records_delete INSTEAD OF DELETE ON records BEGIN
    DELETE FROM record_rows WHERE attempt = (SELECT id FROM attempts WHERE key = OLD.step_key) AND rkey = OLD.rkey;
END""",
    """CREATE TRIGGER IF NOT EXISTS records_update INSTEAD OF UPDATE ON records BEGIN
    DELETE FROM record_rows WHERE attempt = (SELECT id FROM attempts WHERE key = OLD.step_key) AND rkey = OLD.rkey;
    INSERT OR IGNORE INTO attempts (key, step_id) VALUES (NEW.step_key, NEW.step_id);
    INSERT OR REPLACE INTO record_rows VALUES ((SELECT id FROM attempts WHERE key = NEW.step_key), NEW.rkey, NEW.data);
END""",
]


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
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.layout.store}: store version {version} is newer than this dialc reads "
                               f"({SCHEMA_VERSION}): upgrade dialc, or run in a new run directory")
        if version != SCHEMA_VERSION:
            self._upgrade()
        if check:
            found = [row[0] for row in self.db.execute("PRAGMA quick_check(5)").fetchall()]
            if found != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(map(str, found)))

    def _upgrade(self) -> None:
        """A new store → the current tables; a version 1 or 2 store → its records moved into them, in one
        transaction (an interrupted upgrade leaves the old store as it was)."""
        with self.transaction():
            if self.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return  # another process upgraded it meanwhile
            legacy = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'")
            for sql in [*_TABLES, *(_COPY if legacy.fetchone() else []), *_VIEW]:
                self.db.execute(sql)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _attempt(self, step_key: str, step_id: str | None = None) -> int | None:
        """The small id of a step attempt's key; a new one when `step_id` is given (writers), else None."""
        row = self.db.execute("SELECT id FROM attempts WHERE key = ?", (step_key,)).fetchone()
        if row is not None or step_id is None:
            return None if row is None else int(row[0])
        cur = self.db.execute("INSERT INTO attempts (key, step_id) VALUES (?, ?)", (step_key, step_id))
        return int(cur.lastrowid or 0)

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

    def put(self, step_key: str, step_id: str, rkey: str, data: str | bytes, replace: bool) -> None:
        """Write one record (its JSON, or bytes already in stored form); `replace` overwrites a row left by an
        earlier attempt."""
        self._put_row(self._attempt(step_key, step_id) or 0, rkey, data, replace)

    def _put_row(self, attempt: int, rkey: str, data: str | bytes, replace: bool) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        stored = pack(data) if isinstance(data, str) else data
        self.db.execute(f"{verb} INTO record_rows (attempt, rkey, data) VALUES (?, ?, ?)", (attempt, rkey, stored))

    def put_many(self, step_key: str, step_id: str, rows: list[tuple[str, str, bool]]) -> None:
        """Commit a batch of (record key, JSON, replace) rows in one transaction."""
        with self.transaction():
            attempt = self._attempt(step_key, step_id) or 0
            for rkey, data, replace in rows:
                self._put_row(attempt, rkey, data, replace)

    def keys(self, step_key: str) -> Iterator[str]:
        """The record keys of a step attempt, in key order, fetched page by page (keyset: no query stays open
        while the caller writes)."""
        sql = f"SELECT rkey FROM record_rows WHERE attempt = ? AND rkey > ? ORDER BY rkey LIMIT {_PAGE}"
        attempt = self._attempt(step_key)
        last = ""  # every key sorts after the empty string, and keys are never empty
        while True:
            page = [rkey for (rkey,) in self.db.execute(sql, (attempt, last))]
            yield from page
            if len(page) < _PAGE:
                return
            last = page[-1]

    def get_many(self, step_key: str, rkeys: list[str]) -> dict[str, str]:
        """Record key → stored JSON of the given keys that exist (any number of keys)."""
        found: dict[str, str] = {}
        attempt = self._attempt(step_key)
        for start in range(0, len(rkeys), _PAGE):
            chunk = rkeys[start:start + _PAGE]
            sql = f"SELECT rkey, data FROM record_rows WHERE attempt = ? AND rkey IN ({','.join('?' * len(chunk))})"
            found.update((rkey, unpack(data)) for rkey, data in self.db.execute(sql, (attempt, *chunk)))
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
            "SELECT rkey, data FROM record_rows WHERE attempt = ? AND rkey > ? "
            f"ORDER BY rkey LIMIT {_PAGE}"
        )
        attempt = self._attempt(step_key)
        last = ""  # every key sorts after the empty string, and keys are never empty
        while True:
            page = [(rkey, unpack(data)) for rkey, data in self.db.execute(sql, (attempt, last))]
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
        sql = "SELECT COUNT(*) FROM record_rows WHERE attempt = ?"
        return int(self.db.execute(sql, (self._attempt(step_key),)).fetchone()[0])

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
            self.db.execute("DELETE FROM record_rows WHERE attempt = ?", (self._attempt(key),))
            self.db.execute("DELETE FROM attempts WHERE key = ?", (key,))
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
            "SELECT a.step_id, a.key, r.data, s.key IS NOT NULL FROM record_rows r JOIN attempts a ON a.id = r.attempt "
            "LEFT JOIN steps s ON s.key = a.key WHERE r.rkey = ?"
        )
        args: tuple[str, ...] = (rkey,)
        if step_id is not None:
            sql, args = sql + " AND a.step_id = ?", (rkey, step_id)
        rows = self.db.execute(sql, args).fetchall()
        return [(sid, key, refs.resolve_one(self, key, rkey, unpack(data)), bool(done))
                for sid, key, data, done in rows]


def pack(data: str) -> str | bytes:
    """A record's JSON as stored: compressed when longer than PACK_OVER bytes and smaller so."""
    raw = data.encode()
    if len(raw) <= PACK_OVER:
        return data
    packed = _CODEC.compress(raw)
    return packed if len(packed) < len(raw) else data


def unpack(data: str | bytes) -> str:
    """A stored record's JSON text (a BLOB is its compressed form: zstd, or zlib from a version 3 store; one
    that does not inflate is damage)."""
    if not isinstance(data, bytes):
        return data
    try:
        if data[:4] == ZSTD_MAGIC:
            return _CODEC.decompress(data).decode()
        return zlib.decompress(data).decode()
    except (zstandard.ZstdError, zlib.error, UnicodeDecodeError) as exc:
        raise StoreDamaged(f"a stored record does not decompress ({exc}): run `dialc run SPEC --rebuild-store`") \
            from None


class _Codec(threading.local):
    """zstd (de)compressors of the current thread (they must not be shared between threads)."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()

    def compress(self, raw: bytes) -> bytes:
        return self.compressor.compress(raw)

    def decompress(self, data: bytes) -> bytes:
        return self.decompressor.decompress(data)


_CODEC = _Codec()  # each thread gets its own pair on first use


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

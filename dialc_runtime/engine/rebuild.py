"""A damaged store.sqlite → moved aside, and a new store holding every completed step whose output verifies.

`dialc run SPEC --rebuild-store`: what SQLite can still read of the old store is copied step by step; a
completed step is kept only if its records and files still match the digest recorded when it finished
(so nothing damaged is trusted), and every other step runs again. The old file stays beside the new one
(`store.sqlite.damaged-<time>`) for inspection; nothing is deleted.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dialc_runtime.engine.cache import verify
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.store import Completed, Store, completed_row

_SIDECARS = ("", "-wal", "-shm")  # SQLite's files of one database


@dataclass
class Rebuilt:
    """What a rebuild kept and what will run again."""

    aside: Path  # where the damaged store was moved
    kept: list[str] = field(default_factory=list)  # step ids whose outputs verified
    lost: list[str] = field(default_factory=list)  # step ids that run again

    def summary(self) -> str:
        return (f"store rebuilt: {len(self.kept)} completed step output(s) verified and kept, {len(self.lost)} "
                f"to recompute; the damaged store is kept as {self.aside}")


def rebuild_store(run_dir: Path) -> Rebuilt:
    """Move the store aside and copy into a new one every completed step whose output still verifies."""
    layout = RunLayout(Path(run_dir))
    aside = layout.store.with_name(f"{layout.store.name}.damaged-{datetime.now():%Y%m%d-%H%M%S}")
    for suffix in _SIDECARS:
        old = Path(f"{layout.store}{suffix}")
        if old.exists():
            os.replace(old, Path(f"{aside}{suffix}"))
    result = Rebuilt(aside)
    with Store(run_dir) as fresh:
        for done in _completed(aside):
            (result.kept if _copy(aside, fresh, done) else result.lost).append(done.step_id)
    return result


def _completed(path: Path) -> list[Completed]:
    """The completed steps the damaged store still lists (none when that table cannot be read)."""
    try:
        with closing(_connect(path)) as db:
            return [completed_row(row) for row in db.execute("SELECT * FROM steps").fetchall()]
    except (sqlite3.DatabaseError, ValueError):
        return []


def _copy(path: Path, fresh: Store, done: Completed) -> bool:
    """Copy one completed step's records; keep it only if its output digest still matches."""
    try:
        with closing(_connect(path)) as db:
            rows = db.execute("SELECT rkey, step_id, data FROM records WHERE step_key = ? ORDER BY rkey",
                              (done.key,)).fetchall()
            refs = _refs(db, done.key)
    except sqlite3.DatabaseError:
        return False
    with fresh.transaction():
        for rkey, step_id, data in rows:
            fresh.put(done.key, step_id, rkey, data, replace=True)
    if refs:
        fresh.set_refs(done.key, refs)  # records that refer to their input records (engine/refs.py)
    fresh.mark_completed(done)
    if verify(fresh, done.key):
        return True
    fresh.purge(done.key)
    return False


def _refs(db: sqlite3.Connection, key: str) -> dict[str, str]:
    """Input id → cache key of the inputs a step's records refer to (none in a store older than references)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refs'").fetchone():
        return {}
    return dict(db.execute("SELECT input_id, target FROM refs WHERE step_key = ?", (key,)).fetchall())


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise sqlite3.DatabaseError(f"{path} is missing")
    return sqlite3.connect(path, isolation_level=None)

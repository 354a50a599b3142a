"""A plan + its run directory → the cache entries no step of the plan refers to, listed and removed (`dialc clean`).

Every change of a spec leaves the outputs of the old cache keys behind (records in the store, completed-step
rows, `artifacts/<key>` folders), so a run directory only grows. Cleaning keeps every key the plan's steps
have now — complete outputs, and the records and resume state of a step that is under way — and removes the
rest, then VACUUMs the store so the file shrinks. It holds the run lock (engine/lock.py): it refuses while a
run is under way, and no run starts while it cleans. A run after a clean reuses everything it kept.
"""

from __future__ import annotations

import os
import re
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dialc_runtime.engine.layout import ATTEMPT_SUFFIX, RESUME_SUFFIX, RunLayout
from dialc_runtime.engine.lock import run_lock
from dialc_runtime.engine.outputs import refresh_outputs
from dialc_runtime.engine.registry import Registry, default_registry
from dialc_runtime.engine.store import Store
from dialc_runtime.errors import RunRefused

if TYPE_CHECKING:
    from dialc.plan import Plan

_KEY = re.compile(r"^[0-9a-f]{64}$")  # a cache key (sha256 hex): artifacts/ names anything else is left alone
_DATA_FILES = ("", "-wal")  # the database and its write-ahead log (-shm is an index of the log)


class CleanRefused(RunRefused):
    """The plan's cache keys cannot all be computed (a step's code fails to import): nothing is removed."""


@dataclass
class Entry:
    """One cache key no step of the plan refers to, and what it holds."""

    key: str
    step_id: str = ""  # the step that wrote it ('' when only files are left)
    completed: bool = False
    records: int = 0
    record_bytes: int = 0  # the records' JSON, as stored
    folders: list[Path] = field(default_factory=list)  # artifacts/<key>, <key>.attempt, <key>.resume
    folder_bytes: int = 0

    @property
    def bytes(self) -> int:
        return self.record_bytes + self.folder_bytes


@dataclass
class CleanReport:
    """What a clean removed (or, dry, would remove) and how the store's size changed."""

    run_dir: Path
    dry_run: bool
    entries: list[Entry] = field(default_factory=list)
    kept: int = 0  # cache keys of the plan found in the run directory
    store_before: int = 0  # bytes of store.sqlite with its WAL
    store_after: int = 0

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in self.entries)

    def lines(self) -> list[str]:
        """The terminal report: one line per entry, then the totals."""
        verb = "would remove" if self.dry_run else "removed"
        if not self.entries:
            return [f"nothing to clean in {self.run_dir}: every cache entry is used by the spec ({self.kept} kept)"]
        lines = [f"{verb} {len(self.entries)} cache entr{'y' if len(self.entries) == 1 else 'ies'} no step of the "
                 f"spec refers to ({human_bytes(self.bytes)}):"]
        for e in sorted(self.entries, key=lambda e: (e.step_id, e.key)):
            parts = [f"{e.records} records ({human_bytes(e.record_bytes)})" if e.records else "",
                     f"files {human_bytes(e.folder_bytes)}" if e.folders else "",
                     "" if e.completed else "incomplete"]
            lines.append(f"  {e.step_id or '(files only)'} {e.key[:12]}: {', '.join(p for p in parts if p)}")
        lines.append(f"kept {self.kept} cache entr{'y' if self.kept == 1 else 'ies'} the spec's steps use")
        if not self.dry_run:
            lines.append(f"store.sqlite: {human_bytes(self.store_before)} → {human_bytes(self.store_after)} "
                         "after VACUUM")
        return lines


def clean(plan: Plan, run_dir: Path, *, dry_run: bool = False, registry: Registry | None = None) -> CleanReport:
    """Remove (or, `dry_run`, list) every cache entry of `run_dir` that no step of `plan` refers to; under
    the run lock (RunLocked while a run holds it). The named outputs are re-pointed afterwards."""
    layout = RunLayout(Path(run_dir))
    report = CleanReport(layout.run_dir, dry_run)
    if not layout.store.is_file():
        return report  # nothing ran here: nothing to clean (and no run directory is created)
    registry = registry or default_registry()
    with run_lock(layout.run_dir) as ended_cleanly, Store(layout.run_dir, check=not ended_cleanly) as store:
        keep = plan_keys(plan, store, registry)
        report.entries = unreferenced(store, keep)
        report.kept = len(keep & stored_keys(store))
        report.store_before = store_size(layout)
        if dry_run:
            return report
        for entry in report.entries:
            store.purge(entry.key)  # its completion, records, files and resume state
        store.db.execute("VACUUM")
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        report.store_after = store_size(layout)
        refresh_outputs(plan, store, registry)  # no link may point at a removed folder
    return report


def plan_keys(plan: Plan, store: Store, registry: Registry) -> set[str]:
    """The cache key of every step of the plan whose inputs have a complete output (so it has a key now)."""
    from dialc_runtime.engine.executor import Resolver  # the executor imports the outputs module this one uses

    resolver = Resolver(plan, store, registry, check=False)
    for step in plan.steps:
        resolver.output(step.id)
    if resolver.errors:  # its key, and every key below it, unknown: what is current cannot be told apart
        step_id, why = next(iter(resolver.errors.items()))
        raise CleanRefused(f"cannot tell which cache entries {step_id} uses ({why}); nothing was removed")
    keys = {key for key in resolver.keys.values() if key}
    return keys | referenced(store, keys)


def referenced(store: Store, keys: set[str]) -> set[str]:
    """The outputs that records of `keys` refer to instead of copying them (engine/refs.py), transitively: a
    reused output may refer to an input's earlier key (same records, new code version), which must stay."""
    targets = getattr(store, "ref_targets", None)  # stores without references have nothing to follow
    if targets is None:
        return set()
    found: set[str] = set()
    todo = list(keys)
    while todo:
        for target in targets(todo.pop()).values():
            if target not in keys and target not in found:
                found.add(target)
                todo.append(target)
    return found


def stored_keys(store: Store) -> set[str]:
    """Every cache key the store or artifacts/ holds something of."""
    keys = {row[0] for row in store.db.execute("SELECT DISTINCT step_key FROM records")}
    keys |= {row[0] for row in store.db.execute("SELECT key FROM steps")}
    return keys | set(_folders(store.layout))


def unreferenced(store: Store, keep: set[str]) -> list[Entry]:
    """An Entry for every stored key not in `keep`, with its record count and sizes."""
    entries: dict[str, Entry] = {}
    sql = "SELECT step_key, MIN(step_id), COUNT(*), SUM(LENGTH(CAST(data AS BLOB))) FROM records GROUP BY step_key"
    for key, step_id, count, size in store.db.execute(sql):
        if key not in keep:
            entries[key] = Entry(key, step_id, records=int(count), record_bytes=int(size or 0))
    for key, step_id in store.db.execute("SELECT key, step_id FROM steps"):
        if key not in keep:
            entry = entries.setdefault(key, Entry(key, step_id))
            entry.completed = True
    for key, folders in _folders(store.layout).items():
        if key not in keep:
            entry = entries.setdefault(key, Entry(key))
            entry.folders = folders
            entry.folder_bytes = sum(tree_size(f) for f in folders)
    return list(entries.values())


def _folders(layout: RunLayout) -> dict[str, list[Path]]:
    """Cache key → its folders under artifacts/ (output, attempt, resume state)."""
    found: dict[str, list[Path]] = {}
    if not layout.artifacts.is_dir():
        return found
    for path in sorted(layout.artifacts.iterdir()):
        key = path.name.removesuffix(ATTEMPT_SUFFIX).removesuffix(RESUME_SUFFIX)
        if _KEY.match(key) and path.is_dir() and not path.is_symlink():
            found.setdefault(key, []).append(path)
    return found


def tree_size(root: Path) -> int:
    """Bytes of every file under root (links not followed)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with suppress(OSError):  # removed meanwhile
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def store_size(layout: RunLayout) -> int:
    """Bytes of store.sqlite and its WAL side files."""
    sizes = (Path(f"{layout.store}{suffix}") for suffix in _DATA_FILES)
    return sum(p.stat().st_size for p in sizes if p.is_file())


def human_bytes(n: int) -> str:
    """1536 → '1.5 KiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # unreachable

"""A run directory → an exclusive lock naming its holder's PID, and whether the last run ended cleanly.

Two `dialc run`s of one spec at once would write the same store and overwrite each other's results; the
second one is refused at once, naming the first one's PID. The lock file holds the holder's PID while a
run is under way and is emptied when it ends: a PID left in it means the last run did not close cleanly
(killed), so the store is checked (PRAGMA quick_check) before it is trusted. The lock is an advisory
`flock`, released by the kernel when its holder dies, so a stale file never blocks a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.errors import RunLocked

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; runs are not guarded there
    fcntl = None  # type: ignore[assignment]


@contextmanager
def run_lock(run_dir: Path) -> Iterator[bool]:
    """Hold the run directory's lock; yields True when the last run ended cleanly (or there was none)."""
    path = RunLayout(run_dir).lock
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        _acquire(fd, run_dir)
        clean = not os.pread(fd, 64, 0).strip()
        _write_pid(fd, str(os.getpid()))
        try:
            yield clean
        finally:
            _write_pid(fd, "")  # emptied: this run ended cleanly (an exception that escapes is not a crash)
    finally:
        os.close(fd)  # releases the lock


def holder_pid(run_dir: Path) -> str:
    """The PID written in the lock file ('' when none)."""
    try:
        return RunLayout(run_dir).lock.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def ended_cleanly(run_dir: Path) -> bool:
    """No PID left in the lock file: the last run closed its store normally (or none ran)."""
    return not holder_pid(run_dir)


def _acquire(fd: int, run_dir: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        raise RunLocked(f"another dialc run (PID {holder}) is using {run_dir}: wait for it to finish or stop it "
                        f"(kill {holder}); two runs at once would overwrite each other's results") from None


def _write_pid(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode("ascii"), 0)
    os.fsync(fd)

"""Ctrl-C during a run → the first stops it promptly and cleanly, a second exits at once.

The first SIGINT raises KeyboardInterrupt as usual (steps keep every finished record: the OpenAI backend
abandons requests in flight instead of waiting for their timeout), and arms the second: from then on
SIGINT ends the process immediately (exit 130), whatever the cleanup is waiting for. Committed records
are safe either way (SQLite WAL); the next run resumes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

EXIT_INTERRUPTED = 130


def _hard_exit(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"\ndialc: interrupted again: exiting now\n")
    os._exit(EXIT_INTERRUPTED)


def _first(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, _hard_exit)
    try:
        sys.stderr.write("\ndialc: interrupted: stopping (finished records are kept; Ctrl-C again to exit now)\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    raise KeyboardInterrupt


@contextmanager
def interrupts() -> Iterator[None]:
    """Within the block, Ctrl-C behaves as described above (main thread only; elsewhere a no-op). A block
    left normally restores the previous handler; one left by the interrupt keeps the hard exit armed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: Any = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:  # someone else handles Ctrl-C (a test runner, an embedder)
        yield
        return
    signal.signal(signal.SIGINT, _first)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is _first:  # no Ctrl-C came: it works as before again
            signal.signal(signal.SIGINT, previous)

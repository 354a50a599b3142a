"""A path a spec names → a file opened safely: regular files only, never blocking, read with a bound.

`/dev/zero`, a FIFO, a socket or a directory named as a spec, include, source or review file is refused with
a reason instead of being read until memory runs out (or waiting forever for a writer); a symlink loop is a
reason too, not a traceback. Callers wrap the reason in their own message (a diagnostic, a failed step).
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import BinaryIO, TextIO

from dialc.security import refused_read

MAX_DATA_BYTES = 64 * 1024 * 1024  # data files validate reads whole (larger ones are not read at validate time)


class UnreadableFile(OSError):
    """A path that cannot be read as a data or spec file; str() is the reason, with the path as given."""

    def __str__(self) -> str:
        return str(self.strerror)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """'a directory', 'a FIFO (named pipe)' … for what is not a regular file."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: Path, shown: str | None = None) -> BinaryIO:
    """Open a regular file for binary reading; refuse (UnreadableFile) anything else before reading a byte.

    O_NONBLOCK keeps open() from waiting for a FIFO's writer; the type is checked on the opened descriptor,
    so a path swapped after a check cannot slip through."""
    name = shown or str(path)
    refused = refused_read(path, name)
    if refused is not None:  # outside the project: not even opened
        raise UnreadableFile(refused.errno, str(refused.strerror))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UnreadableFile(errno.ENOENT, f"file not found: {name}") from None
    except OSError as exc:
        raise UnreadableFile(exc.errno, f"cannot read {name}: {_reason(exc)}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnreadableFile(errno.EINVAL, f"{name} is {kind_of(mode)}, not a regular file")
    return os.fdopen(fd, "rb")


def read_bounded(path: Path, limit: int, shown: str | None = None) -> bytes:
    """A regular file's bytes, refused (UnreadableFile) past `limit` bytes without reading more than limit + 1."""
    name = shown or str(path)
    with open_regular(path, name) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnreadableFile(errno.EFBIG, f"{name} is larger than {limit} bytes, the limit for this file")
    return data


def open_text(path: Path, limit: int) -> TextIO:
    """A regular file of at most `limit` bytes as UTF-8 text (a BOM skipped, newlines kept for csv), or
    UnreadableFile: what validate reads from a corpus to count it."""
    handle = open_regular(path)
    if os.fstat(handle.fileno()).st_size > limit:
        handle.close()
        raise UnreadableFile(errno.EFBIG, f"{path} is larger than {limit} bytes")
    return io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")


def read_text(path: Path, limit: int = MAX_DATA_BYTES) -> str:
    """A regular file of at most `limit` bytes as UTF-8 text (a BOM skipped); UnreadableFile or
    UnicodeDecodeError otherwise: what validate reads whole (test sets, reference answers)."""
    return read_bounded(path, limit).decode("utf-8-sig")


def regular_file_problem(path: Path, shown: str | None = None) -> str | None:
    """Why `path` is not a readable regular file (missing, a FIFO, a device, a loop …), or None when it is."""
    try:
        open_regular(path, shown).close()
    except UnreadableFile as exc:
        return str(exc)
    return None


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    return exc.strerror or type(exc).__name__

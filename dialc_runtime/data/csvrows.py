"""A CSV file → (first line, cells or CsvRowError) per record: a bad record never ends the reading.

csv.reader is fed one physical line at a time from a bounded binary reader, so each record is known by
the line it starts on (a quoted field may span lines), and:
* bytes that are not UTF-8 spoil only their record (`not valid UTF-8`), with the line and byte;
* a record longer than `max_row` bytes (a runaway field, or a stray quote that swallows the file) is an
  error; reading resumes on the line after the record's first line, so the rows after it are read;
* a record spanning several lines that the caller rejects (`check`) is taken for a stray quote: only its
  first line is an error, and its other lines are read again as rows of their own.
A UTF-8 byte-order mark is accepted. Memory is bounded by `max_row`, whatever the file holds.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from dialc.files import open_regular

MAX_ROW_BYTES = 1 << 24  # 16 MiB per record: long turns are fine, a runaway row is not
BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20  # bytes read at a time when skipping the rest of an over-long line
_HEAD = 1 << 16  # bytes of a bad record's first line read again to learn whose row it was

Check = Callable[[list[str]], str | None]  # a record's cells → why it is bad, or None


class CsvRowError(ValueError):
    """One bad record, at the line where it starts."""

    def __init__(self, line: int, reason: str, cells: list[str] | None = None) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason
        self.cells = cells  # what could be read of it (decoded with replacement characters), if anything


class _RowTooLong(Exception):
    """Raised from inside csv.reader's line source when a record outgrows its bound."""


class _Lines:
    """Binary lines → text for csv.reader, counting lines and the bytes of the record being read."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self.handle, self.limit = handle, limit
        self.line = 0  # physical lines consumed so far
        self.size = 0  # bytes of the current record
        self.bad: tuple[int, int] | None = None  # (line, byte) of the record's first undecodable byte

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.handle.readline(self.limit - self.size + 1)
        if not raw:
            raise StopIteration
        self.line += 1
        self.size += len(raw)
        if self.size > self.limit:
            if not raw.endswith(b"\n"):
                skip_line(self.handle)
            raise _RowTooLong
        if self.line == 1:
            raw = raw.removeprefix(BOM)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.bad is None:
                self.bad = (self.line, exc.start + 1)
            return raw.decode("utf-8", "replace")


def skip_line(handle: BinaryIO) -> None:
    """Read past the rest of the current line, a bounded chunk at a time."""
    while chunk := handle.readline(_CHUNK):
        if chunk.endswith(b"\n"):
            return


def read_csv_rows(path: Path, check: Check | None = None,
                  max_row: int = MAX_ROW_BYTES) -> Iterator[tuple[int, list[str] | CsvRowError]]:
    """(first line, cells or CsvRowError) for each non-empty record of `path`, header included."""
    csv.field_size_limit(max(csv.field_size_limit(), max_row))  # the bound is ours, per record
    with open_regular(Path(path)) as handle:
        yield from _records(handle, _Lines(handle, max_row), check or (lambda cells: None), max_row)


def _records(handle: BinaryIO, lines: _Lines, check: Check,
             max_row: int) -> Iterator[tuple[int, list[str] | CsvRowError]]:
    reader = csv.reader(lines)
    while True:
        start, offset = lines.line + 1, handle.tell()
        lines.size, lines.bad = 0, None
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (_RowTooLong, csv.Error) as exc:
            why = (f"row longer than {max_row} bytes (a runaway field or an unbalanced quote)"
                   if isinstance(exc, _RowTooLong) else f"CSV error: {exc}")
            yield start, CsvRowError(start, why, _resume(handle, lines, offset, start))
            continue
        if not cells:
            continue
        reason = _decode_problem(lines.bad, start) or check(cells)
        if reason is not None and lines.line > start:  # a bad record over several lines: a stray quote?
            yield start, CsvRowError(start, reason, _resume(handle, lines, offset, start))
        elif reason is not None:
            yield start, CsvRowError(start, reason, cells)
        else:
            yield start, cells


def _decode_problem(bad: tuple[int, int] | None, start: int) -> str | None:
    if bad is None:
        return None
    line, byte = bad
    where = f"line {line}, byte {byte}" if line != start else f"byte {byte}"
    return f"not valid UTF-8 at {where}"


def _resume(handle: BinaryIO, lines: _Lines, offset: int, start: int) -> list[str]:
    """Go back to the record's first line and past it (the lines after it are read as rows again); the
    cells of that line's head, so that the caller knows whose row it was (its id)."""
    handle.seek(offset)
    head = handle.readline(_HEAD)
    if not head.endswith(b"\n"):
        skip_line(handle)
    lines.line = start
    text = head.removeprefix(BOM).decode("utf-8", "replace").rstrip("\r\n")
    return next(csv.reader([text]), [])

"""A JSON-lines file → (line number, value) per non-blank line, or a JsonlError that says file:line.

The one JSON-lines reader of the runtime (dialogue sources, review files, evaluation suites, human
ratings). It reads bytes and splits on "\\n" only, so a U+2028 inside a JSON string stays in its
line; a UTF-8 byte-order mark and CRLF line ends are accepted. A bad line does not stop the
reading: it comes back as a JsonlError in place of its value, and the caller decides whether to
skip it or to fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BOM = b"\xef\xbb\xbf"


class JsonlError(ValueError):
    """One line that is not a JSON value: `path:line: reason (column N)`."""

    def __init__(self, path: Path, line: int, reason: str, column: int | None = None) -> None:
        self.path, self.line, self.column = path, line, column
        self.reason = reason if column is None else f"{reason} (column {column})"
        super().__init__(f"{path}:{line}: {self.reason}")


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed value or JsonlError) for each non-blank line of `path`."""
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(BOM)
            if raw.strip():
                yield number, parse_line(path, number, raw)


def parse_line(path: Path, number: int, raw: bytes) -> Any:
    """One line's JSON value, or the JsonlError saying why it has none."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")  # so an error's column is on this line
    except UnicodeDecodeError as exc:
        return JsonlError(path, number, f"not valid UTF-8 at byte {exc.start + 1}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return JsonlError(path, number, f"invalid JSON: {exc.msg}", exc.colno)

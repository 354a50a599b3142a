"""A JSON-lines file → (line number, value) per non-blank line, or a JsonlError that says file:line.

The one JSON-lines reader of the runtime (dialogue sources, review files, evaluation suites, human
ratings). It reads bytes and splits on "\\n" only, so a U+2028 inside a JSON string stays in its
line; a UTF-8 byte-order mark and CRLF line ends are accepted. A bad line does not stop the
reading: it comes back as a JsonlError in place of its value, and the caller decides whether to
skip it or to fail. Limits (README, "Limits and safety"): a line is read with a bound (MAX_LINE_BYTES),
values nest at most MAX_DEPTH deep, and a string may not hold a lone surrogate (`"\\ud800"`, which is
no Unicode text): such a line is an error of its own, never an exception that ends the reading.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dialc.files import open_regular

BOM = b"\xef\xbb\xbf"
MAX_LINE_BYTES = 1 << 24  # 16 MiB: a longer line is an error (read in bounded chunks, never whole)
MAX_DEPTH = 64  # arrays/objects nested deeper than this are an error (deeper ones overflow parsers)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SKIP_CHUNK = 1 << 20


class JsonlError(ValueError):
    """One line that is not a JSON value: `path:line: reason (column N)`."""

    def __init__(self, path: Path, line: int, reason: str, column: int | None = None) -> None:
        self.path, self.line, self.column = path, line, column
        self.reason = reason if column is None else f"{reason} (column {column})"
        super().__init__(f"{path}:{line}: {self.reason}")


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed value or JsonlError) for each non-blank line of `path`."""
    with open_regular(Path(path)) as handle:
        number = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                _skip_line(handle)
                yield number, JsonlError(path, number, f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if number == 1:
                raw = raw.removeprefix(BOM)
            if raw.strip():
                yield number, parse_line(path, number, raw)


def _skip_line(handle: Any) -> None:
    """Read past the rest of an over-long line, a bounded chunk at a time."""
    while chunk := handle.readline(_SKIP_CHUNK):
        if chunk.endswith(b"\n"):
            return


def parse_line(path: Path, number: int, raw: bytes) -> Any:
    """One line's JSON value, or the JsonlError saying why it has none."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")  # so an error's column is on this line
    except UnicodeDecodeError as exc:
        return JsonlError(path, number, f"not valid UTF-8 at byte {exc.start + 1}")
    try:
        value = json.loads(text)
    except RecursionError:
        return JsonlError(path, number, f"values nested deeper than {MAX_DEPTH} levels")
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Unterminated string"):  # json names where the string starts, not the cut
            reason = (f"invalid JSON: the line ends inside a string that starts at column {exc.colno} "
                      "(cut short, or a raw line break inside a string)")
            return JsonlError(path, number, reason, len(text) + 1)
        return JsonlError(path, number, f"invalid JSON: {exc.msg}", exc.colno)
    return _checked(path, number, raw, value)


def _checked(path: Path, number: int, raw: bytes, value: Any) -> Any:
    """The value, or an error when it nests too deep or holds a lone surrogate (cheap prechecks first)."""
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        return JsonlError(path, number, f"values nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start:exc.end].encode("unicode_escape").decode()
            return JsonlError(path, number, f"a string holds a lone surrogate ({bad}), which is not Unicode text")
    return value


def _depth(value: Any) -> int:
    """How deep arrays and objects nest (iterative: a deep value must not overflow the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest

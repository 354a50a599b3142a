"""dialc spans (1-based lines and columns, in characters) ⇄ LSP positions (0-based, in the client's code units);
file paths ⇄ document URIs."""

from __future__ import annotations

import re
from bisect import bisect_right
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import PositionCodec

from dialc.frontend import resolved
from dialc.source import Span

_UNSAFE = re.compile(r"[^\w.-]+")


class Lines:
    """One text's lines (split at "\\n" only, as the parser counts them) and the client's position encoding."""

    def __init__(self, text: str, codec: PositionCodec) -> None:
        self.text = text
        self.codec = codec
        raw = text.split("\n")
        self.lines = [line.removesuffix("\r") for line in raw]
        self.starts = [0]
        for line in raw[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def position(self, line: int, col: int) -> types.Position:
        """1-based (line, column in characters) → an LSP position (past the end: the end of the text)."""
        index = line - 1
        if index >= len(self.lines):
            return self.end()
        text = self.lines[max(0, index)]
        return types.Position(line=max(0, index), character=self.codec.client_num_units(text[: max(0, col - 1)]))

    def range(self, span: Span | None) -> types.Range:
        if span is None:
            return types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
        return types.Range(start=self.position(span.line, span.col), end=self.position(span.end_line, span.end_col))

    def end(self) -> types.Position:
        last = len(self.lines) - 1
        return types.Position(line=last, character=self.codec.client_num_units(self.lines[last]))

    def offset(self, position: types.Position) -> int:
        """An LSP position → a character offset into the text (clamped to it)."""
        if position.line >= len(self.lines):
            return len(self.text)
        line = max(0, position.line)
        copy = types.Position(line=line, character=position.character)  # the codec may change what it is given
        column = self.codec.position_from_client_units(self.lines, copy).character
        return self.starts[line] + min(column, len(self.lines[line]))

    def point(self, offset: int) -> tuple[int, int]:
        """A character offset → 1-based (line, column), as in spans."""
        index = bisect_right(self.starts, offset) - 1
        return index + 1, offset - self.starts[index] + 1


def path_of(uri: str) -> Path:
    """The resolved file path of a document URI; a document that is no file (untitled:) gets a name in the
    working directory, so that it is checked like a new spec there."""
    fs_path = to_fs_path(uri)
    if fs_path is None:
        name = _UNSAFE.sub("-", uri.rsplit("/", 1)[-1].rsplit(":", 1)[-1]) or "untitled"
        return resolved(Path.cwd() / f"{name}.dial")
    return resolved(Path(fs_path))


def uri_of(path: Path) -> str:
    return str(from_fs_path(str(path)))

"""Source text → lines and positions: what diagnostics need to point at a span."""

from __future__ import annotations

import errno
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from dialc.files import UnreadableFile, read_bounded
from dialc.model_api import ModelAPI
from dialc.security import refused_read

MAX_SOURCE_BYTES = 8 * 1024 * 1024  # larger specs are refused with a diagnostic, not parsed


@dataclass(frozen=True, slots=True, kw_only=True)
class Span(ModelAPI):
    """Where a construct sits in its source file (1-based line and column, end exclusive)."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @classmethod
    def of_token(cls, file: str, tok: Any) -> Span:
        """A lexer token's span (Lark's, or its standalone parser's: line, column, end_line, end_column),
        across lines for a multi-line string."""
        return cls(file=file, line=tok.line or 1, col=tok.column or 1,
                   end_line=tok.end_line or tok.line or 1, end_col=tok.end_column or tok.column or 1)


@dataclass(frozen=True)
class Source:
    """One spec file's text and the name it is reported under."""

    name: str  # as given on the command line / in an include, shown in diagnostics
    text: str

    @cached_property
    def lines(self) -> list[str]:
        # only "\n" ends a line, as for the parser (splitlines would also split at \f, U+2028 …)
        return [line.removesuffix("\r") for line in self.text.split("\n")]

    def line(self, number: int) -> str:
        """The 1-based line `number`, or '' past the end."""
        lines = self.lines
        return lines[number - 1] if 0 < number <= len(lines) else ""

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = self.text.count("\n", 0, offset) + 1
        start = self.text.rfind("\n", 0, offset) + 1
        return line, offset - start + 1


class SourceError(Exception):
    """A file that cannot be read as a spec (missing, binary, too big, not UTF-8)."""


_UNSAVED: ContextVar[Mapping[Path, str] | None] = ContextVar("dialc_unsaved_texts", default=None)


@contextmanager
def unsaved_texts(texts: Mapping[Path, str]) -> Iterator[None]:
    """Within the block, read_source gives these texts (an editor's open buffers, keyed by resolved absolute
    path) instead of the files' contents on disk (`dialc lsp`)."""
    token = _UNSAVED.set(texts)
    try:
        yield
    finally:
        _UNSAVED.reset(token)


def _unsaved_source(path: Path, shown: str, text: str) -> Source:
    """An open buffer read as a file would be: the same policy, size bound and refusals (a BOM is kept: the
    parser skips it, and columns stay those of the editor's text)."""
    refused = refused_read(path, shown)
    if refused is not None:
        raise SourceError(str(refused.strerror))
    if len(text) > MAX_SOURCE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise SourceError(f"{shown} is larger than {MAX_SOURCE_BYTES} bytes; specs are limited to {MAX_SOURCE_BYTES}")
    if "\x00" in text:
        raise SourceError(f"{shown} looks binary (contains NUL bytes), not a .dial spec")
    return Source(shown, text)


def read_source(path: Path, name: str | None = None) -> Source:
    """Read a spec file as UTF-8, refusing what cannot be a spec with a clear reason."""
    shown = name or str(path)
    unsaved = _UNSAVED.get()
    if unsaved is not None and path in unsaved:
        return _unsaved_source(path, shown, unsaved[path])
    try:  # a regular file only (not /dev/zero, a FIFO or a directory), read with a bound
        data = read_bounded(path, MAX_SOURCE_BYTES, shown)
    except UnreadableFile as exc:
        if exc.errno == errno.EFBIG:
            raise SourceError(f"{shown} is larger than {MAX_SOURCE_BYTES} bytes; specs are limited to "
                              f"{MAX_SOURCE_BYTES}") from None
        if exc.errno == errno.EINVAL and path.is_dir():
            raise SourceError(f"is a directory, not a spec file: {shown}") from None
        raise SourceError(str(exc)) from None
    if b"\x00" in data:
        raise SourceError(f"{shown} looks binary (contains NUL bytes), not a .dial spec")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(f"{shown}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})") from exc
    return Source(shown, text)

"""A spec that does not parse → the module of its declarations that do, positions kept.

The parser stops at the first syntax error, but while one declaration is being typed the others are still
worth knowing (for completion of their names, the outline, go-to-definition). The top-level declaration
holding the error is blanked out (every character but newlines becomes a space, so every other span stays
where it is) and the text parsed again, a few times at most.
"""

from __future__ import annotations

from dialc import syntax as ast
from dialc.diagnostics import Diagnostics
from dialc.frontend import parse_text
from dialc.lsp.context import TOKEN
from dialc.source import Source

ATTEMPTS = 4  # broken declarations blanked out at most


def salvage(text: str, name: str) -> ast.Module | None:
    """The module of `text` without its broken top-level declarations, or None when nothing parses."""
    chunks = top_level_chunks(text)
    for _ in range(ATTEMPTS + 1):
        diags = Diagnostics()
        source = Source(name, text)
        module = parse_text(source, diags)
        if module is not None and not diags.has_errors():
            return module
        error = next((d.span for d in diags.items if d.span is not None and d.severity == "error"), None)
        if error is None:
            return None
        offset = _offset(text, error.line, error.col)
        broken = next((c for c in chunks if c[0] <= offset < c[1]), None)
        broken = broken or next((c for c in reversed(chunks) if c[0] <= offset), None)
        if broken is None:
            return None
        chunks.remove(broken)
        text = _blank(text, *broken)
    return None


def top_level_chunks(text: str) -> list[tuple[int, int]]:
    """[start, end) of each top-level declaration or include (an unclosed one runs to the end)."""
    chunks: list[tuple[int, int]] = []
    depth, start, include = 0, None, False
    for match in TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind in ("ws", "comment"):
            continue
        if start is None:
            start, include = match.start(), value == "include"
        if kind == "op" and value in "{[(":
            depth += 1
        elif kind == "op" and value in "}])":
            depth = max(0, depth - 1)
            if depth == 0 and value == "}":
                chunks.append((start, match.end()))
                start = None
        elif include and depth == 0 and kind in ("string", "long"):
            chunks.append((start, match.end()))
            start = None
    if start is not None:
        chunks.append((start, len(text)))
    return chunks


def _offset(text: str, line: int, col: int) -> int:
    offset = 0
    for _ in range(line - 1):
        found = text.find("\n", offset)
        if found < 0:
            return len(text)
        offset = found + 1
    return offset + col - 1


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + "".join(c if c == "\n" else " " for c in text[start:end]) + text[end:]

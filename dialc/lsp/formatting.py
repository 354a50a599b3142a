"""A document's text → its canonical form, by the formatter `dialc fmt` uses (None while it does not parse)."""

from __future__ import annotations

from dialc.diagnostics import Diagnostics
from dialc.formatter import format_module
from dialc.frontend import parse_text
from dialc.source import Source


def formatted(text: str, name: str) -> str | None:
    """The text `dialc fmt` would print for this document, or None when it has a syntax error."""
    text = text.removeprefix("\ufeff")  # as `dialc fmt` reads a file (the formatter places comments without it)
    diags = Diagnostics()
    module = parse_text(Source(name, text), diags)
    if module is None or diags.has_errors():
        return None
    return format_module(module, text)

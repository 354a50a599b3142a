"""dialc/grammar/dial.lark → Lark parsers (the only module that knows where the grammar file lives)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import Lark

GRAMMAR_PATH = Path(__file__).resolve().with_name("dial.lark")


def grammar_text() -> str:
    return GRAMMAR_PATH.read_text(encoding="utf-8")


@lru_cache(maxsize=4)
def parser(start: str = "start") -> Lark:
    """The LALR parser with positions on; `start` may be 'value' for --set overrides."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        start=start,
        propagate_positions=True,
        maybe_placeholders=False,
        cache=False,
    )


@lru_cache(maxsize=1)
def token_lexer() -> Lark:
    """A context-free lexer over the same terminals, used to explain syntax errors (brace matching)."""
    return Lark(grammar_text(), parser="lalr", lexer="basic", propagate_positions=True)

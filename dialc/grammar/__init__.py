"""dialc/grammar/dial.lark → the LALR parser (the only module that knows where the grammar and its parser live)."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    from lark import Lark, Token

GRAMMAR_PATH = Path(__file__).resolve().with_name("dial.lark")
# the options of the one parser; a change here, like a grammar change, needs `python -m dialc.grammar.build`
OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "start": ["start", "value"],  # a whole file; one value, for `--set KIND.NAME.FIELD=VALUE`
    "propagate_positions": True,
    "maybe_placeholders": False,
}
_collecting = threading.local()  # the list comments go to while a parse collects them


def grammar_text() -> str:
    return GRAMMAR_PATH.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def runtime() -> ModuleType:
    """The standalone parser module: the generated one when current, else one generated now from the grammar.

    Lark's runtime classes (Token, Tree, Transformer, the errors) come from this module too, so
    that the parser and the code inspecting its output agree on them."""
    try:
        generated: ModuleType | None = importlib.import_module("dialc.grammar._dial_parser")
    except ImportError:
        generated = None
    if generated is not None and is_current(generated):
        return generated
    from dialc.grammar.build import load_generated  # the grammar was edited: slow, but never stale

    return load_generated(grammar_text())


def is_current(generated: ModuleType) -> bool:
    """Whether a generated parser module was built from this grammar text with these options."""
    return bool(getattr(generated, "GRAMMAR", None) == grammar_text()
                and getattr(generated, "PARSER_OPTIONS", None) == OPTIONS)


@lru_cache(maxsize=1)
def parser() -> Lark:
    """The LALR parser building parse trees with positions; parse(text, start="value") reads one value (--set)."""
    return new_parser()


def new_parser() -> Lark:
    """A fresh parser (its callbacks may be replaced, see reduce.py); comments go to `collect_comments`."""
    return runtime().Lark_StandAlone(lexer_callbacks={"COMMENT": _on_comment})  # type: ignore[no-any-return]


def token_lexer() -> Lark:
    """`.lex(text)`: a context-free lexer over the same terminals, used to explain syntax errors."""
    return parser()


@contextmanager
def collect_comments() -> Iterator[list[Token]]:
    """While open, every comment the parser lexes (in this thread) is appended to the yielded list."""
    found: list[Token] = []
    previous = getattr(_collecting, "sink", None)
    _collecting.sink = found
    try:
        yield found
    finally:
        _collecting.sink = previous


def _on_comment(token: Token) -> Token:
    # %ignore'd tokens still reach lexer callbacks: one lexing pass yields the tree and the comments
    sink = getattr(_collecting, "sink", None)
    if sink is not None:
        sink.append(token)
    return token

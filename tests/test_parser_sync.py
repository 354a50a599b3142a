"""dial.lark → the generated standalone parser and the direct AST builder: current, and the same results as Lark."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark, Token

from dialc.diagnostics import Diagnostics
from dialc.grammar import OPTIONS, grammar_text, is_current, parser, runtime
from dialc.grammar.build import generate, load_generated
from dialc.parser import parse_source
from dialc.source import Source
from dialc.transformer import parse_to_ast, to_ast

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILES = sorted([*ROOT.glob("specs/**/*.dial"), *ROOT.glob("tests/specs/**/*.dial"),
                     *ROOT.glob("tests/diagnostics/**/*.dial")])
EXPRESSIONS = [  # parentheses move an inlined rule's extent (Lark's "container" positions)
    "keep when (score >= 0.6)",
    "keep when (score >= 0.6) and (valid >= 1 or not (helpful < 2))",
    "expect ((kept_rate >= 0.5))",
    "keep when not not x == \"a\" or count(y, z = 2) > 1 and a.b.c != -3",
    "expect mean(helpful) >= 0.3 and (a)",
]
VALUES = ['[1, 2,]', '{a: 1, "b c": [x, y], """long""": 2}', "f(1, k = v, [])", "a * b * c", "1..5", "block { x = 1 }",
          "[[], {}, f()]", "enum_like(a, b,)"]
BROKEN = ["task t { x = }", "task t {", "task t { x = [1, 2 }", "}", "task t { keep when (a >= }", 'x "unterminated',
          "task { a: int [1..] }", "pipeline p { seed = 1 } task t { x = 1 y }"]


@lru_cache(maxsize=1)
def fresh_lark() -> Lark:
    """A parser built by Lark itself from dial.lark, with the options the generated one records."""
    return Lark(grammar_text(), **OPTIONS)


def positions(tree: Any) -> list[tuple[Any, ...]]:
    """Every subtree and token of a parse tree with its position, in order."""
    out: list[tuple[Any, ...]] = []
    for sub in tree.iter_subtrees_topdown():
        meta = sub.meta
        out.append((sub.data, getattr(meta, "line", None), getattr(meta, "column", None),
                    getattr(meta, "end_line", None), getattr(meta, "end_column", None)))
        out += [(t.type, str(t), t.line, t.column, t.end_line, t.end_column) for t in sub.children
                if isinstance(t, runtime().Token | Token)]
    return out


def spec_text(member: str) -> str:
    return f"pipeline p {{ seed = 1 }}\nquality q {{\n  {member}\n}}\ntask t {{ x = {VALUES[0]} }}\n"


def both_asts(text: str) -> tuple[Any, Any]:
    """The AST built directly by the parser's reduce callbacks, and the one built from the parse tree."""
    diags = Diagnostics()
    direct = parse_to_ast(Source("t.dial", text), diags)
    tree, comments = parse_source(Source("t.dial", text), diags)
    via_tree = to_ast(tree, "t.dial", comments, Diagnostics()) if tree is not None else None
    return direct, via_tree


def test_generated_parser_is_current() -> None:
    assert is_current(runtime()), "dialc/grammar/dial.lark changed: run `python -m dialc.grammar.build`"


def outcome(lark: Any, text: str) -> tuple[Any, ...]:
    """The tree's positions, or the error's kind, place and expected terminals."""
    try:
        return ("parsed", positions(lark.parse(text, start="start")))
    except Exception as exc:  # noqa: BLE001 - comparing what each parser raises
        return ("failed", type(exc).__name__, getattr(exc, "line", None), getattr(exc, "column", None),
                sorted(getattr(exc, "expected", None) or []))


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_trees_as_lark(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert outcome(parser(), text) == outcome(fresh_lark(), text)


@pytest.mark.parametrize("text", [*map(spec_text, EXPRESSIONS), *BROKEN])
def test_same_results_as_lark_on_expressions_and_errors(text: str) -> None:
    assert outcome(parser(), text) == outcome(fresh_lark(), text)


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_direct_build_equals_tree_build(path: Path) -> None:
    direct, via_tree = both_asts(path.read_text(encoding="utf-8"))
    assert direct == via_tree


@pytest.mark.parametrize("text", [*map(spec_text, EXPRESSIONS), *(f"task t {{ x = {v} }}" for v in VALUES)])
def test_direct_build_keeps_positions_of_parenthesized_expressions(text: str) -> None:
    direct, via_tree = both_asts(text)
    assert direct is not None and direct == via_tree


atoms = st.sampled_from(["1", "-2.5e3", '"s"', '"""l\n"""', "n", "f()", "f(a, k = 1)", "1..2", "[]", "{}"])
values = st.recursive(atoms, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.lists(inner, min_size=2, max_size=3).map(" * ".join),
    st.lists(st.tuples(st.sampled_from(["a", '"b"']), inner), max_size=2).map(
        lambda ps: "{" + ", ".join(f"{k}: {v}" for k, v in ps) + "}"),
    inner.map(lambda v: "blk { x = " + v + " }"),
), max_leaves=8)
operands = st.sampled_from(["score", "a.b", "1", '"x"', "mean(h)"])
expressions = st.recursive(st.tuples(operands, st.sampled_from([">=", "==", "<"]), operands).map(" ".join),
                           lambda inner: st.one_of(
                               st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join),
                               inner.map(lambda e: f"({e})"), inner.map(lambda e: f"not {e}")), max_leaves=6)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, expr=expressions, gap=st.sampled_from([" ", "\n  ", "  // c\n  "]))
def test_direct_build_equals_tree_build_generated(value: str, expr: str, gap: str) -> None:
    text = f"pipeline p {{ seed = 1 }}\ntask t {{{gap}x = {value}{gap}y: int? [0..9] (max 3){gap}}}\n" \
           f"quality q {{{gap}keep when {expr}{gap}expect {expr}\n}}\n"
    direct, via_tree = both_asts(text)
    assert direct is not None and direct == via_tree


def test_stale_parser_is_regenerated_in_memory() -> None:
    """An edited grammar is never parsed with old tables: the module is generated again, from the new text."""
    edited = grammar_text() + "\n// an edit\n"
    module = load_generated(edited)
    assert edited == module.GRAMMAR and module.PARSER_OPTIONS == OPTIONS
    tree = module.Lark_StandAlone().parse("pipeline p { seed = 1 }", start="start")
    assert isinstance(tree, module.Tree) and tree.children[0].data == "decl"


def test_generate_marks_the_grammar_it_was_built_from() -> None:
    code = generate(grammar_text())
    assert code.startswith('"""') and "GRAMMAR = " in code and "import regex" not in code

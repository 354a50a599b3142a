"""dialc.parser: source text → lark tree with positions and comments, or syntax diagnostics (never exceptions)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialc.diagnostics import Diagnostic, Diagnostics
from dialc.frontend import parse_text
from dialc.parser import MAX_DEPTH, MAX_OPERATORS, parse_source
from dialc.source import Source
from dialc.syntax import Assign, Str

SPEC = """pipeline p { seed = 4 }
// a comment on its own line
task 名前 { 説明 = "données ✓"  # a trailing comment
  x = \"\"\"
    first
      indented
    \"\"\" }
"""


def parse(text: str) -> tuple[Any, list[Any], Diagnostics]:
    """(tree or None, comment tokens, diagnostics); trees and tokens are Lark's (or its standalone parser's)."""
    diags = Diagnostics()
    tree, comments = parse_source(Source("t.dial", text), diags)
    return tree, comments, diags


def only_error(text: str) -> Diagnostic:
    """The one diagnostic a broken spec gets (the parser stops at the first syntax error)."""
    tree, _, diags = parse(text)
    assert tree is None
    assert [d.code for d in diags.items] == ["syntax"], diags.items
    return diags.items[0]


def where(diag: Diagnostic) -> tuple[int, int, int, int]:
    assert diag.span is not None
    return diag.span.line, diag.span.col, diag.span.end_line, diag.span.end_col


def string_values(text: str) -> list[str]:
    """The decoded value of every `field = "string"` in a spec (parser + transformer)."""
    diags = Diagnostics()
    module = parse_text(Source("t.dial", text), diags)
    assert module is not None and not diags.errors, diags.items
    return [m.value.value for d in module.decls for m in d.body if isinstance(m, Assign) and isinstance(m.value, Str)]


# ---- positions ----------------------------------------------------------------------------------------------------
def test_declarations_carry_1_based_positions_counted_in_characters() -> None:
    tree, _, diags = parse(SPEC)
    assert tree is not None and not diags.items
    spans = [(d.meta.line, d.meta.column, d.meta.end_line, d.meta.end_column) for d in tree.find_data("decl")]
    assert spans == [(1, 1, 1, 24), (3, 1, 7, 10)]  # the second ends after the multi-line string's '}'
    fields = [a.children[0] for a in tree.find_data("assign")]
    names = {str(f): (f.line, f.column) for f in fields}
    # columns count characters, not UTF-8 bytes: '説明' follows 'task 名前 { '
    assert names == {"seed": (1, 14), "説明": (3, 11), "x": (4, 3)}


def test_crlf_line_endings_keep_line_numbers() -> None:
    diag = only_error("task a {\r\n  x = 1\r\n  y = \r\n}")
    assert where(diag)[:2] == (4, 1)


# ---- comments -----------------------------------------------------------------------------------------------------
def test_comments_of_both_styles_are_returned_with_positions() -> None:
    _, comments, _ = parse(SPEC)
    assert [(str(c), c.line, c.column) for c in comments] == [
        ("// a comment on its own line", 2, 1),
        ("# a trailing comment", 3, 29),
    ]


def test_comment_markers_inside_strings_are_text() -> None:
    _, comments, _ = parse('task a { url = "http://x.org/#top" }  // real\n')
    assert [str(c) for c in comments] == ["// real"]
    assert string_values('task a { url = "http://x.org/#top" }') == ["http://x.org/#top"]


# ---- strings ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"say \"hi\""', 'say "hi"'),
        (r'"a\nb\tc\\d"', "a\nb\tc\\d"),
        (r'"\u00e9\U0001F600"', "é😀"),
        ('"données ✓ 名前"', "données ✓ 名前"),
        ('"""\n    first\n      indented\n    """', "first\n  indented"),  # dedented like a docstring
        ('"""with "quotes" and ""two"" inside"""', 'with "quotes" and ""two"" inside'),
    ],
)
def test_strings_escapes_and_multi_line_text(literal: str, value: str) -> None:
    assert string_values(f"task a {{ x = {literal} }}") == [value]


def test_a_plain_string_may_not_span_lines() -> None:
    diag = only_error('task a {\n  x = 1\n  y = "two\n}')
    assert diag.message.startswith("unterminated string")
    assert '"""' in diag.message  # says how to write multi-line text
    assert where(diag)[:2] == (3, 7)


def test_invalid_escape_is_a_diagnostic_not_a_crash() -> None:
    diags = Diagnostics()
    parse_text(Source("t.dial", r'task a { x = "\q" }'), diags)
    assert [(d.code, d.message) for d in diags.errors] == [("bad-string", "invalid escape sequence '\\q'")]


def test_unicode_names_and_a_byte_order_mark_parse() -> None:
    tree, _, diags = parse('\ufefftâche données { 名前 = 1 }')
    assert tree is not None and not diags.items


# ---- messages for common mistakes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("task a { x 1 }", "expected '=' after field name 'x', got number 1", (1, 12)),
        ("task a { x = }", "expected a value after '='", (1, 14)),
        ("task a { x = [1, 2 }", "expected ',' or ']', got '}'", (1, 20)),
        ("task a { x = 1 } }", "unmatched '}': no block is open here", (1, 18)),
        ("x = 1", "'x = …' is a field: fields go inside a declaration's { … } block", (1, 3)),
        ("task a ( x = 1 )", "expected '{' after 'a' to start a block, got '('", (1, 8)),
        ("task a { x = 1, y = 2 }", "expected a field, a declaration or '}', got ','", (1, 15)),
        ('task a { x = "a" "b" }', "expected a field, a declaration or '}', got a string", (1, 18)),
        ("task a { x = 1 @ }", "unexpected character '@'", (1, 16)),
        ("task a { x = \x01 }", "unexpected character U+0001", (1, 14)),
        ("task a { x = 1 } /* c */", "unexpected character '/'", (1, 18)),
        ("include", "unexpected end of file, expected a string", (1, 8)),
    ],
)
def test_common_mistakes_get_messages_in_the_users_words(text: str, message: str, position: tuple[int, int]) -> None:
    diag = only_error(text)
    assert diag.message.startswith(message), diag.message
    assert where(diag)[:2] == position


def test_an_unclosed_block_points_at_its_opening_brace() -> None:
    diag = only_error("task a { x = 1 }\ntask b {\n  y = 2\n")
    assert diag.message == "unexpected end of file: a '{' block is not closed"
    assert where(diag)[:2] == (3, 8)  # just after the last line with text
    (note,) = diag.notes
    assert note.message == "the block opened here"
    assert note.span is not None and (note.span.line, note.span.col) == (2, 8)


def test_an_error_span_covers_the_offending_token() -> None:
    diag = only_error("task a { x = 1 name2 = }")
    assert where(diag) == (1, 24, 1, 25)
    diag = only_error("task a { x 12345 }")
    assert where(diag) == (1, 12, 1, 17)


def test_an_error_span_on_a_multi_line_string_ends_where_the_string_ends() -> None:
    diag = only_error('task a { x = 1 """a\nbbbbbbbb""" }')
    assert where(diag) == (1, 16, 2, 12)


# ---- resource limits ----------------------------------------------------------------------------------------------
def test_absurd_nesting_is_refused_before_the_parser_recurses() -> None:
    # the block's '{' is one level, so MAX_DEPTH brackets inside it cross the limit at the last one
    diag = only_error("task a { x = " + "[" * MAX_DEPTH)
    assert diag.message == f"nesting deeper than {MAX_DEPTH} levels"
    assert where(diag)[:2] == (1, 13 + MAX_DEPTH)
    assert "nesting" not in only_error("task a { x = " + "[" * (MAX_DEPTH - 1)).message  # at the limit: parsed


def test_too_many_operators_are_refused_at_the_first_one_over() -> None:
    rule = " and ".join(["x > 1"] * (MAX_OPERATORS + 2))
    diag = only_error(f"quality {{ keep when {rule} }}")
    assert diag.message.startswith(f"more than {MAX_OPERATORS} and/or/not operators")


def test_operator_words_in_strings_and_comments_do_not_count() -> None:
    words = " and " * (MAX_OPERATORS + 5)
    tree, _, diags = parse(f'task a {{ x = "{words}" }} // {words}\n')
    assert tree is not None and not diags.items


# ---- never an exception -------------------------------------------------------------------------------------------
FRAGMENTS = ["task", "a", "{", "}", "[", "]", "(", ")", "=", ":", ",", "..", "*", "?", '"', '"""', "keep", "when",
             "expect", "and", "not", ">=", "1", "-2.5e3", "1_000", "include", "//", "#", "\n", " ", "é", "名前", "\\"]
specs = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(" ".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs)
def test_any_text_gives_a_tree_or_a_located_diagnostic_never_an_exception(text: str) -> None:
    tree, _, diags = parse(text)
    source = Source("t.dial", text)
    if tree is not None:
        assert not diags.errors
        return
    assert diags.errors, "a failed parse must say why"
    for diag in diags.errors:
        assert diag.code == "syntax" and diag.message
        line, col, end_line, end_col = where(diag)
        assert 1 <= line <= len(source.lines) and 1 <= col <= len(source.line(line)) + 1
        assert (end_line, end_col) > (line, col)

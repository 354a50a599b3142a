"""Source → lark.Tree and comments; syntax errors become diagnostics in the user's words."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from dialc.diagnostics import Diagnostics, Note
from dialc.grammar import collect_comments, parser, token_lexer
from dialc.grammar.api import (
    LarkError,
    Token,
    Tree,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from dialc.source import Source, Span

# terminal name → how a user would say it
TOKEN_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": "a string",
    "NUMBER": "a number",
    "CMP": "a comparison operator",
    "$END": "end of file",
    "OPTIONAL": "'?'",
}
MAX_DEPTH = 200  # deeper nesting than this is refused before Lark's recursion would overflow
MAX_OPERATORS = 200  # and/or/not in one file: each nests the expression tree one level deeper
_OPERATOR_WORD = re.compile(r"\b(and|or|not)\b")
_BRACKET = re.compile(r"[{}\[\]()]")
T = TypeVar("T")


def parse_source(source: Source, diags: Diagnostics, start: str = "start") -> tuple[Tree[Token] | None, list[Token]]:
    """Parse one file to a parse tree; on a syntax error report it and return (None, comments)."""
    return parse_guarded(source, diags, lambda text: parser().parse(text, start=start))


def parse_guarded(source: Source, diags: Diagnostics, parse: Callable[[str], T]) -> tuple[T | None, list[Token]]:
    """Run `parse` on the file's text with its comments collected; syntax errors become diagnostics (None)."""
    diags.add_source(source)
    if _too_deep(source, diags) or _too_many_operators(source, diags):
        return None, []
    try:
        # the lexer hands comments to a callback as it goes: one pass, no second lexing for the formatter
        with collect_comments() as comments:
            result = parse(source.text)
    except UnexpectedInput as exc:
        _report_syntax(source, exc, diags)
        return None, []
    except (LarkError, RecursionError) as exc:  # defensive: any other parser failure is the user's input
        diags.report("syntax", f"cannot parse: {type(exc).__name__}", _point(source.name, 1, 1))
        return None, []
    return result, comments


def _too_deep(source: Source, diags: Diagnostics) -> bool:
    depth = 0
    for match in _BRACKET.finditer(source.text):  # brackets only: a big spec is mostly other characters
        if match.group() in "{[(":
            depth += 1
            if depth > MAX_DEPTH:
                line, col = source.position(match.start())
                diags.report("syntax", f"nesting deeper than {MAX_DEPTH} levels", _point(source.name, line, col))
                return True
        else:
            depth = max(0, depth - 1)
    return False


def _too_many_operators(source: Source, diags: Diagnostics) -> bool:
    """Refuse absurd keep/expect expressions (each operator is a level of recursion downstream)."""
    if len(_OPERATOR_WORD.findall(source.text)) <= MAX_OPERATORS:
        return False  # cheap pre-check: words inside strings and comments may count, never too few
    count = 0
    try:
        for tok in token_lexer().lex(source.text):
            if tok.type in ("AND", "OR", "NOT"):
                count += 1
                if count > MAX_OPERATORS:
                    diags.report("syntax", f"more than {MAX_OPERATORS} and/or/not operators: split the rule",
                                 Span.of_token(source.name, tok))
                    return True
    except LarkError:
        return False  # the parser will report the real problem
    return False


def _point(file: str, line: int, col: int, width: int = 1) -> Span:
    return Span(file=file, line=line, col=col, end_line=line, end_col=col + width)


def _report_syntax(source: Source, exc: UnexpectedInput, diags: Diagnostics) -> None:
    if isinstance(exc, UnexpectedCharacters):
        _report_characters(source, exc, diags)
    elif isinstance(exc, UnexpectedToken):
        _report_token(source, exc, diags)
    elif isinstance(exc, UnexpectedEOF):
        _report_eof(source, diags, set(exc.expected))
    else:
        diags.report("syntax", "invalid syntax", _point(source.name, exc.line or 1, exc.column or 1))


def _report_characters(source: Source, exc: UnexpectedCharacters, diags: Diagnostics) -> None:
    pos = exc.pos_in_stream or 0
    char = source.text[pos] if pos < len(source.text) else ""
    span = _point(source.name, exc.line or 1, exc.column or 1)
    if char == '"':
        message = "unterminated string: a string must close with '\"' on the same line (use \"\"\" for multi-line text)"
    elif char.isprintable():
        message = f"unexpected character '{char}'"
    else:
        message = f"unexpected character U+{ord(char):04X}"
    diags.report("syntax", message, span)


def _report_token(source: Source, exc: UnexpectedToken, diags: Diagnostics) -> None:
    token = exc.token
    expected = set(exc.expected)
    if token.type == "$END":
        _report_eof(source, diags, expected)
        return
    span = Span.of_token(source.name, token)  # a multi-line string's ends on its last line
    previous = _previous_token(exc)
    got = _describe_token(token)
    closer = _innermost_closer(source, token)
    if closer and closer != str(token) and token.type in ("RBRACE", "RSQB", "RPAR", "NUMBER", "STRING", "NAME"):
        message = f"expected ',' or '{closer}', got {got}"
    else:
        message = _expectation(previous, expected, got)
    diags.report("syntax", message, span)


def _innermost_closer(source: Source, stop: Token) -> str | None:
    """The bracket that would close the innermost open '[' or '(' before `stop`, if any."""
    pairs = {"LSQB": "]", "LPAR": ")", "LBRACE": "}"}
    stack: list[str] = []
    try:
        for tok in token_lexer().lex(source.text):
            if tok.start_pos is not None and stop.start_pos is not None and tok.start_pos >= stop.start_pos:
                break
            if tok.type in pairs:
                stack.append(pairs[tok.type])
            elif tok.type in ("RSQB", "RPAR", "RBRACE") and stack:
                stack.pop()
    except LarkError:
        return None
    return stack[-1] if stack and stack[-1] != "}" else None


def _previous_token(exc: UnexpectedToken) -> Token | None:
    try:
        stack = exc.interactive_parser.parser_state.value_stack
    except AttributeError:
        return None
    # the token just before the error, unless a rule was reduced there (a Tree, or a value built directly)
    return stack[-1] if stack and isinstance(stack[-1], Token) else None


def _expectation(previous: Token | None, expected: set[str], got: str) -> str:
    if previous is not None and previous.type == "NAME" and "EQUAL" in expected:
        return f"expected '=' after field name '{previous}', got {got}"
    if previous is not None and previous.type == "EQUAL" and "NUMBER" in expected:
        return f"expected a value after '=' (a string, number, name, list, or {{...}}), got {got}"
    if got == "'}'" and "$END" in expected:
        return "unmatched '}': no block is open here"
    if "LBRACE" in expected and expected <= {"LBRACE", "NAME"} and got == "'='":
        return f"'{previous} = …' is a field: fields go inside a declaration's {{ … }} block (expected '{{')"
    if "LBRACE" in expected and expected <= {"LBRACE", "NAME"}:
        return (f"expected '{{' after '{previous}' to start a block, got {got} "
                "(a field is `name = value`, a schema field `name: type`)")
    if "RBRACE" in expected and "NAME" in expected and "EQUAL" not in expected:
        return f"expected a field, a declaration or '}}', got {got}"
    if {"STRING", "NUMBER", "NAME"} <= expected:
        return f"expected a value (a string, number, name, list, or {{...}}), got {got}"
    words = sorted({_describe_terminal(t) for t in expected})
    if len(words) > 1 and "'*'" in words:  # `a * b` products are rarely what a user is missing
        words.remove("'*'")
    if len(words) > 6:
        return f"unexpected {got}"
    return f"expected {_join(words)}, got {got}"


def _report_eof(source: Source, diags: Diagnostics, expected: set[str]) -> None:
    opener = _unclosed_brace(source)
    lines = source.lines[:-1] if len(source.lines) > 1 and source.lines[-1] == "" else source.lines
    line = max(1, len(lines))
    end = _point(source.name, line, len(source.line(line)) + 1)
    if opener is not None:
        notes = [Note("the block opened here", opener)]
        diags.report("syntax", "unexpected end of file: a '{' block is not closed", end, notes=notes)
    else:
        words = sorted({_describe_terminal(t) for t in expected})
        diags.report("syntax", f"unexpected end of file, expected {_join(words[:5])}", end)


def _unclosed_brace(source: Source) -> Span | None:
    stack: list[Token] = []
    try:
        for tok in token_lexer().lex(source.text):
            if tok.type == "LBRACE":
                stack.append(tok)
            elif tok.type == "RBRACE" and stack:
                stack.pop()
    except LarkError:
        return None
    if not stack:
        return None
    tok = stack[-1]
    return _point(source.name, tok.line or 1, tok.column or 1)


def _describe_token(token: Token) -> str:
    if token.type in ("NAME",):
        return f"name '{token}'"
    if token.type in ("STRING", "LONG_STRING"):
        return "a string"
    if token.type == "NUMBER":
        return f"number {token}"
    return f"'{token}'"


def _describe_terminal(name: str) -> str:
    if name in TOKEN_WORDS:
        return TOKEN_WORDS[name]
    try:
        pattern = parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return f"'{pattern.value}'" if pattern.type == "str" else name.lower()


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]

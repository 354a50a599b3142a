"""Source text (or a lark.Tree) → AST (dialc/syntax.py): decodes strings and numbers, attaches spans.

The front end parses and builds in one pass (`parse_to_ast`: the parser's reduce callbacks call the
builder, see dialc/grammar/reduce.py); `to_ast` builds the same AST from a parse tree.
"""

from __future__ import annotations

import builtins
import inspect
import re
import threading
from typing import Any

from dialc import syntax as ast
from dialc.diagnostics import Diagnostics
from dialc.grammar import new_parser, reduce
from dialc.grammar.api import Lark, Meta, Token, Tree
from dialc.grammar.reduce import Extent
from dialc.parser import parse_guarded
from dialc.source import Source, Span

_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def parse_to_ast(source: Source, diags: Diagnostics) -> ast.Module | None:
    """Parse one file and build its Module in the same pass; on a syntax error report it and return None."""
    builder = _direct_builder()
    found = Diagnostics()  # problems the builder finds count only if the whole file parses, as with a tree
    built, comments = parse_guarded(source, diags, lambda text: builder.parse(text, source.name, found))
    if built is None:
        return None
    for diag in found.items:
        diags.report(diag.code, diag.message, diag.span, notes=diag.notes, severity=diag.severity)
    return _module(source.name, built[0], comments)


def to_ast(tree: Tree[Token], file: str, comments: list[Token], diags: Diagnostics) -> ast.Module:
    """Build the Module of one parsed file from its parse tree."""
    items = _Builder(file, diags).walk(tree)
    return _module(file, items.children if isinstance(items, Tree) else items, comments)


def to_value(tree: Tree[Token], file: str, diags: Diagnostics) -> ast.Value:
    """Build one value (used for `--set field=value` overrides)."""
    return _Builder(file, diags).walk(tree)  # type: ignore[no-any-return]


def _module(file: str, items: builtins.list[Any], comments: builtins.list[Token]) -> ast.Module:
    module = ast.Module(file=file)
    for item in items:
        if isinstance(item, ast.Include):
            module.includes.append(item)
        elif isinstance(item, ast.Decl):
            module.decls.append(item)
    module.comments = [ast.Comment(span=Span.of_token(file, c), text=str(c)) for c in comments]
    return module


def decode_string(raw: str) -> tuple[str, bool, str | None]:
    """Literal text (with quotes) → (value, is_long, error). Long strings are dedented like docstrings."""
    long = raw.startswith('"""')
    body = raw[3:-3] if long else raw[1:-1]
    error: list[str] = []

    def unescape(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[code]
        if code[0] in "uU" and len(code) > 1:
            return chr(int(code[1:], 16)) if int(code[1:], 16) <= 0x10FFFF else "\ufffd"
        if code == "\n":  # a backslash at the end of a line joins lines
            return ""
        error.append(f"invalid escape sequence '\\{code}'")
        return "\\" + code

    value = _ESCAPE.sub(unescape, body)
    if long:
        value = inspect.cleandoc(value)
    return value, long, (error[0] if error else None)


class _Builder:
    """One method per grammar rule, `rule(extent, items)`; each returns an AST node (or a plain list for helpers)."""

    def __init__(self, file: str, diags: Diagnostics) -> None:
        self.file = file
        self.diags = diags

    def walk(self, tree: Tree[Token]) -> Any:
        """Build bottom-up from a parse tree (a rule without a method stays a Tree, as in a lark Transformer)."""
        items = [self.walk(c) if isinstance(c, Tree) else c for c in tree.children]
        method = getattr(self, tree.data, None)
        if method is None:
            return Tree(tree.data, items, tree.meta)
        return method(_extent(tree.meta), items)

    def _span(self, meta: Extent) -> Span:
        first, last = meta
        if first is None or last is None:
            return Span(file=self.file, line=1, col=1, end_line=1, end_col=1)
        return Span(file=self.file, line=first[0], col=first[1], end_line=last[0], end_col=last[1])

    def _tok(self, tok: Token) -> Span:
        return Span.of_token(self.file, tok)

    def start(self, meta: Extent, items: builtins.list[Any]) -> builtins.list[Any]:
        return items

    def include(self, meta: Extent, items: builtins.list[Any]) -> ast.Include:
        return ast.Include(span=self._span(meta), path=self._string(items[0]))

    def decl(self, meta: Extent, items: builtins.list[Any]) -> ast.Decl:
        *words, body = items
        return ast.Decl(span=self._span(meta), words=[ast.Word(span=self._tok(w), text=str(w)) for w in words],
                        body=body)

    def body(self, meta: Extent, items: builtins.list[Any]) -> builtins.list[Any]:
        return items

    def assign(self, meta: Extent, items: builtins.list[Any]) -> ast.Assign:
        name, value = items
        return ast.Assign(span=self._span(meta), name=str(name), name_span=self._tok(name), value=value)

    def entry(self, meta: Extent, items: builtins.list[Any]) -> ast.Entry:
        name, desc, *weight = items
        return ast.Entry(span=self._span(meta), name=str(name), name_span=self._tok(name),
                         description=self._string(desc), weight=weight[0] if weight else None)

    def schema_field(self, meta: Extent, items: builtins.list[Any]) -> ast.SchemaField:
        name, type_expr = items
        return ast.SchemaField(span=self._span(meta), name=str(name), name_span=self._tok(name), type=type_expr)

    def keep(self, meta: Extent, items: builtins.list[Any]) -> ast.Keep:
        return ast.Keep(span=self._span(meta), expr=items[0])

    def expect(self, meta: Extent, items: builtins.list[Any]) -> ast.Expect:
        return ast.Expect(span=self._span(meta), expr=items[0])

    # ---- types
    def type_expr(self, meta: Extent, items: builtins.list[Any]) -> ast.TypeExpr:
        base: ast.TypeExpr = items[0]
        fields: builtins.dict[str, Any] = {"optional": False, "keywords": {}}
        for item in items[1:]:
            if isinstance(item, Token) and item.type == "OPTIONAL":
                fields["optional"] = True
            elif item[0] == "range":
                fields["lo"], fields["hi"] = item[1], item[2]
            else:
                fields["keywords"] = {**fields["keywords"], item[1]: item[2]}
        return base.model_copy(update={"span": self._span(meta), **fields})

    def simple_type(self, meta: Extent, items: builtins.list[Any]) -> ast.TypeExpr:
        return ast.TypeExpr(span=self._span(meta), base=str(items[0]))

    def enum_type(self, meta: Extent, items: builtins.list[Any]) -> ast.TypeExpr:
        return ast.TypeExpr(span=self._span(meta), base="enum", options=items[-1])

    def list_type(self, meta: Extent, items: builtins.list[Any]) -> ast.TypeExpr:
        return ast.TypeExpr(span=self._span(meta), base="list", item=items[0])

    def name_list(self, meta: Extent, items: builtins.list[Any]) -> builtins.list[str]:
        return [str(i) for i in items]

    def range_bound(self, meta: Extent, items: builtins.list[Any]) -> builtins.tuple[str, ast.Num, ast.Num]:
        return ("range", items[0], items[1])

    def keyword_bound(self, meta: Extent, items: builtins.list[Any]) -> builtins.tuple[str, str, ast.Num]:
        return ("keyword", str(items[0]), items[1])

    # ---- values
    def product(self, meta: Extent, items: builtins.list[Any]) -> ast.Product:
        return ast.Product(span=self._span(meta), items=items)

    def name(self, meta: Extent, items: builtins.list[Any]) -> ast.Name:
        return ast.Name(span=self._tok(items[0]), name=str(items[0]))

    def list(self, meta: Extent, items: builtins.list[Any]) -> ast.ListV:
        return ast.ListV(span=self._span(meta), items=items)

    def dict(self, meta: Extent, items: builtins.list[Any]) -> ast.DictV:
        return ast.DictV(span=self._span(meta), pairs=items)

    def pair(self, meta: Extent, items: builtins.list[Any]) -> ast.Pair:
        key, value = items
        text = self._string(key).value if key.type in ("STRING", "LONG_STRING") else str(key)
        return ast.Pair(span=self._span(meta), key=text, key_span=self._tok(key), value=value)

    def kwarg(self, meta: Extent, items: builtins.list[Any]) -> ast.Pair:
        key, value = items
        return ast.Pair(span=self._span(meta), key=str(key), key_span=self._tok(key), value=value)

    def call(self, meta: Extent, items: builtins.list[Any]) -> ast.Call:
        func, *args = items
        positional = [a for a in args if not isinstance(a, ast.Pair)]
        named = [a for a in args if isinstance(a, ast.Pair)]
        return ast.Call(span=self._span(meta), func=str(func), args=positional, kwargs=named)

    def block_value(self, meta: Extent, items: builtins.list[Any]) -> ast.BlockV:
        return ast.BlockV(span=self._span(meta), kind=str(items[0]), body=items[1])

    def range(self, meta: Extent, items: builtins.list[Any]) -> ast.Range:
        return ast.Range(span=self._span(meta), lo=items[0], hi=items[1])

    def string(self, meta: Extent, items: builtins.list[Any]) -> ast.Str:
        return self._string(items[0])

    def number(self, meta: Extent, items: builtins.list[Any]) -> ast.Num:
        tok = items[0]
        text = str(tok)
        clean = text.replace("_", "")
        is_float = any(c in clean for c in ".eE")
        value: int | float = float(clean) if is_float else int(clean)
        return ast.Num(span=self._tok(tok), value=value, text=text)

    def _string(self, tok: Token) -> ast.Str:
        value, long, error = decode_string(str(tok))
        if error:
            self.diags.report("bad-string", error, self._tok(tok))
        return ast.Str(span=self._tok(tok), value=value, long=long)

    # ---- expressions
    def or_expr(self, meta: Extent, items: builtins.list[Any]) -> ast.Expr:
        return self._fold("or", meta, items)

    def and_expr(self, meta: Extent, items: builtins.list[Any]) -> ast.Expr:
        return self._fold("and", meta, items)

    def _fold(self, op: str, meta: Extent, items: builtins.list[Any]) -> ast.Expr:
        result: ast.Expr = items[0]
        for item in items[1:]:
            result = ast.BinOp(span=self._span(meta), op=op, left=result, right=item)
        return result

    def not_expr(self, meta: Extent, items: builtins.list[Any]) -> ast.Not:
        return ast.Not(span=self._span(meta), operand=items[0])

    def comparison(self, meta: Extent, items: builtins.list[Any]) -> ast.BinOp:
        left, op, right = items
        return ast.BinOp(span=self._span(meta), op=str(op), left=left, right=right)

    def ref(self, meta: Extent, items: builtins.list[Any]) -> ast.Ref:
        return ast.Ref(span=self._span(meta), parts=[str(i) for i in items])


class _DirectBuilder(_Builder):
    """A builder wired into its own parser's reduce callbacks: parse(text) returns (items, first, last)."""

    def __init__(self) -> None:
        super().__init__("", Diagnostics())
        self.lark: Lark = new_parser()
        reduce.install(self.lark, Token, lambda name: getattr(self, name, None))

    def parse(self, text: str, file: str, diags: Diagnostics) -> Any:
        self.file, self.diags = file, diags
        return self.lark.parse(text, start="start")


_per_thread = threading.local()  # a parser's callbacks belong to one builder: one of each per thread


def _direct_builder() -> _DirectBuilder:
    builder: _DirectBuilder | None = getattr(_per_thread, "builder", None)
    if builder is None:
        builder = _per_thread.builder = _DirectBuilder()
    return builder


def _extent(meta: Meta) -> Extent:
    if getattr(meta, "empty", True):
        return None, None
    return (meta.line, meta.column), (meta.end_line, meta.end_column)

"""lark.Tree → AST (dialc/syntax.py): decodes strings and numbers, attaches spans."""

from __future__ import annotations

import builtins
import inspect
import re
from typing import Any

from dialc import syntax as ast
from dialc.diagnostics import Diagnostics
from dialc.grammar.api import Meta, Token, Transformer, Tree, v_args
from dialc.source import Span

_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def to_ast(tree: Tree, file: str, comments: list[Token], diags: Diagnostics) -> ast.Module:
    """Build the Module of one parsed file."""
    items = _Builder(file, diags).transform(tree)
    module = ast.Module(file=file)
    for item in items.children if isinstance(items, Tree) else items:
        if isinstance(item, ast.Include):
            module.includes.append(item)
        elif isinstance(item, ast.Decl):
            module.decls.append(item)
    module.comments = [ast.Comment(span=_tok_span(file, c), text=str(c)) for c in comments]
    return module


def to_value(tree: Tree, file: str, diags: Diagnostics) -> ast.Value:
    """Build one value (used for `--set field=value` overrides)."""
    return _Builder(file, diags).transform(tree)


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file=file, line=tok.line or 1, col=tok.column or 1,
                end_line=tok.end_line or tok.line or 1, end_col=tok.end_column or tok.column or 1)


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


@v_args(meta=True)
class _Builder(Transformer):
    """One method per grammar rule; each returns an AST node (or a plain list for helper rules)."""

    def __init__(self, file: str, diags: Diagnostics) -> None:
        super().__init__()
        self.file = file
        self.diags = diags

    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(file=self.file, line=1, col=1, end_line=1, end_col=1)
        return Span(file=self.file, line=meta.line, col=meta.column,
                    end_line=meta.end_line, end_col=meta.end_column)

    def _tok(self, tok: Token) -> Span:
        return _tok_span(self.file, tok)

    def start(self, meta: Meta, items: builtins.list[Any]) -> builtins.list[Any]:
        return items

    def include(self, meta: Meta, items: builtins.list[Any]) -> ast.Include:
        return ast.Include(span=self._span(meta), path=self._string(items[0]))

    def decl(self, meta: Meta, items: builtins.list[Any]) -> ast.Decl:
        *words, body = items
        return ast.Decl(span=self._span(meta), words=[ast.Word(span=self._tok(w), text=str(w)) for w in words],
                        body=body)

    def body(self, meta: Meta, items: builtins.list[Any]) -> builtins.list[Any]:
        return items

    def assign(self, meta: Meta, items: builtins.list[Any]) -> ast.Assign:
        name, value = items
        return ast.Assign(span=self._span(meta), name=str(name), name_span=self._tok(name), value=value)

    def entry(self, meta: Meta, items: builtins.list[Any]) -> ast.Entry:
        name, desc, *weight = items
        return ast.Entry(span=self._span(meta), name=str(name), name_span=self._tok(name),
                         description=self._string(desc), weight=weight[0] if weight else None)

    def schema_field(self, meta: Meta, items: builtins.list[Any]) -> ast.SchemaField:
        name, type_expr = items
        return ast.SchemaField(span=self._span(meta), name=str(name), name_span=self._tok(name), type=type_expr)

    def keep(self, meta: Meta, items: builtins.list[Any]) -> ast.Keep:
        return ast.Keep(span=self._span(meta), expr=items[0])

    def expect(self, meta: Meta, items: builtins.list[Any]) -> ast.Expect:
        return ast.Expect(span=self._span(meta), expr=items[0])

    # ---- types
    def type_expr(self, meta: Meta, items: builtins.list[Any]) -> ast.TypeExpr:
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

    def simple_type(self, meta: Meta, items: builtins.list[Any]) -> ast.TypeExpr:
        return ast.TypeExpr(span=self._span(meta), base=str(items[0]))

    def enum_type(self, meta: Meta, items: builtins.list[Any]) -> ast.TypeExpr:
        return ast.TypeExpr(span=self._span(meta), base="enum", options=items[-1])

    def list_type(self, meta: Meta, items: builtins.list[Any]) -> ast.TypeExpr:
        return ast.TypeExpr(span=self._span(meta), base="list", item=items[0])

    def name_list(self, meta: Meta, items: builtins.list[Any]) -> builtins.list[str]:
        return [str(i) for i in items]

    def range_bound(self, meta: Meta, items: builtins.list[Any]) -> builtins.tuple[str, ast.Num, ast.Num]:
        return ("range", items[0], items[1])

    def keyword_bound(self, meta: Meta, items: builtins.list[Any]) -> builtins.tuple[str, str, ast.Num]:
        return ("keyword", str(items[0]), items[1])

    # ---- values
    def product(self, meta: Meta, items: builtins.list[Any]) -> ast.Product:
        return ast.Product(span=self._span(meta), items=items)

    def name(self, meta: Meta, items: builtins.list[Any]) -> ast.Name:
        return ast.Name(span=self._tok(items[0]), name=str(items[0]))

    def list(self, meta: Meta, items: builtins.list[Any]) -> ast.ListV:
        return ast.ListV(span=self._span(meta), items=items)

    def dict(self, meta: Meta, items: builtins.list[Any]) -> ast.DictV:
        return ast.DictV(span=self._span(meta), pairs=items)

    def pair(self, meta: Meta, items: builtins.list[Any]) -> ast.Pair:
        key, value = items
        text = self._string(key).value if key.type in ("STRING", "LONG_STRING") else str(key)
        return ast.Pair(span=self._span(meta), key=text, key_span=self._tok(key), value=value)

    def kwarg(self, meta: Meta, items: builtins.list[Any]) -> ast.Pair:
        key, value = items
        return ast.Pair(span=self._span(meta), key=str(key), key_span=self._tok(key), value=value)

    def call(self, meta: Meta, items: builtins.list[Any]) -> ast.Call:
        func, *args = items
        positional = [a for a in args if not isinstance(a, ast.Pair)]
        named = [a for a in args if isinstance(a, ast.Pair)]
        return ast.Call(span=self._span(meta), func=str(func), args=positional, kwargs=named)

    def block_value(self, meta: Meta, items: builtins.list[Any]) -> ast.BlockV:
        return ast.BlockV(span=self._span(meta), kind=str(items[0]), body=items[1])

    def range(self, meta: Meta, items: builtins.list[Any]) -> ast.Range:
        return ast.Range(span=self._span(meta), lo=items[0], hi=items[1])

    def string(self, meta: Meta, items: builtins.list[Any]) -> ast.Str:
        return self._string(items[0])

    def number(self, meta: Meta, items: builtins.list[Any]) -> ast.Num:
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
    def or_expr(self, meta: Meta, items: builtins.list[Any]) -> ast.Expr:
        return self._fold("or", meta, items)

    def and_expr(self, meta: Meta, items: builtins.list[Any]) -> ast.Expr:
        return self._fold("and", meta, items)

    def _fold(self, op: str, meta: Meta, items: builtins.list[Any]) -> ast.Expr:
        result = items[0]
        for item in items[1:]:
            result = ast.BinOp(span=self._span(meta), op=op, left=result, right=item)
        return result

    def not_expr(self, meta: Meta, items: builtins.list[Any]) -> ast.Not:
        return ast.Not(span=self._span(meta), operand=items[0])

    def comparison(self, meta: Meta, items: builtins.list[Any]) -> ast.BinOp:
        left, op, right = items
        return ast.BinOp(span=self._span(meta), op=str(op), left=left, right=right)

    def ref(self, meta: Meta, items: builtins.list[Any]) -> ast.Ref:
        return ast.Ref(span=self._span(meta), parts=[str(i) for i in items])

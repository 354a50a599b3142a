"""AST Module + its original text → canonical .dial text (every comment kept; idempotent)."""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass

from dialc import syntax as ast

WIDTH = 100  # a bracketed value or nested block stays on one line only if the line fits this
INDENT = "  "
RECURSION = 10_000  # a nested block value costs about six Python frames per level
NAME_RE = re.compile(r"[^\W\d]\w*")  # the grammar's NAME: such dict keys print without quotes
Pos = tuple[int, int]  # (line, column), 1-based, as in spans
END: Pos = (1 << 62, 0)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_BRACKETED = (ast.ListV, ast.DictV, ast.Call, ast.BlockV)  # kept one-line only if written so
_PREC = {"or": 1, "and": 2}  # comparisons bind tighter (4), then `not` (3); atoms are 5


@dataclass(frozen=True)
class _Comment:
    pos: Pos
    text: str
    trailing: bool  # code precedes it on its line: it stays at the end of that line


def format_module(module: ast.Module, original: str) -> str:
    """The canonical text of `module`; `original` (the text it was parsed from) places comments."""
    printer = _Printer(original.removeprefix("\ufeff").split("\n"))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, RECURSION))  # the parser allows 200 levels of brackets
    try:
        return printer.module(module, _comments(module, printer.lines))
    finally:
        sys.setrecursionlimit(limit)


def _comments(module: ast.Module, lines: list[str]) -> list[_Comment]:
    found = []
    for c in module.comments:
        before = lines[c.span.line - 1][: c.span.col - 1] if c.span.line <= len(lines) else ""
        found.append(_Comment((c.span.line, c.span.col), c.text.rstrip(), bool(before.strip())))
    return sorted(found, key=lambda c: c.pos)


def _start(node: ast.Node) -> Pos:
    return (node.span.line, node.span.col)


def _end(node: ast.Node) -> Pos:
    return (node.span.end_line, node.span.end_col)


def _width(text: str) -> int:
    """Display columns: CJK characters take two."""
    wide = sum(1 for c in text if unicodedata.east_asian_width(c) in "WF")
    return len(text) + wide - sum(1 for c in text if unicodedata.combining(c))


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


# ---- flat forms (one line) -------------------------------------------------------------------
def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch == "\ufeff":
        return f"\\u{ord(ch):04x}"
    return ch


def quote(value: str) -> str:
    """A one-line string literal whose decoding is `value`."""
    return '"' + "".join(_escape(ch) for ch in value) + '"'


def _long_line(line: str) -> str:
    """One line of a long string: a quote that starts a run of three is escaped."""
    out = []
    for i, ch in enumerate(line):
        if ch == '"':
            out.append('\\"' if line[i + 1:i + 3] == '""' else '"')
        else:
            out.append(_escape(ch))
    return "".join(out)


def _key(key: str) -> str:
    return key if NAME_RE.fullmatch(key) else quote(key)


def _flat(v: ast.Value, in_expr: bool = False) -> str | None:
    """`v` on one line, or None when it cannot be (a \"\"\" string outside an expression)."""
    if isinstance(v, ast.Str):
        return quote(v.value) if in_expr or not v.long else None
    if isinstance(v, ast.Num | ast.Name):
        return v.text if isinstance(v, ast.Num) else v.name
    if isinstance(v, ast.Range):
        return f"{v.lo.text}..{v.hi.text}"
    if isinstance(v, ast.BlockV):
        body = _flat_body(v.body, in_expr)
        return None if body is None else f"{v.kind} {body}"
    if isinstance(v, ast.Product):
        return _join([_flat(i, in_expr) for i in v.items], " * ")
    if isinstance(v, ast.ListV):
        return _wrap("[", _join([_flat(i, in_expr) for i in v.items], ", "), "]")
    if isinstance(v, ast.DictV):
        pairs = [_pair(p, ": ", in_expr) for p in v.pairs]
        return _wrap("{", _join(pairs, ", "), "}")
    args = [_pair(a, " = ", in_expr) if isinstance(a, ast.Pair) else _flat(a, in_expr) for a in _args(v)]
    return _wrap(f"{v.func}(", _join(args, ", "), ")")


def _args(call: ast.Call) -> list[ast.Value | ast.Pair]:
    return sorted([*call.args, *call.kwargs], key=_start)


def _pair(p: ast.Pair, sep: str, in_expr: bool) -> str | None:
    value = _flat(p.value, in_expr)
    return None if value is None else _key(p.key) + sep + value


def _join(parts: list[str | None], sep: str) -> str | None:
    return None if any(p is None for p in parts) else sep.join(p for p in parts if p is not None)


def _wrap(opener: str, inner: str | None, closer: str) -> str | None:
    return None if inner is None else opener + inner + closer


def _is_empty(v: ast.Value) -> bool:
    parts = {ast.BlockV: "body", ast.DictV: "pairs", ast.ListV: "items", ast.Call: "args"}.get(type(v))
    return parts is not None and not getattr(v, parts) and not (isinstance(v, ast.Call) and v.kwargs)


def _flat_body(members: list[ast.Member], in_expr: bool = False) -> str | None:
    inner = _join([_flat_member(m, in_expr) for m in members], "  ")
    return None if inner is None else ("{ " + inner + " }" if inner else "{}")


def _flat_member(m: ast.Member, in_expr: bool = False) -> str | None:
    if isinstance(m, ast.Assign):
        value = _flat(m.value, in_expr)
        return None if value is None else f"{m.name} = {value}"
    if isinstance(m, ast.Entry):
        desc = _flat(m.description, in_expr)
        weight = f" weight {m.weight.text}" if m.weight is not None else ""
        return None if desc is None else f"{m.name} {desc}{weight}"
    if isinstance(m, ast.SchemaField):
        return f"{m.name}: {type_text(m.type)}"
    if isinstance(m, ast.Keep):
        return "keep when " + expr_text(m.expr)
    if isinstance(m, ast.Expect):
        return "expect " + expr_text(m.expr)
    body = _flat_body(m.body, in_expr)
    return None if body is None else " ".join(w.text for w in m.words) + " " + body


def type_text(t: ast.TypeExpr) -> str:
    """An output-schema type as written: `int? [0..10]`, `enum(a, b)`, `[str] (max 5)`."""
    if t.item is not None:
        text = f"[{type_text(t.item)}]"
    elif t.options:
        text = f"{t.base}({', '.join(t.options)})"
    else:
        text = t.base
    text += "?" if t.optional else ""
    if t.lo is not None and t.hi is not None:
        text += f" [{t.lo.text}..{t.hi.text}]"
    return text + "".join(f" ({k} {n.text})" for k, n in t.keywords.items())


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.BinOp):
        return _PREC.get(e.op, 4)
    return 3 if isinstance(e, ast.Not) else 5


def expr_text(e: ast.Expr) -> str:
    """A keep/expect expression with the fewest parentheses that parse back to the same tree."""
    if isinstance(e, ast.Ref):
        return ".".join(e.parts)
    if isinstance(e, ast.Not):
        return "not " + _paren(e.operand, _prec(e.operand) != 3 and _prec(e.operand) < 5)  # not (a < b)
    if isinstance(e, ast.BinOp) and e.op in _PREC:  # walk and/or chains: they can be very long
        p, rights = _PREC[e.op], []
        left: ast.Expr = e
        while isinstance(left, ast.BinOp) and left.op == e.op:
            rights.append(left.right)
            left = left.left
        parts = [_paren(left, _prec(left) < p), *(_paren(r, _prec(r) <= p) for r in reversed(rights))]
        return f" {e.op} ".join(parts)
    if isinstance(e, ast.BinOp):
        return f"{_paren(e.left, _prec(e.left) < 5)} {e.op} {_paren(e.right, _prec(e.right) < 5)}"
    return _flat(e, in_expr=True) or ""


def _paren(e: ast.Expr, needed: bool) -> str:
    return f"({expr_text(e)})" if needed else expr_text(e)


def _alignment(members: list[ast.Member]) -> tuple[int, int, dict[int, str]]:
    """Column widths of the entries in a block, and padded headers of its nested declarations."""
    entries = [m for m in members if isinstance(m, ast.Entry)]
    name_w = max((_width(e.name) for e in entries), default=0)
    descs = [_flat(e.description) for e in entries if e.weight is not None]
    desc_w = max((_width(d) for d in descs if d is not None), default=0)
    headers: dict[int, str] = {}
    decls = [m for m in members if isinstance(m, ast.Decl)]
    for kind in {d.kind for d in decls}:
        group = [d for d in decls if d.kind == kind]
        widths: dict[int, int] = {}
        for d in group:
            for j, w in enumerate(d.words):
                widths[j] = max(widths.get(j, 0), _width(w.text))
        for d in group:
            words = [_pad(w.text, widths[j]) if j else w.text for j, w in enumerate(d.words)]
            headers[id(d)] = " ".join(words)
    return name_w, desc_w, headers


class _Printer:
    """Writes lines in source order, taking comments from a cursor as it passes their positions."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.comments: list[_Comment] = []
        self.next = 0
        self.out: list[str] = []
        self.last_line = 0  # source line of the last thing written (blank lines are kept after it)
        self.fresh = True  # just opened a block: no blank line before its first member

    # ---- comments and blank lines
    def emit(self, line: str) -> None:
        self.out.append(line)
        self.fresh = False

    def sep(self, line: int) -> None:
        """One blank line if the source had any between the last thing written and `line`."""
        if self.fresh:
            self.fresh = False
        elif any(not self._source(k).strip() for k in range(self.last_line + 1, line)):
            self.out.append("")

    def _source(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    def pending(self, limit: Pos) -> bool:
        return self.next < len(self.comments) and self.comments[self.next].pos < limit

    def leading(self, limit: Pos, indent: int, keep_blank: bool = True) -> None:
        """Every comment before `limit`, each on its own line."""
        while self.pending(limit):
            comment = self.comments[self.next]
            self.next += 1
            if keep_blank:
                self.sep(comment.pos[0])
            self.emit(INDENT * indent + comment.text)
            self.last_line = comment.pos[0]

    def hoist(self, limit: Pos, indent: int) -> None:
        """Comments inside what is about to be written on one line go on the lines above it."""
        self.leading(limit, indent, keep_blank=False)

    def trail(self, limit: Pos) -> None:
        """A comment that ended the line of what was just written stays at the end of that line."""
        if self.pending(limit) and self.comments[self.next].trailing:
            comment = self.comments[self.next]
            self.next += 1
            self.out[-1] += "  " + comment.text
            self.last_line = max(self.last_line, comment.pos[0])

    # ---- the file
    def module(self, module: ast.Module, comments: list[_Comment]) -> str:
        items: list[ast.Include | ast.Decl] = [*module.includes, *module.decls]
        groups, rest = _group(sorted(items, key=_start), comments)
        for i, item in enumerate(items):
            self.comments, self.next = groups[id(item)], 0
            if i and not (isinstance(item, ast.Include) and isinstance(items[i - 1], ast.Include)):
                self.out.append("")  # one blank line between top-level declarations
                self.fresh = True
            self.top_item(item)
        self.comments, self.next = rest, 0
        self.leading(END, 0)
        return "\n".join(self.out) + "\n" if self.out else ""

    def top_item(self, item: ast.Include | ast.Decl) -> None:
        self.leading(_start(item), 0)
        self.sep(item.span.line)
        if isinstance(item, ast.Include):
            self.emit(f"include {quote(item.path.value)}")
        else:
            self.decl(item, 0, None)
        self.last_line = item.span.end_line
        self.trail(END)
        self.leading(END, 0)

    # ---- blocks and members
    def body(self, members: list[ast.Member], indent: int, end: Pos) -> None:
        name_w, desc_w, headers = _alignment(members)
        for i, m in enumerate(members):
            limit = _start(members[i + 1]) if i + 1 < len(members) else end
            self.leading(_start(m), indent)
            self.sep(m.span.line)
            self.member(m, indent, (name_w, desc_w), headers.get(id(m)))
            self.last_line = m.span.end_line
            self.trail(limit)
        self.leading(end, indent)

    def member(self, m: ast.Member, indent: int, widths: tuple[int, int], header: str | None) -> None:
        pad = INDENT * indent
        if isinstance(m, ast.Assign):
            self.value(m.value, f"{pad}{m.name} = ", indent)
        elif isinstance(m, ast.Entry):
            self.entry(m, indent, widths)
        elif isinstance(m, ast.Decl):
            self.decl(m, indent, header)
        else:
            self.hoist(_end(m), indent)
            self.emit(pad + (_flat_member(m) or ""))

    def entry(self, m: ast.Entry, indent: int, widths: tuple[int, int]) -> None:
        prefix = INDENT * indent + _pad(m.name, widths[0]) + " "
        desc = _flat(m.description)
        if desc is None:
            self.value(m.description, prefix, indent)
        else:
            self.hoist(_end(m), indent)
            self.emit(prefix + (desc if m.weight is None else _pad(desc, widths[1])))
        if m.weight is not None:
            self.out[-1] += f"  weight {m.weight.text}"

    def decl(self, d: ast.Decl, indent: int, header: str | None) -> None:
        """A block written on one line stays so if it fits; otherwise one member per line."""
        pad = INDENT * indent
        header = header or " ".join(w.text for w in d.words)
        end = _end(d)
        if not self.pending(end) and (not d.body or d.span.line == d.span.end_line):
            flat = _flat_body(d.body)
            if flat is not None and (not d.body or _width(f"{pad}{header} {flat}") <= WIDTH):
                self.emit(f"{pad}{header} {flat}")
                return
        self.block(f"{pad}{header} {{", d.body, indent, end)

    def block(self, opener: str, members: list[ast.Member], indent: int, end: Pos) -> None:
        self.emit(opener)
        self.trail(_start(members[0]) if members else end)
        self.fresh = True
        self.body(members, indent + 1, end)
        self.emit(INDENT * indent + "}")

    # ---- values
    def value(self, v: ast.Value, prefix: str, indent: int) -> None:
        """Write `prefix` + `v`, on one line when it fits (bracketed values: and was one line)."""
        flat = _flat(v)
        bracketed = isinstance(v, _BRACKETED) or (
            isinstance(v, ast.Product) and any(isinstance(i, _BRACKETED) for i in v.items))
        fits = _is_empty(v) or (v.span.line == v.span.end_line and _width(prefix + (flat or "")) <= WIDTH)
        if flat is not None and bracketed and fits and not self.pending(_end(v)):
            self.emit(prefix + flat)
            return
        if flat is not None and not bracketed:
            self.hoist(_end(v), indent)
            self.emit(prefix + flat)
        elif isinstance(v, ast.Str):
            self.long_string(v, prefix, indent)
        elif isinstance(v, ast.Product):
            self.product(v, prefix, indent)
        else:
            self.hoist(_start(v), indent)
            self.container(v, prefix, indent)

    def product(self, v: ast.Product, prefix: str, indent: int) -> None:
        """Items joined by ` * ` on one line; after a comment, the next item starts a new line."""
        self.value(v.items[0], prefix, indent)
        for item in v.items[1:]:
            if not self.pending(_start(item)):
                self.value(item, self.out.pop() + " * ", indent)
                continue
            self.out[-1] += " *"
            self.trail(_start(item))
            indent += 1  # (once per comment) the rest of the product is a continuation
            self.leading(_start(item), indent)
            self.value(item, INDENT * indent, indent)

    def long_string(self, s: ast.Str, prefix: str, indent: int) -> None:
        self.hoist(_end(s), indent)
        lines = s.value.split("\n")
        if not any(line.strip() for line in lines):  # nothing for the dedent to anchor on
            self.emit(prefix + (quote(s.value) if s.value else '""""""'))
            return
        self.emit(prefix + '"""')
        for line in lines:
            self.out.append(INDENT * (indent + 1) + _long_line(line) if line else "")
        self.emit(INDENT * indent + '"""')

    def container(self, v: ast.Value, prefix: str, indent: int) -> None:
        if isinstance(v, ast.BlockV):
            self.block(f"{prefix}{v.kind} {{", v.body, indent, _end(v))
            return
        items: list[ast.Value | ast.Pair]
        if isinstance(v, ast.ListV):
            opener, closer, items = "[", "]", [*v.items]
        elif isinstance(v, ast.DictV):
            opener, closer, items = "{", "}", [*v.pairs]
        else:
            assert isinstance(v, ast.Call)
            opener, closer, items = f"{v.func}(", ")", _args(v)
        self.emit(prefix + opener)
        self.trail(_start(items[0]) if items else _end(v))
        self.fresh = True
        self.items(items, indent + 1, _end(v), ": " if isinstance(v, ast.DictV) else " = ")
        self.emit(INDENT * indent + closer)

    def items(self, items: list[ast.Value | ast.Pair], indent: int, end: Pos, sep: str) -> None:
        for i, item in enumerate(items):
            limit = _start(items[i + 1]) if i + 1 < len(items) else end
            self.leading(_start(item), indent)
            self.sep(item.span.line)
            if isinstance(item, ast.Pair):
                self.value(item.value, INDENT * indent + _key(item.key) + sep, indent)
            else:
                self.value(item, INDENT * indent, indent)
            self.out[-1] += ","
            self.last_line = item.span.end_line
            self.trail(limit)
        self.leading(end, indent)


def _group(items: list[ast.Include | ast.Decl], comments: list[_Comment]) -> tuple[dict[int, list[_Comment]],
                                                                                 list[_Comment]]:
    """Comments of each top-level item (before it, inside it, ending its last line); the rest end the file."""
    groups: dict[int, list[_Comment]] = {id(item): [] for item in items}
    i = 0
    for k, item in enumerate(items):
        following = _start(items[k + 1]) if k + 1 < len(items) else END
        while i < len(comments) and (comments[i].pos < _end(item) or (
                comments[i].trailing and comments[i].pos < following and comments[i].pos[0] == item.span.end_line)):
            groups[id(item)].append(comments[i])
            i += 1
    return groups, comments[i:]

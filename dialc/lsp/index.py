"""Parsed modules → what is declared where, every by-name reference to it, and every include: for navigation.

A name is a reference when it stands where dialc/schema.py expects one (a `ref`, `refs`, `product` or
`domain` field) or is a name in a keep rule or data test (a dimension); each reference knows the kinds it
may name, so `model = small` finds the model `small`, not a task of that name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dialc import syntax as ast
from dialc.lsp.docs import fields_of
from dialc.schema import KINDS, FieldSpec
from dialc.source import Span

REF_TYPES = ("ref", "refs", "product")


@dataclass(frozen=True)
class Definition:
    """A declaration (or a scenario entry, or a quality dimension) and where its name is written."""

    kind: str  # a declaration kind; "scenario" for a scenario entry
    name: str
    path: Path
    name_span: Span
    span: Span
    qualifier: str | None = None
    renamable: bool = True  # unnamed kinds (`tasks { … }`) are named by their kind word


@dataclass(frozen=True)
class Reference:
    """A name written where a declaration of one of `kinds` is expected."""

    name: str
    kinds: tuple[str, ...]
    path: Path
    span: Span


@dataclass(frozen=True)
class IncludeLink:
    """An `include "…"` and the file it names."""

    path: Path
    span: Span
    target: Path


@dataclass
class Index:
    """Definitions, references and includes of a set of modules (a spec and everything it includes)."""

    definitions: list[Definition] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    includes: list[IncludeLink] = field(default_factory=list)
    axes: list[str] = field(default_factory=list)  # expression axis names
    categories: list[str] = field(default_factory=list)  # task categories written in the spec

    def resolve(self, ref: Reference) -> list[Definition]:
        return [d for d in self.definitions if d.name == ref.name and d.kind in ref.kinds]

    def named(self, kinds: Iterable[str]) -> list[Definition]:
        wanted = set(kinds)
        return [d for d in self.definitions if d.kind in wanted]

    def references_to(self, target: Definition) -> list[Reference]:
        return [r for r in self.references if target in self.resolve(r)]

    def at(self, path: Path, line: int, col: int) -> Definition | Reference | IncludeLink | None:
        """What is written at (line, col) of `path`: a reference, a declared name or an include path."""
        for ref in self.references:
            if ref.path == path and _contains(ref.span, line, col):
                return ref
        for definition in self.definitions:
            if definition.path == path and _contains(definition.name_span, line, col):
                return definition
        for link in self.includes:
            if link.path == path and _contains(link.span, line, col):
                return link
        return None


def _contains(span: Span, line: int, col: int) -> bool:
    """Inside the span, its end included (a cursor just after a name is on it)."""
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


def build_index(modules: Iterable[tuple[Path, ast.Module]]) -> Index:
    index = Index()
    for path, module in modules:
        for include in module.includes:
            target = (path.parent / include.path.value).resolve()
            index.includes.append(IncludeLink(path=path, span=include.path.span, target=target))
        for decl in module.decls:
            _index_decl(index, path, decl)
    return index


def _index_decl(index: Index, path: Path, decl: ast.Decl) -> None:
    kind = decl.kind
    qualifier = decl.words[2].text if kind == "dimension" and len(decl.words) > 2 else None
    if kind == "output":
        return
    spec = KINDS.get(kind)
    if len(decl.words) > 1:
        index.definitions.append(Definition(kind, decl.words[1].text, path, decl.words[1].span, decl.span,
                                            qualifier))
    elif spec is not None and not spec.named:
        index.definitions.append(Definition(kind, kind, path, decl.words[0].span, decl.span, renamable=False))
    fields = fields_of(kind, qualifier)
    for member in decl.body:
        if isinstance(member, ast.Assign):
            _index_assign(index, path, kind, fields.get(member.name), member)
        elif isinstance(member, ast.Entry) and kind == "scenarios":
            index.definitions.append(Definition("scenario", member.name, path, member.name_span, member.span))
        elif isinstance(member, ast.Decl):
            _index_decl(index, path, member)
        elif isinstance(member, ast.Keep | ast.Expect):
            for name, span in _expr_names(member.expr):
                index.references.append(Reference(name, ("dimension",), path, span))


def _index_assign(index: Index, path: Path, kind: str, spec: FieldSpec | None, member: ast.Assign) -> None:
    if kind == "expressions" and member.name not in KINDS["expressions"].fields:
        index.axes.append(member.name)
    if kind == "task" and member.name == "category" and isinstance(member.value, ast.Name):
        index.categories.append(member.value.name)
    if spec is None:
        return
    if spec.type in REF_TYPES:
        for node in _names(member.value):
            index.references.append(Reference(node.name, spec.ref_kinds, path, node.span))
        return
    calls = member.value.items if isinstance(member.value, ast.ListV) else [member.value]
    for call in calls:  # gold(TESTSET), wherever a field takes one (evaluate.domain, quality.calibrate)
        if isinstance(call, ast.Call) and call.func == "gold":
            for node in _names(*call.args):
                index.references.append(Reference(node.name, ("testset",), path, node.span))


def _names(*values: ast.Value) -> Iterator[ast.Name]:
    """The bare names of a value: itself, a list's items, a product's factors."""
    for value in values:
        if isinstance(value, ast.Name):
            yield value
        elif isinstance(value, ast.ListV | ast.Product):
            yield from _names(*value.items)


def _expr_names(expr: ast.Expr) -> Iterator[tuple[str, Span]]:
    """Each name of a keep/expect expression that may be a dimension, with the span of its first part."""
    if isinstance(expr, ast.Ref):
        first = expr.parts[0]
        span = expr.span
        yield first, Span(file=span.file, line=span.line, col=span.col, end_line=span.line,
                          end_col=span.col + len(first))
    elif isinstance(expr, ast.Call):
        for arg in _names(*expr.args):
            yield arg.name, arg.span
    elif isinstance(expr, ast.Not):
        yield from _expr_names(expr.operand)
    elif isinstance(expr, ast.BinOp):
        yield from _expr_names(expr.left)
        yield from _expr_names(expr.right)

"""The cursor's context → completion items: declaration kinds, field names of the enclosing block, enum values,
names of declarations a field may refer to, keep/expect names and template placeholders (dialc/schema.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from lsprotocol import types

from dialc.lsp.context import Cursor, Frame
from dialc.lsp.docs import EXPRESSION_NAMES, MEMBER_DOCS, OUTPUT_TYPES, field_markdown, fields_of, kind_markdown
from dialc.lsp.index import Index
from dialc.schema import (
    CATEGORIES_HINT,
    DIMENSION_FIELDS,
    EVOLVE_PLACEHOLDERS,
    EXPECT_FUNCTIONS,
    EXPECT_METRICS,
    KEEP_FIELDS,
    KINDS,
    OPERATORS,
    TEMPLATE_PLACEHOLDERS,
    FieldSpec,
)

Kind = types.CompletionItemKind
VALUE_FORMS = {  # fields whose values are calls or blocks: (label, text inserted)
    "output": [("text(max = N)", "text(max = 400)"), ("choice([…])", "choice([])"), ('regex("…")', 'regex("")')],
    "domain": [("gold(TESTSET)", "gold()"), ("holdout(FRACTION)", "holdout(0.2)")],
    "gold_testset": [("gold(TESTSET)", "gold()")],
    "suites": [('suite("builtin:general-probe")', 'suite("builtin:general-probe")')],
    "source_field": [('field("…")', 'field("")')],
    "model_method": [("lora", "lora"), ("full", "full"), ("lora { … }", "lora { r = 8  alpha = 16 }")],
}
_PLACEHOLDER = re.compile(r"(?<!\{)\{(\w*)$")


def complete(cursor: Cursor, index: Index, after: str = "") -> list[types.CompletionItem]:
    """Every item that fits at the cursor (the client filters them by the word typed); `after` is the text
    right after the cursor (a placeholder gets its closing brace unless one follows)."""
    role = cursor.role
    if role == "string":
        return _placeholders(cursor, index, after)
    frame = cursor.member_frame
    if role == "member":
        return _members(frame)
    if role == "header" and frame.member[:1] == ["dimension"] and len(frame.member) == 2:
        return [_item(q, Kind.Class, kind_markdown("dimension", q)) for q in DIMENSION_FIELDS]
    if role == "keep_when":
        return [_item("when", Kind.Keyword)]
    if role == "type":
        return [_item(t, Kind.TypeParameter, doc) for t, doc in OUTPUT_TYPES.items()]
    if role == "expr" or (role == "value" and cursor.frame.expr):
        return _expression(cursor, index)
    if role == "key" and cursor.field == "prompts":
        return [_item(op, Kind.EnumMember) for op in OPERATORS]
    if role == "value":
        return _values(cursor, frame, index)
    return []


def _item(label: str, kind: types.CompletionItemKind, doc: str | None = None, insert: str | None = None,
          detail: str | None = None) -> types.CompletionItem:
    documentation = types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc) if doc else None
    return types.CompletionItem(label=label, kind=kind, documentation=documentation, insert_text=insert,
                                detail=detail)


def _members(frame: Frame) -> list[types.CompletionItem]:
    """At the start of a member: kinds at the top level, else the block's fields (and nested forms)."""
    if frame.kind == "top":
        kinds = [_item(k, Kind.Keyword, kind_markdown(k), detail=KINDS[k].doc) for k in KINDS if k != "dimension"]
        return [*kinds, _item("include", Kind.Keyword, MEMBER_DOCS["include"], insert='include ""')]
    kind = frame.words[0] if frame.words else ""
    qualifier = frame.qualifier
    owner = f"{kind} {qualifier}" if qualifier else kind
    items = [_item(name, Kind.Field, field_markdown(name, spec, owner), insert=f"{name} = ", detail=spec.doc)
             for name, spec in fields_of(kind, qualifier).items()]
    spec = KINDS.get(kind)
    for member in spec.members if spec else ():  # nested forms: decl:dimension, decl:output, keep, expect
        word = member.removeprefix("decl:")
        if (word in ("keep", "expect") or member.startswith("decl:")) and all(i.label != word for i in items):
            text = "keep when " if word == "keep" else None
            items.append(_item(word, Kind.Keyword, kind_markdown(word) or MEMBER_DOCS.get(word), insert=text))
    return items


def _field_spec(frame: Frame, name: str | None) -> FieldSpec | None:
    if name is None:
        return None
    kind = frame.words[0] if frame.words else ""
    return fields_of(kind, frame.qualifier).get(name)


def _values(cursor: Cursor, frame: Frame, index: Index) -> list[types.CompletionItem]:
    """The values a field takes: its options, true/false, the names it may refer to, or its call forms."""
    calls = [f.func for f in cursor.frames if f.kind == "call"]
    if calls:  # inside a call: only gold(TESTSET) takes a declared name
        return _names(index, ("testset",)) if calls[-1] == "gold" and cursor.frame.kind == "call" else []
    name = cursor.field
    spec = _field_spec(frame, name)
    if spec is None:
        return []
    if spec.type == "bool":
        return [_item("true", Kind.Value), _item("false", Kind.Value)]
    if spec.options and spec.type in ("choice", "names"):
        return [_item(o, Kind.EnumMember, detail=f"{name}: {spec.doc}") for o in spec.options]
    if spec.type in ("ref", "refs", "product"):
        items = _names(index, spec.ref_kinds)
        if "tasks" in spec.ref_kinds and not index.named(("tasks",)):
            items.append(_item("tasks", Kind.Reference, detail="the task set: every declared task"))
        return items
    if spec.type == "word" or name == "categories":
        return [_item(c, Kind.EnumMember) for c in _unique([*index.categories, *CATEGORIES_HINT])]
    if name == "balance":
        return [_item(k, Kind.EnumMember) for k in _unique(["scenario", "category", *index.axes])]
    return [_item(label, Kind.Snippet, insert=text) for label, text in VALUE_FORMS.get(spec.type, [])]


def _names(index: Index, kinds: Iterable[str]) -> list[types.CompletionItem]:
    seen: dict[str, types.CompletionItem] = {}
    for definition in index.named(kinds):
        where = f"{definition.path.name}:{definition.name_span.line}"
        seen.setdefault(definition.name, _item(definition.name, Kind.Reference, detail=f"{definition.kind} ({where})"))
    return list(seen.values())


def _expression(cursor: Cursor, index: Index) -> list[types.CompletionItem]:
    """Names a keep rule or data test may use: dimensions, score, record fields / metrics and functions."""
    which = cursor.frame.expr or cursor.member_frame.expr
    func = cursor.frame.func if cursor.frame.kind == "call" else None
    dimensions = [d.name for d in index.named(("dimension",))]
    if func in ("mean", "pass_rate"):
        names = [*dimensions, "score"] if func == "mean" else dimensions
        return [_item(n, Kind.Variable) for n in _unique(names)]
    if func == "balance_p":
        return [_item(k, Kind.EnumMember) for k in _unique(["scenario", "category", *index.axes])]
    if which == "expect":  # data tests name metrics of the whole set, dimensions only inside a function
        items = [_item(m, Kind.Constant, EXPRESSION_NAMES.get(m), detail="data-test metric") for m in EXPECT_METRICS]
        items += [_item(f, Kind.Function, EXPRESSION_NAMES.get(f), insert=f"{f}(") for f in EXPECT_FUNCTIONS]
    else:
        items = [_item(n, Kind.Variable, detail="quality dimension") for n in _unique(dimensions)]
        items.append(_item("score", Kind.Variable, EXPRESSION_NAMES["score"], detail="aggregate score (0..1)"))
        items += [_item(f, Kind.Field, EXPRESSION_NAMES.get(f), detail="record field") for f in KEEP_FIELDS]
        items += [_item(f, Kind.Field, detail="expression axis") for f in _unique(index.axes)]
    return items + [_item(op, Kind.Operator) for op in ("and", "or", "not")]


def _placeholders(cursor: Cursor, index: Index, after: str) -> list[types.CompletionItem]:
    """`{name}` placeholders in a prompt template: sample template/system, or evolve prompts."""
    text = cursor.string or ""
    if _PLACEHOLDER.search(text) is None:
        return []
    field = cursor.field
    kind = cursor.member_frame.words[0] if cursor.member_frame.words else ""
    if kind == "sample" and field in ("template", "system"):
        names = [*TEMPLATE_PLACEHOLDERS, *index.axes]
    elif kind == "evolve" and field == "prompts":
        names = list(EVOLVE_PLACEHOLDERS)
    else:
        return []
    close = "" if after.startswith("}") else "}"
    return [_item(n, Kind.Variable, insert=n + close, detail="template placeholder") for n in _unique(names)]


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))

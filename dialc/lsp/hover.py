"""The word under the cursor → its documentation: a declaration kind, a field (type, bounds, default, meaning),
a dimension kind, an output type, or the declaration a name refers to."""

from __future__ import annotations

from dialc.lsp.context import scan, word_at
from dialc.lsp.docs import EXPRESSION_NAMES, MEMBER_DOCS, OUTPUT_TYPES, field_markdown, fields_of, kind_markdown
from dialc.lsp.index import Definition, Index
from dialc.schema import KINDS


def hover_text(text: str, offset: int, index: Index) -> tuple[str, int, int] | None:
    """(Markdown, start, end) for the word at `offset`, or None."""
    start, end = word_at(text, offset)
    if start == end:
        return None
    word = text[start:end]
    cursor = scan(text, start)  # the context in which the word begins
    role, frame = cursor.role, cursor.member_frame
    doc: str | None = None
    if role == "member":
        if frame.kind == "top":
            doc = kind_markdown(word)
        else:
            kind, qualifier = (frame.words[0] if frame.words else ""), frame.qualifier
            spec = fields_of(kind, qualifier).get(word)
            owner = f"{kind} {qualifier}" if qualifier else kind
            doc = field_markdown(word, spec, owner) if spec else MEMBER_DOCS.get(word) or (
                kind_markdown(word) if word in ("dimension",) else None)
    elif role == "header":
        doc = _header(frame.member, word, index)
    elif role == "type":
        doc = OUTPUT_TYPES.get(word)
    elif role in ("value", "expr", "keep_when"):
        expression = bool(cursor.frame.expr or frame.expr)
        doc = _value(cursor.field, frame.words, frame.qualifier, word, index, expression)
    return (doc, start, end) if doc else None


def _header(member: list[str], word: str, index: Index) -> str | None:
    """A word of a declaration header: `dimension NAME QUALIFIER` or `KIND NAME`."""
    if member[:1] == ["dimension"] and len(member) == 2:
        return kind_markdown("dimension", word)
    if len(member) == 1 and member[0] in KINDS:
        return f"{member[0]} `{word}`\n\n{KINDS[member[0]].doc}" + _uses(index, member[0], word)
    return None


def _uses(index: Index, kind: str, name: str) -> str:
    target = next((d for d in index.definitions if d.kind == kind and d.name == name), None)
    if target is None:
        return ""
    count = len(index.references_to(target))
    return f"\n\n{count} reference{'s' if count != 1 else ''}"


def _value(field: str | None, words: list[str], qualifier: str | None, word: str, index: Index,
           expression: bool) -> str | None:
    """A value: the declaration it names, else the field's documentation when it is one of its options."""
    spec = fields_of(words[0], qualifier).get(field or "") if words else None
    kinds = spec.ref_kinds if spec and spec.ref_kinds else None
    found = [d for d in index.definitions if d.name == word and (kinds is None or d.kind in kinds)]
    if found:
        return "\n\n---\n\n".join(_definition(d) for d in found)
    if spec is not None and (word in spec.options or spec.type in ("bool", "model_method")):
        return field_markdown(field or "", spec, f"{words[0]} {qualifier}" if qualifier else words[0])
    return EXPRESSION_NAMES.get(word) if expression else None


def _definition(definition: Definition) -> str:
    where = f"{definition.path.name}:{definition.name_span.line}"
    what = definition.qualifier or definition.kind
    doc = "a scenario of the taxonomy" if definition.kind == "scenario" else (
        kind_markdown(definition.kind, definition.qualifier) or "").split("\n")[0]
    return f"{what} `{definition.name}` (declared at {where})\n\n{doc}"

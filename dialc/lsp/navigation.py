"""Go-to-definition (references and include paths), the document outline, and rename of a declaration with
every reference to it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from lsprotocol import types

from dialc import syntax as ast
from dialc.lsp.context import word_at
from dialc.lsp.convert import Lines
from dialc.lsp.index import Definition, IncludeLink, Index, Reference
from dialc.source import Span

NAME = re.compile(r"[^\W\d]\w*")
_INCLUDE = re.compile(r'include\s+"((?:[^"\\]|\\.)*)"')
Symbol = types.SymbolKind
SYMBOL_KINDS = {
    "pipeline": Symbol.Module, "model": Symbol.Class, "source": Symbol.File, "scenarios": Symbol.Enum,
    "scenario": Symbol.EnumMember, "task": Symbol.Function, "tasks": Symbol.Namespace, "evolve": Symbol.Event,
    "expressions": Symbol.Struct, "sample": Symbol.Array, "label": Symbol.Object, "quality": Symbol.Namespace,
    "dimension": Symbol.Property, "export": Symbol.Package, "finetune": Symbol.Constructor,
    "evaluate": Symbol.Method, "testset": Symbol.File, "study": Symbol.Interface, "output": Symbol.Struct,
}
RESERVED = frozenset(("include", "keep", "when", "expect", "and", "or", "not", "enum", "weight", "true", "false"))


class RenameError(ValueError):
    """A rename that cannot be done, with the reason shown to the user."""


def definitions(index: Index, path: Path, text: str, offset: int, lines: Lines,
                current: bool) -> list[Definition] | Path | None:
    """What the name or include path at `offset` points to: declarations, or an included file. When the text
    does not parse (`current` false) the word under the cursor is looked up by name."""
    include = _include_at(text, offset)
    if include is not None:
        return (path.parent / include).resolve()
    if current:
        line, col = lines.point(offset)
        found = index.at(path, line, col)
        if isinstance(found, Reference):
            return index.resolve(found)
        if isinstance(found, Definition):
            return [found]
        if isinstance(found, IncludeLink):
            return found.target
        return None
    start, end = word_at(text, offset)
    return [d for d in index.definitions if d.name == text[start:end]] if start < end else None


def _include_at(text: str, offset: int) -> str | None:
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line = text[line_start: len(text) if line_end < 0 else line_end]
    for match in _INCLUDE.finditer(line):
        if match.start(1) <= offset - line_start <= match.end(1):
            return match.group(1)
    return None


def document_symbols(module: ast.Module, lines: Lines) -> list[types.DocumentSymbol]:
    return [_symbol(decl, lines) for decl in module.decls]


def _symbol(decl: ast.Decl, lines: Lines) -> types.DocumentSymbol:
    name_word = decl.words[1] if len(decl.words) > 1 else decl.words[0]
    detail = " ".join(w.text for w in decl.words[2:]) if decl.kind == "dimension" else decl.kind
    children: list[types.DocumentSymbol] = []
    for member in decl.body:
        if isinstance(member, ast.Decl):
            children.append(_symbol(member, lines))
        elif isinstance(member, ast.Entry):
            children.append(_leaf(member.name, "scenario", Symbol.EnumMember, member.span, member.name_span, lines))
        elif isinstance(member, ast.SchemaField):
            children.append(_leaf(member.name, "field", Symbol.Field, member.span, member.name_span, lines))
    return types.DocumentSymbol(name=name_word.text, detail=detail, kind=SYMBOL_KINDS.get(decl.kind, Symbol.Object),
                                range=lines.range(decl.span), selection_range=lines.range(name_word.span),
                                children=children or None)


def _leaf(name: str, detail: str, kind: types.SymbolKind, span: Span, name_span: Span,
          lines: Lines) -> types.DocumentSymbol:
    return types.DocumentSymbol(name=name, detail=detail, kind=kind, range=lines.range(span),
                                selection_range=lines.range(name_span))


def rename_target(index: Index, path: Path, line: int, col: int) -> tuple[Definition, Span]:
    """The declaration to rename from the cursor, and the span of the name under it; RenameError otherwise."""
    found = index.at(path, line, col)
    if isinstance(found, Reference):
        targets = index.resolve(found)
        if len(targets) != 1:
            raise RenameError(f"'{found.name}' names no declaration" if not targets else
                              f"'{found.name}' names {len(targets)} declarations")
        target, span = targets[0], found.span
    elif isinstance(found, Definition):
        target, span = found, found.name_span
    else:
        raise RenameError("no declaration or reference to a declaration here")
    if not target.renamable:
        raise RenameError(f"'{target.name}' is named by its kind and cannot be renamed")
    return target, span


def rename_edits(index: Index, target: Definition, new_name: str,
                 lines_of: Callable[[Path], Lines]) -> dict[Path, list[types.TextEdit]]:
    """Edits per file: the declaration's name and every reference to it."""
    if not NAME.fullmatch(new_name) or new_name in RESERVED:
        raise RenameError(f"'{new_name}' is not a valid name (a letter or _, then letters, digits or _)")
    clash = [d for d in index.definitions if d.name == new_name and d.kind == target.kind]
    if clash:
        raise RenameError(f"a {target.kind} named '{new_name}' is already declared")
    spans = [(target.path, target.name_span), *((r.path, r.span) for r in index.references_to(target))]
    edits: dict[Path, list[types.TextEdit]] = {}
    for path, span in spans:
        edits.setdefault(path, []).append(types.TextEdit(range=lines_of(path).range(span), new_text=new_name))
    return edits

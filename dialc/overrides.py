"""`--set kind.name.field=value` strings → modified AST modules (the last assignment wins)."""

from __future__ import annotations

from dialc import syntax as ast
from dialc.diagnostics import Diagnostics
from dialc.grammar import parser
from dialc.grammar.api import LarkError
from dialc.schema import KINDS
from dialc.source import Span
from dialc.transformer import to_value
from dialc.values import suggest

OVERRIDE_FILE = "<--set>"


def apply_overrides(modules: list[ast.Module], overrides: list[str], diags: Diagnostics) -> list[ast.Module]:
    """Return modules with each override applied to the declaration it names."""
    for text in overrides:
        modules = _apply_one(modules, text, diags)
    return modules


def _apply_one(modules: list[ast.Module], text: str, diags: Diagnostics) -> list[ast.Module]:
    where = Span(file=OVERRIDE_FILE, line=1, col=1, end_line=1, end_col=len(text) + 1)
    path, sep, raw = text.partition("=")
    parts = path.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        diags.report("bad-override", f"'{text}': expected KIND.NAME.FIELD=VALUE, e.g. sample.prompts.count=40",
                     where)
        return modules
    kind, field = parts[0], parts[-1]
    name = ".".join(parts[1:-1]) or None
    targets = [d for m in modules for d in m.decls if d.kind == kind and name in (None, d.name or kind)]
    if len(targets) != 1:
        known = sorted({".".join(w.text for w in d.words[:2]) for m in modules for d in m.decls})
        reason = "matches no declaration" if not targets else "is ambiguous: add the declaration's name"
        diags.report("bad-override", f"'{path}' {reason}", where, notes=suggest(".".join(parts[:-1]), known))
        return modules
    spec = KINDS.get(kind)
    if spec is not None and field not in spec.fields and not spec.open_fields:
        diags.report("bad-override", f"'{path}': {kind} has no field '{field}'", where,
                     notes=suggest(field, list(spec.fields)))
        return modules
    text_field = spec is not None and field in spec.fields and spec.fields[field].type in ("str", "regex")
    value = _parse_value(raw.strip(), text, diags, where, text_field)
    if value is None:
        return modules
    return [_replace(m, targets[0], field, value, where) for m in modules]


def _parse_value(raw: str, text: str, diags: Diagnostics, where: Span, text_field: bool) -> ast.Value | None:
    """A value in .dial syntax; for a text field bare text is the text itself (quote it for escapes)."""
    if text_field and not raw.startswith('"'):  # --set sample.prompts.template={dialogue} Reply briefly.
        return ast.Str(span=where, value=raw)
    try:
        tree = parser().parse(raw, start="value")
    except LarkError:
        diags.report("bad-override", f"'{text}': cannot parse the value '{raw}'", where)
        return None
    local = Diagnostics()
    value = to_value(tree, OVERRIDE_FILE, local)
    for problem in local.items:
        diags.report("bad-override", f"'{text}': {problem.message}", where)
    return value if not local.has_errors() else None


def _replace(module: ast.Module, target: ast.Decl, field: str, value: ast.Value, where: Span) -> ast.Module:
    if target not in module.decls:
        return module
    body = [m for m in target.body if not (isinstance(m, ast.Assign) and m.name == field)]
    body.append(ast.Assign(span=where, name=field, name_span=where, value=value))
    new_decl = target.model_copy(update={"body": body})
    decls = [new_decl if d is target else d for d in module.decls]
    return module.model_copy(update={"decls": decls})

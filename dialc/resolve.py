"""AST modules → IR: declaration kinds, names, fields and values checked against dialc/schema.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dialc import syntax as ast
from dialc.diagnostics import Diagnostics, Note
from dialc.ir import IR, BinaryIR, CallIR, DeclIR, EntryIR, ExprIR, LiteralIR, NameIR, NotIR, RefIR, RuleIR
from dialc.outputs import output_from_block, output_from_call
from dialc.schema import DIMENSION_FIELDS, KINDS, FieldSpec, KindSpec
from dialc.values import INVALID, Coercer, suggest

METHOD_FIELDS = {  # lora { … } / full { … } hyper-parameters
    "r": FieldSpec("int", "LoRA rank", lo=1, hi=1024),
    "alpha": FieldSpec("float", "LoRA scaling numerator (scale = alpha / r)", lo=0.001, hi=100000),
    "dropout": FieldSpec("float", "dropout on the LoRA input", lo=0, hi=0.99),
    "targets": FieldSpec("names", "module names to adapt, e.g. [q_proj, v_proj]"),
}


def resolve(modules: list[ast.Module], main_file: str, diags: Diagnostics) -> IR:
    """Turn every declaration of every module into a DeclIR, reporting what does not fit."""
    ir = IR(file=main_file, spec_dir=str(Path(main_file).parent))
    seen: dict[tuple[str, str], DeclIR] = {}
    for module in modules:
        for decl in module.decls:
            resolved = _resolve_decl(decl, diags)
            if resolved is None:
                continue
            if _is_duplicate(resolved, seen, diags):
                continue
            seen[(resolved.kind, resolved.name)] = resolved
            ir.decls.append(resolved)
    fill_implicit_refs(ir, diags)
    return ir


def lower_expr(expr: ast.Expr) -> ExprIR:
    """A keep/expect expression of the syntax tree → its IR form (the IR keeps no syntax nodes)."""
    if isinstance(expr, ast.Num | ast.Str):
        return LiteralIR(value=expr.value, span=expr.span)
    if isinstance(expr, ast.Ref):
        return NameIR(parts=tuple(expr.parts), span=expr.span)
    if isinstance(expr, ast.Not):
        return NotIR(operand=lower_expr(expr.operand), span=expr.span)
    if isinstance(expr, ast.Call):
        return CallIR(func=expr.func, args=tuple(_call_arg(a) for a in expr.args), span=expr.span)
    return BinaryIR(op=expr.op, left=lower_expr(expr.left), right=lower_expr(expr.right), span=expr.span)


def _call_arg(value: ast.Value) -> NameIR | LiteralIR:
    if isinstance(value, ast.Name):
        return NameIR(parts=(value.name,), span=value.span)
    literal = value.value if isinstance(value, ast.Num | ast.Str) else str(getattr(value, "value", ""))
    return LiteralIR(value=literal, span=value.span)


# fields whose default is "the only declaration of this kind"
IMPLICIT_FROM = {("quality", "from"): "label", ("finetune", "data"): "quality", ("export", "from"): "quality"}


def fill_implicit_refs(ir: IR, diags: Diagnostics) -> None:
    """Fill `from`-style fields that default to the only candidate; complain when none or many."""
    for decl in ir.decls:
        for (kind, field), target_kind in IMPLICIT_FROM.items():
            if decl.kind != kind or field in decl.fields or field in decl.field_spans:
                continue
            candidates = ir.of_kind(target_kind)
            if len(candidates) == 1:
                decl.fields[field] = RefIR(name=candidates[0].name, span=decl.name_span)
            elif not candidates and kind == "finetune":
                diags.report("no-training-data", f"finetune '{decl.name}' has no data: declare a quality block "
                             "(or set data = QUALITY)", decl.name_span)
            elif not candidates:
                diags.report("missing-field", f"{kind} '{decl.name}' needs '{field}': no {target_kind} is declared",
                             decl.name_span)
            else:
                names = ", ".join(c.name for c in candidates)
                diags.report("missing-field", f"{kind} '{decl.name}' needs '{field}': choose one of {names}",
                             decl.name_span)


def _is_duplicate(decl: DeclIR, seen: dict[tuple[str, str], DeclIR], diags: Diagnostics) -> bool:
    spec = KINDS[decl.kind]
    if spec.singleton:
        first = next((d for (k, _), d in seen.items() if k == decl.kind), None)
        if first is not None:
            diags.report("duplicate-singleton", f"'{decl.kind}' may be declared only once", decl.name_span,
                         notes=[Note("first declared here", first.name_span)])
            return True
    first = seen.get((decl.kind, decl.name))
    if first is not None:
        diags.report("duplicate-name", f"{decl.kind} '{decl.name}' is already declared", decl.name_span,
                     notes=[Note("first declared here", first.name_span)])
        return True
    return False


def _resolve_decl(decl: ast.Decl, diags: Diagnostics) -> DeclIR | None:
    kind_word = decl.words[0]
    spec = KINDS.get(decl.kind)
    if spec is None or decl.kind == "dimension":
        top_kinds = [k for k in KINDS if k != "dimension"]
        diags.report("unknown-declaration", f"unknown declaration kind '{decl.kind}'", kind_word.span,
                     notes=suggest(decl.kind, top_kinds))
        return None
    return _build(decl, spec, diags)


def _build(decl: ast.Decl, spec: KindSpec, diags: Diagnostics) -> DeclIR | None:
    words = decl.words
    if spec.named and len(words) < 2:
        diags.report("missing-name", f"{decl.kind} needs a name: `{decl.kind} NAME {{ … }}`", words[0].span)
        return None
    max_words = (2 if spec.named or len(words) > 1 else 1) + (1 if spec.qualifiers else 0)
    if spec.qualifiers and len(words) < 3:
        diags.report("missing-name", f"{decl.kind} needs a name and a kind ({', '.join(spec.qualifiers)})",
                     words[-1].span)
        return None
    if len(words) > max(max_words, 2 if not spec.qualifiers else 3):
        diags.report("extra-words", f"unexpected '{words[-1].text}' in the {decl.kind} header", words[-1].span)
        return None
    name_word = words[1] if len(words) > 1 else words[0]
    ir = DeclIR(kind=decl.kind, name=name_word.text, span=decl.span, name_span=name_word.span)
    fields = spec.fields
    if spec.qualifiers:
        qualifier = words[2]
        if qualifier.text not in spec.qualifiers:
            diags.report("bad-choice", f"{decl.kind} kind must be one of {', '.join(spec.qualifiers)}; "
                         f"got '{qualifier.text}'", qualifier.span, notes=suggest(qualifier.text, spec.qualifiers))
            return None
        ir.qualifier = qualifier.text
        fields = DIMENSION_FIELDS[qualifier.text]
    _fill_members(ir, decl, spec, fields, diags)
    _fill_defaults(ir, fields, diags)
    return ir


def _fill_members(ir: DeclIR, decl: ast.Decl, spec: KindSpec, fields: dict[str, FieldSpec],
                  diags: Diagnostics) -> None:
    coercer = Coercer(diags)
    for member in decl.body:
        if isinstance(member, ast.Assign):
            _assign(ir, member, spec, fields, coercer, diags)
        elif isinstance(member, ast.Entry) and "entry" in spec.members:
            weight = member.weight.value if member.weight is not None else 1.0
            if member.weight is not None and weight < 0:
                diags.report("bad-weight", f"weight of scenario '{member.name}' is negative", member.weight.span)
            ir.entries.append(EntryIR(name=member.name, description=member.description.value,
                                      weight=float(weight), span=member.name_span))
        elif isinstance(member, ast.Decl) and f"decl:{member.kind}" in spec.members:
            _child(ir, member, diags)
        elif isinstance(member, ast.Keep) and "keep" in spec.members:
            ir.keep.append(RuleIR(expr=lower_expr(member.expr), span=member.span))
        elif isinstance(member, ast.Expect) and "expect" in spec.members:
            ir.expects.append(RuleIR(expr=lower_expr(member.expr), span=member.span))
        else:
            what = {"entry": "a scenario entry", "schema_field": "an output-schema field", "keep": "a keep rule",
                    "expect": "an expect test", "decl": "a nested declaration"}[member.member]
            diags.report("misplaced-member", f"{what} cannot appear in a {decl.kind} block", member.span)
    if "entry" in spec.members and ir.entries and not any(e.weight for e in ir.entries):
        diags.report("bad-weight", "all scenario weights are zero: nothing can be drawn", ir.name_span)


def _assign(ir: DeclIR, member: ast.Assign, spec: KindSpec, fields: dict[str, FieldSpec],
            coercer: Coercer, diags: Diagnostics) -> None:
    if member.name in ir.field_spans:
        diags.report("duplicate-field", f"field '{member.name}' is set twice", member.name_span,
                     notes=[Note("first set here", ir.field_spans[member.name])])
        return
    field_spec = fields.get(member.name)
    if field_spec is None and spec.open_fields and not ir.qualifier:
        field_spec = FieldSpec(spec.open_fields, "expression axis")
    if field_spec is None:
        where = f"{ir.kind} ({ir.qualifier})" if ir.qualifier else ir.kind
        diags.report("unknown-field", f"{where} has no field '{member.name}'", member.name_span,
                     notes=suggest(member.name, list(fields)))
        return
    ir.field_spans[member.name] = member.value.span
    if field_spec.type == "output":
        value: Any = output_from_call(member.value, diags)
        value = INVALID if value is None else value
    else:
        value = coercer.coerce(member.name, field_spec, member.value)
    if field_spec.type == "model_method" and value is not INVALID:
        value = _check_method(value, member.value, coercer, diags)
    if value is not INVALID:
        ir.fields[member.name] = value


def _check_method(method: dict[str, Any], node: ast.Value, coercer: Coercer, diags: Diagnostics) -> Any:
    if not isinstance(node, ast.BlockV):
        return method
    valid = True  # check every member, so one pass reports all of the block's problems
    for member in node.body:
        if not isinstance(member, ast.Assign):
            continue
        spec = METHOD_FIELDS.get(member.name)
        if spec is None:
            diags.report("unknown-field", f"{node.kind} has no field '{member.name}'", member.name_span,
                         notes=suggest(member.name, list(METHOD_FIELDS)))
            valid = False
        elif coercer.coerce(member.name, spec, member.value) is INVALID:
            valid = False
    return method if valid else INVALID


def _child(ir: DeclIR, member: ast.Decl, diags: Diagnostics) -> None:
    if member.kind == "output":
        if "output" in ir.field_spans:
            diags.report("duplicate-field", "field 'output' is set twice", member.span)
            return
        if len(member.words) > 1:
            diags.report("extra-words", f"unexpected '{member.words[1].text}' after output", member.words[1].span)
        ir.field_spans["output"] = member.span
        ir.fields["output"] = output_from_block(member.body, diags)
        return
    child = _build(member, KINDS[member.kind], diags)
    if child is None:
        return
    clash = next((c for c in ir.children if c.name == child.name), None)
    if clash is not None:
        diags.report("duplicate-name", f"{child.kind} '{child.name}' is already declared", child.name_span,
                     notes=[Note("first declared here", clash.name_span)])
        return
    ir.children.append(child)


def _fill_defaults(ir: DeclIR, fields: dict[str, FieldSpec], diags: Diagnostics) -> None:
    for name, spec in fields.items():
        if name in ir.fields:
            continue
        if name in ir.field_spans:  # set but invalid: already reported
            continue
        if spec.required:
            diags.report("missing-field", f"{ir.kind} '{ir.name}' needs field '{name}' ({spec.doc})",
                         ir.name_span)
        elif spec.type == "model_method" and spec.default is not None:  # `lora`, as if written out
            ir.fields[name] = {"kind": spec.default}
        elif spec.type == "ref" and spec.default is not None:  # `from = tasks` by default: a real reference
            ir.fields[name] = RefIR(name=spec.default, span=ir.name_span)
        elif spec.default is not None:
            ir.fields[name] = spec.default

"""Task output declarations → constraint dicts (JSON schema, text, choice, regex), with bound checks."""

from __future__ import annotations

import re
from typing import Any

from dialc import syntax as ast
from dialc.diagnostics import Diagnostics, Note
from dialc.regex_bounds import warn_unbounded
from dialc.values import describe, suggest

SCALARS = {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}
TYPE_NAMES = (*SCALARS, "enum")


def output_from_block(fields: list[ast.Member], diags: Diagnostics) -> dict[str, Any]:
    """`output { a: int [0..9]  b: str? (max 40) }` → a closed JSON-schema constraint."""
    properties: dict[str, Any] = {}
    for member in fields:
        if not isinstance(member, ast.SchemaField):
            diags.report("misplaced-member", "an output block holds only `name: type` fields", member.span)
            continue
        if member.name in properties:
            diags.report("duplicate-field", f"output field '{member.name}' is declared twice", member.name_span)
            continue
        schema = type_schema(member.type, member.name, diags)
        if schema is not None:
            properties[member.name] = schema
    schema_obj = {"type": "object", "properties": properties, "required": list(properties),
                  "additionalProperties": False}
    return {"kind": "json", "schema": schema_obj}


def type_schema(t: ast.TypeExpr, field: str, diags: Diagnostics) -> dict[str, Any] | None:
    """One schema field type → its JSON schema, warning when strings/integers/lists are unbounded."""
    if t.base == "list":
        assert t.item is not None
        item = type_schema(t.item, field, diags)
        if item is None:
            return None
        schema: dict[str, Any] = {"type": "array", "items": item}
        _apply_keywords(schema, t, field, diags, {"max": "maxItems", "min": "minItems"})
        if "maxItems" not in schema:
            diags.report("unbounded-output", f"list '{field}' has no (max N): add one", t.span)
    elif t.base == "enum":
        schema = {"type": "string", "enum": list(t.options)}
    elif t.base in SCALARS:
        schema = _scalar(t, field, diags)
    else:
        diags.report("bad-schema-type", f"unknown type '{t.base}' for output field '{field}' "
                     f"(types: {', '.join(TYPE_NAMES)}, [type])", t.span, notes=suggest(t.base, TYPE_NAMES))
        return None
    return _nullable(schema) if t.optional else schema


def _scalar(t: ast.TypeExpr, field: str, diags: Diagnostics) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": SCALARS[t.base]}
    if t.lo is not None and t.hi is not None:
        if t.base not in ("int", "float"):
            diags.report("bad-schema-type", f"a [lo..hi] range only applies to numbers, not {t.base}", t.span)
        elif t.lo.value > t.hi.value:
            diags.report("bad-schema-type", f"range [{t.lo.text}..{t.hi.text}] of '{field}' is reversed", t.span)
        else:
            schema["minimum"], schema["maximum"] = t.lo.value, t.hi.value
    if t.base == "str":
        _apply_keywords(schema, t, field, diags, {"max": "maxLength", "min": "minLength"})
        if "maxLength" not in schema:
            diags.report("unbounded-output", f"string '{field}' has no (max N): generation may run away", t.span)
    elif t.keywords:
        _apply_keywords(schema, t, field, diags, {"max": "maximum", "min": "minimum"})
    if t.base == "int" and t.lo is None and ("minimum" not in schema or "maximum" not in schema):
        diags.report("unbounded-output", f"integer '{field}' has no [lo..hi] range: add bounds", t.span)
    return schema


def _apply_keywords(schema: dict[str, Any], t: ast.TypeExpr, field: str, diags: Diagnostics,
                    allowed: dict[str, str]) -> None:
    for word, num in t.keywords.items():
        if word not in allowed:
            diags.report("bad-schema-type", f"'({word} …)' does not apply to '{field}' "
                         f"(use {', '.join(allowed)})", num.span, notes=suggest(word, list(allowed)))
        elif isinstance(num.value, float) or num.value < 0:
            diags.report("bad-schema-type", f"({word} {num.text}) must be a non-negative integer", num.span)
        else:
            schema[allowed[word]] = num.value


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    result = dict(schema)
    if "enum" in result:
        result["enum"] = [*result["enum"], None]
    result["type"] = [result["type"], "null"]
    return result


def output_from_call(value: ast.Value, diags: Diagnostics) -> dict[str, Any] | None:
    """`text(max = 600)`, `choice([a, b])`, `regex("…")` → constraint dicts."""
    if not isinstance(value, ast.Call) or value.func not in ("text", "choice", "regex"):
        diags.report("type-mismatch", "output expects a schema block { … }, text(max = N), choice([…]) or "
                     f"regex(\"…\"); got {describe(value)}", value.span)
        return None
    if value.func == "text":
        return _text(value, diags)
    if value.func == "choice":
        return _choice(value, diags)
    return _regex(value, diags)


def _text(value: ast.Call, diags: Diagnostics) -> dict[str, Any] | None:
    limits = {p.key: p.value for p in value.kwargs}
    if value.args:  # text(350): a bound the parser would otherwise ignore
        shown = getattr(value.args[0], "text", "N")
        diags.report("type-mismatch", "text() takes its bound by name: text(max = N) (characters)",
                     value.args[0].span, notes=[Note(f"did you mean text(max = {shown})?")])
        return None
    for pair in value.kwargs:
        if pair.key != "max":  # text(min = 3), text(maxlen = 300): a setting that would do nothing
            hint = [Note(f"did you mean text(max = {getattr(pair.value, 'text', 'N')})?")]
            diags.report("type-mismatch", f"text() takes one argument, max = N (characters): {pair.key} "
                         "would be ignored", pair.key_span, notes=hint if pair.key.startswith("max") else [])
            return None
    max_chars = limits.get("max")
    if not isinstance(max_chars, ast.Num) or isinstance(max_chars.value, float) or max_chars.value < 1:
        diags.report("unbounded-output", "text output needs a positive integer bound: text(max = N)", value.span)
        return {"kind": "text", "max_chars": 2000}
    return {"kind": "text", "max_chars": max_chars.value}


def _choice(value: ast.Call, diags: Diagnostics) -> dict[str, Any] | None:
    items = value.args[0].items if value.args and isinstance(value.args[0], ast.ListV) else []
    options = [i.name if isinstance(i, ast.Name) else i.value for i in items if isinstance(i, ast.Name | ast.Str)]
    if len(options) < 2 or len(set(options)) != len(options):
        diags.report("type-mismatch", "choice([…]) needs at least two distinct options", value.span)
        return None
    return {"kind": "choice", "options": [str(o) for o in options]}


def _regex(value: ast.Call, diags: Diagnostics) -> dict[str, Any] | None:
    if len(value.args) != 1 or not isinstance(value.args[0], ast.Str):
        diags.report("type-mismatch", 'regex(…) takes one string pattern', value.span)
        return None
    try:
        re.compile(value.args[0].value)
    except re.error as exc:
        diags.report("bad-regex", f"invalid regular expression: {exc}", value.args[0].span)
        return None
    warn_unbounded(value.args[0].value, value.args[0].span, diags)
    return {"kind": "regex", "pattern": value.args[0].value}

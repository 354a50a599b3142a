"""Decoded text + Constraint → (ok, parsed value, error): every output is checked after decoding.

`schema_errors` validates JSON values against the JSON-schema subset dialc emits (types, bounds,
required, additionalProperties, enum/const, string/array lengths, patterns, anyOf/oneOf/allOf,
local `$ref`s); no JSON-schema library is a dependency of the runtime.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dialc_runtime.models.base import Constraint

Validated = tuple[bool, Any, str | None]  # ok, value, error

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def validate_output(text: str, constraint: Constraint) -> Validated:
    """Check `text` against `constraint`; the value is the parsed JSON / option / text."""
    if constraint.kind == "json":
        return _validate_json(text, constraint.schema or {})
    if constraint.kind == "choice":
        if text in constraint.options:
            return True, text, None
        return False, None, f"not one of the options {list(constraint.options)!r}: {text!r}"
    if constraint.kind == "regex":
        return _validate_regex(text, constraint.pattern or "")
    if constraint.max_chars is not None and len(text) > constraint.max_chars:
        return False, None, f"text longer than max_chars={constraint.max_chars} ({len(text)})"
    return True, text, None


def _validate_json(text: str, schema: dict[str, Any]) -> Validated:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return False, None, f"invalid JSON: {exc}"
    errors = schema_errors(value, schema)
    if errors:
        return False, value, "schema violation: " + "; ".join(errors[:5])
    return True, value, None


def _validate_regex(text: str, pattern: str) -> Validated:
    try:
        compiled = re.compile(pattern)
    except re.error:  # a Rust-regex-only pattern: the decoding grammar already enforced it
        return True, text, None
    if compiled.fullmatch(text):
        return True, text, None
    return False, None, f"does not match /{pattern}/: {text!r}"


def schema_errors(value: Any, schema: dict[str, Any] | bool, path: str = "$") -> list[str]:
    """Every violation of `schema` by `value`, each prefixed with its JSON path (empty = valid)."""
    return _errors(value, schema, path, schema if isinstance(schema, dict) else {})


def _errors(value: Any, schema: dict[str, Any] | bool, path: str, root: dict[str, Any]) -> list:
    if schema is True:
        return []
    if schema is False:
        return [f"{path}: not allowed"]
    if "$ref" in schema:
        target = _deref(schema["$ref"], root)
        if target is None:
            return [f"{path}: cannot resolve $ref {schema['$ref']!r}"]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    errors = _type_errors(value, schema, path)
    if errors:
        return errors
    errors += _combinator_errors(value, schema, path, root)
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path, root)
    elif isinstance(value, list):
        errors += _array_errors(value, schema, path, root)
    elif isinstance(value, str):
        errors += _string_errors(value, schema, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        errors += _number_errors(value, schema, path)
    return errors


def _deref(ref: str, root: dict[str, Any]) -> dict[str, Any] | None:
    """The schema a local `#/...` reference points at, or None."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node if isinstance(node, dict) else None


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name not in ("boolean",):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def _type_errors(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    errors = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, n) for n in names):
            errors.append(f"{path}: expected {'/'.join(names)}, got {json.dumps(value)[:40]}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {json.dumps(value)[:40]} not in enum {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {json.dumps(schema['const'])}")
    return errors


def _combinator_errors(value: Any, schema: dict[str, Any], path: str, root: dict[str, Any]) -> list[str]:
    errors = []
    for sub in schema.get("allOf", []):
        errors += _errors(value, sub, path, root)
    if "anyOf" in schema and all(_errors(value, s, path, root) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema:
        matching = sum(not _errors(value, s, path, root) for s in schema["oneOf"])
        if matching != 1:
            errors.append(f"{path}: matches {matching} of oneOf (expected exactly 1)")
    return errors


def _object_errors(value: dict[str, Any], schema: dict[str, Any], path: str, root: dict[str, Any]) -> list[str]:
    props: dict[str, Any] = schema.get("properties", {})
    required = schema.get("required", [])
    errors = [f"{path}: missing required '{k}'" for k in required if k not in value]
    extra_schema = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            errors += _errors(item, props[key], f"{path}.{key}", root)
        elif extra_schema is False:
            errors.append(f"{path}: unexpected property '{key}'")
        else:
            errors += _errors(item, extra_schema, f"{path}.{key}", root)
    if len(value) < schema.get("minProperties", 0):
        errors.append(f"{path}: fewer than {schema['minProperties']} properties")
    if len(value) > schema.get("maxProperties", len(value)):
        errors.append(f"{path}: more than {schema['maxProperties']} properties")
    return errors


def _array_errors(value: list[Any], schema: dict[str, Any], path: str, root: dict[str, Any]) -> list[str]:
    errors = []
    if len(value) < schema.get("minItems", 0):
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if len(value) > schema.get("maxItems", len(value)):
        errors.append(f"{path}: more than {schema['maxItems']} items")
    prefix = schema.get("prefixItems", [])
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items", True)
        errors += _errors(item, sub, f"{path}[{i}]", root)
    if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(value):
        errors.append(f"{path}: items are not unique")
    return errors


def _string_errors(value: str, schema: dict[str, Any], path: str) -> list[str]:
    errors = []
    if len(value) < schema.get("minLength", 0):
        errors.append(f"{path}: shorter than {schema['minLength']} characters")
    if len(value) > schema.get("maxLength", len(value)):
        errors.append(f"{path}: longer than {schema['maxLength']} characters")
    pattern = schema.get("pattern")
    if pattern is not None:
        try:
            if not re.search(pattern, value):
                errors.append(f"{path}: does not match /{pattern}/")
        except re.error:
            pass  # a Rust-regex-only pattern: enforced by the decoding grammar
    return errors


def _number_errors(value: float, schema: dict[str, Any], path: str) -> list[str]:
    errors = []
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} < minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value} > maximum {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        errors.append(f"{path}: {value} <= exclusiveMinimum {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        errors.append(f"{path}: {value} >= exclusiveMaximum {schema['exclusiveMaximum']}")
    step = schema.get("multipleOf")
    if step and (value / step) != int(value / step):
        errors.append(f"{path}: {value} is not a multiple of {step}")
    return errors

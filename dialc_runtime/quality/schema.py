"""(value, output constraint) → violations: the JSON-schema subset the compiler emits, and more."""

from __future__ import annotations

import math
import re
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
MAX_ERRORS = 10  # enough to explain a record; a runaway answer would otherwise list hundreds


def check_output(value: Any, constraint: dict[str, Any]) -> list[str]:
    """Violations of a label value against its task's output constraint (empty list = valid)."""
    kind = constraint.get("kind", "text")
    if kind == "json":
        return validate(value, constraint.get("schema") or {})
    if kind == "choice":
        options = [str(o) for o in constraint.get("options", [])]
        return [] if str(value) in options else [f"{value!r} is not one of {options}"]
    if kind == "regex":
        pattern = constraint.get("pattern") or ""
        if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
            return [f"{value!r} does not match /{pattern}/"]
        return []
    if not isinstance(value, str):
        return [f"expected text, got {_type_name(value)}"]
    limit = constraint.get("max_chars")
    if limit is not None and len(value) > limit:
        return [f"text has {len(value)} characters, more than {limit}"]
    return []


def validate(
    value: Any, schema: dict[str, Any], path: str = "$", root: dict[str, Any] | None = None
) -> list[str]:
    """JSON-schema validation of type/enum/const/bounds/lengths/properties/items/anyOf/$ref."""
    root = schema if root is None else root
    if isinstance(schema.get("$ref"), str):
        schema = _resolve(schema["$ref"], root)
    errors: list[str] = []
    if "anyOf" in schema or "oneOf" in schema:
        branches = schema.get("anyOf") or schema.get("oneOf") or []
        if not any(not validate(value, b, path, root) for b in branches):
            errors.append(f"{path}: {_short(value)} matches none of the allowed forms")
        return errors
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, t) for t in allowed):
            return [f"{path}: expected {' or '.join(allowed)}, got {_type_name(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {_short(value)} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {_short(value)} is not {schema['const']!r}")
    errors += _check_number(value, schema, path)
    errors += _check_string(value, schema, path)
    if isinstance(value, dict):
        errors += _check_object(value, schema, path, root)
    if isinstance(value, list):
        errors += _check_array(value, schema, path, root)
    return errors[:MAX_ERRORS]


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    """A local reference such as "#/$defs/Requirements" (pydantic's nested models)."""
    node: Any = root
    for part in ref.removeprefix("#/").split("/") if ref.startswith("#/") else []:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) and node is not root else {}


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False  # True is an int in Python, never in JSON
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    if name == "number" and isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, _TYPES.get(name, (object,)))


def _check_number(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    errors = []
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        errors.append(f"{path}: {value} is not above {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        errors.append(f"{path}: {value} is not below {schema['exclusiveMaximum']}")
    return errors


def _check_string(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if not isinstance(value, str):
        return []
    errors = []
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: {len(value)} characters, more than maxLength {schema['maxLength']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: {len(value)} characters, under minLength {schema['minLength']}")
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        errors.append(f"{path}: {_short(value)} does not match /{schema['pattern']}/")
    return errors


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], path: str, root: dict[str, Any]
) -> list[str]:
    properties: dict[str, Any] = schema.get("properties", {})
    errors = [f"{path}: missing required field {k!r}" for k in schema.get("required", [])
              if k not in value]  # fmt: skip
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            errors += validate(item, properties[key], f"{path}.{key}", root)
        elif extra is False:
            errors.append(f"{path}: unexpected field {key!r}")
        elif isinstance(extra, dict):
            errors += validate(item, extra, f"{path}.{key}", root)
    return errors


def _check_array(
    value: list[Any], schema: dict[str, Any], path: str, root: dict[str, Any]
) -> list[str]:
    errors = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{path}: {len(value)} items, fewer than minItems {schema['minItems']}")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: {len(value)} items, more than maxItems {schema['maxItems']}")
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            errors += validate(item, items, f"{path}[{i}]", root)
    return errors


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

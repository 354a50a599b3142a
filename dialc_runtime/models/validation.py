"""(text or parsed value) + output constraint → violations: the one output validator of the runtime.

The backends check every decoded output with `validate_output`; the `schema` quality rule checks a
label's stored value with `check_output`; both end in `schema_errors`, so they cannot disagree.
`schema_errors` covers the JSON-schema subset dialc emits and a little more (types, bounds,
multipleOf, required, additionalProperties, enum/const, string/array lengths, uniqueItems, patterns,
allOf/anyOf/oneOf/not, local `$ref`s); no JSON-schema library is a dependency of the runtime.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from regex import error as regex_error

from dialc_runtime import regexes
from dialc_runtime.models.base import Constraint

Validated = tuple[bool, Any, str | None]  # ok, value, error
MAX_ERRORS = 10  # enough to explain an output; a runaway answer would otherwise list hundreds

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
    """Check decoded `text` against `constraint`; the value is the parsed JSON / option / text."""
    if constraint.kind != "json":
        errors = check_output(text, constraint)
        return (False, None, errors[0]) if errors else (True, text, None)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError, or NaN / Infinity (not JSON)
        return False, None, f"invalid JSON: {exc}"
    errors = schema_errors(value, constraint.schema or {})
    if errors:
        return False, value, "schema violation: " + "; ".join(errors)
    return True, value, None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def check_output(value: Any, constraint: Constraint | Mapping[str, Any]) -> list[str]:
    """Violations of a parsed value against an output constraint (a Constraint or the plan's
    constraint dict); empty = valid."""
    if not isinstance(constraint, Constraint):
        constraint = Constraint.from_dict(constraint)
    if constraint.kind == "json":
        return schema_errors(value, constraint.schema or {})
    if not isinstance(value, str):
        return [f"expected text, got {_describe(value)}"]
    if constraint.kind == "choice":
        if value in constraint.options:
            return []
        return [f"{_short(value)} is not one of the options {_short(list(constraint.options), 200)}"]
    if constraint.kind == "regex":
        return _regex_errors(value, constraint.pattern or "")
    if constraint.max_chars is not None and len(value) > constraint.max_chars:
        return [f"text has {len(value)} characters, more than max_chars {constraint.max_chars}"]
    if constraint.max_chars is not None and len(value) >= constraint.max_chars and not ends_sentence(value):
        return [f"truncated: the text fills its bound of {constraint.max_chars} characters and stops "
                f"mid-sentence ({_short(value[-20:])})"]
    return []


# -- bounded free text: an answer ends at a sentence end, or it was cut off ---------------------------
KEEP_SHARE = 0.5  # an answer at its bound is cut back to a sentence end only within the bound's last half
_LATIN_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)")  # a full stop needs a space or the end after it
_CJK_END = re.compile(r"[。！？]+[”’」』）)]*")
_NOT_AN_END = re.compile(r"(?:^|\s)(?:mr|mrs|ms|dr|st|vs|e\.g|i\.e|p\.s|no|\d+)\.$", re.I)  # "Mr.", "1.", "P.S."


def sentence_ends(text: str) -> list[int]:
    """The offsets just after each sentence end of `text` (abbreviations and list numbers excluded)."""
    ends = [m.end() for m in _CJK_END.finditer(text)]
    ends += [m.end() for m in _LATIN_END.finditer(text) if not _NOT_AN_END.search(text[: m.start() + 1])]
    return sorted(ends)


def ends_sentence(text: str) -> bool:
    """Whether a text ends where a sentence ends ("… a month." yes, "… I'll file a 2" no)."""
    stripped = text.rstrip()
    return bool(stripped) and stripped.endswith(tuple("。！？”’」』）)\"'.!?…")) and (
        sentence_ends(stripped)[-1:] == [len(stripped)])


def settle_text(text: str, constraint: Constraint, limit: str | None) -> tuple[str, str | None]:
    """A bounded text answer → (answer, None), or (text, "truncated: …") when it was cut mid-sentence.

    `limit` names the budget that stopped decoding (e.g. "max_tokens=160"), None when the model
    stopped on its own. An answer that reached its bound — max_chars, or that budget — ends where its
    last complete sentence in the bound's last half ends (the model's own text up to there, as if it
    had stopped there); without one it is truncated, to be retried and then quarantined."""
    bound = constraint.max_chars
    if constraint.kind != "text" or bound is None or (limit is None and len(text) < bound):
        return text, None
    clipped = text[:bound].rstrip()
    if ends_sentence(clipped):
        return clipped, None
    window = [end for end in sentence_ends(clipped) if end >= KEEP_SHARE * min(len(text), bound)]
    if window:
        return clipped[: window[-1]], None
    why = limit if limit is not None and len(text) < bound else f"max_chars={bound}"
    return text, (f"truncated: {why} reached mid-sentence, with no sentence end in the last "
                  f"{1 - KEEP_SHARE:.0%} of the answer")


def _regex_errors(text: str, pattern: str) -> list[str]:
    try:
        matched = regexes.fullmatch(pattern, text)
    except regex_error:  # a Rust-regex-only pattern: the decoding grammar already enforced it
        return []
    except regexes.RegexTimeout as exc:
        return [str(exc)]
    return [] if matched else [f"{_short(text)} does not match /{pattern}/"]


def schema_errors(value: Any, schema: Mapping[str, Any] | bool, path: str = "$") -> list[str]:
    """Every violation of `schema` by `value`, each prefixed with its JSON path (empty = valid);
    past MAX_ERRORS, one last entry counts the rest."""
    root = schema if isinstance(schema, Mapping) else {}
    errors = _errors(value, schema, path, root)
    if len(errors) > MAX_ERRORS:
        errors = [*errors[:MAX_ERRORS], f"… and {len(errors) - MAX_ERRORS} more"]
    return errors


def _errors(value: Any, schema: Mapping[str, Any] | bool, path: str, root: Mapping[str, Any]) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path}: {value} is not a JSON number"]  # json.loads reads NaN; JSON has none
    if schema is True:
        return []
    if schema is False:
        return [f"{path}: no value is allowed here"]
    if "$ref" in schema:
        target = _deref(str(schema["$ref"]), root)
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


def _deref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema a local `#/...` reference points at (pydantic's nested models), or None."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node if isinstance(node, Mapping) else None


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name != "boolean":
        return False  # True is an int in Python, never in JSON
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def _type_errors(value: Any, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {_describe(value)}"]
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        errors.append(f"{path}: {_short(value)} is not one of {_short(list(schema['enum']), 200)}")
    if "const" in schema and not _same(value, schema["const"]):
        errors.append(f"{path}: {_short(value)} is not {_short(schema['const'])}")
    return errors


def _combinator_errors(value: Any, schema: Mapping[str, Any], path: str, root: Mapping[str, Any]) -> list[str]:
    errors = []
    for sub in schema.get("allOf", []):
        errors += _errors(value, sub, path, root)
    if "anyOf" in schema and all(_errors(value, s, path, root) for s in schema["anyOf"]):
        errors.append(f"{path}: {_short(value)} matches none of the allowed forms")
    if "oneOf" in schema:
        matching = sum(not _errors(value, s, path, root) for s in schema["oneOf"])
        if matching == 0:
            errors.append(f"{path}: {_short(value)} matches none of the allowed forms")
        elif matching > 1:
            errors.append(f"{path}: {_short(value)} matches {matching} of the oneOf forms, exactly one allowed")
    if "not" in schema and not _errors(value, schema["not"], path, root):
        errors.append(f"{path}: {_short(value)} matches a form that is not allowed")
    return errors


def _object_errors(value: dict[str, Any], schema: Mapping[str, Any], path: str, root: Mapping[str, Any]) -> list[str]:
    props: Mapping[str, Any] = schema.get("properties", {})
    errors = [f"{path}: missing required field {k!r}" for k in schema.get("required", []) if k not in value]
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            errors += _errors(item, props[key], f"{path}.{key}", root)
        elif extra is False:
            errors.append(f"{path}: unexpected field {key!r}")
        else:
            errors += _errors(item, extra, f"{path}.{key}", root)
    if len(value) < schema.get("minProperties", 0):
        errors.append(f"{path}: {len(value)} fields, fewer than minProperties {schema['minProperties']}")
    if len(value) > schema.get("maxProperties", len(value)):
        errors.append(f"{path}: {len(value)} fields, more than maxProperties {schema['maxProperties']}")
    return errors


def _array_errors(value: list[Any], schema: Mapping[str, Any], path: str, root: Mapping[str, Any]) -> list[str]:
    errors = []
    if len(value) < schema.get("minItems", 0):
        errors.append(f"{path}: {len(value)} items, fewer than minItems {schema['minItems']}")
    if len(value) > schema.get("maxItems", len(value)):
        errors.append(f"{path}: {len(value)} items, more than maxItems {schema['maxItems']}")
    prefix = schema.get("prefixItems", [])
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items", True)
        errors += _errors(item, sub, f"{path}[{i}]", root)
    if schema.get("uniqueItems") and any(_same(a, b) for i, a in enumerate(value) for b in value[i + 1 :]):
        errors.append(f"{path}: items are not unique")
    return errors


def _string_errors(value: str, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if len(value) < schema.get("minLength", 0):
        errors.append(f"{path}: {len(value)} characters, fewer than minLength {schema['minLength']}")
    if len(value) > schema.get("maxLength", len(value)):
        errors.append(f"{path}: {len(value)} characters, more than maxLength {schema['maxLength']}")
    pattern = schema.get("pattern")
    if pattern is not None:
        try:
            if not regexes.search(pattern, value):
                errors.append(f"{path}: {_short(value)} does not match /{pattern}/")
        except regex_error:
            pass  # a Rust-regex-only pattern: enforced by the decoding grammar
        except regexes.RegexTimeout as exc:
            errors.append(f"{path}: {exc}")
    return errors


def _number_errors(value: float, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        errors.append(f"{path}: {value} is not above {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        errors.append(f"{path}: {value} is not below {schema['exclusiveMaximum']}")
    step = schema.get("multipleOf")
    if step and not _is_multiple(value, step):
        errors.append(f"{path}: {value} is not a multiple of {step}")
    return errors


def _is_multiple(value: float, step: float) -> bool:
    """Exact in decimal, as the numbers are written (0.3 is a multiple of 0.1; binary floats say no)."""
    try:
        return Decimal(repr(value)) % Decimal(repr(step)) == 0
    except (InvalidOperation, ValueError):
        return False


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 (Python's == says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _describe(value: Any) -> str:
    """A value's JSON type, and the value itself when it is short: `number 2.5`, `array`."""
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name if name in ("null", "array", "object") else f"{name} {_short(value)}"
    return type(value).__name__


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"

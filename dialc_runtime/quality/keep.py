"""(keep-rule JSON AST, a record's values) → (keep?, reason): the filter's expression language."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

_NEGATION = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!=", "!=": "=="}
# the comparison operators of keep rules and expect tests
COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
           "!=": operator.ne}


class RuleError(ValueError):
    """A keep rule the compiler should not have produced (unknown operator, bad node)."""


class NotApplicable:
    """The value of a dimension that does not apply to a record (dialc.schema.NOT_APPLICABLE)."""

    def __repr__(self) -> str:
        return "n/a"


NOT_APPLICABLE = NotApplicable()


@dataclass(frozen=True)
class Outcome:
    """The truth of a rule and a factual reason ("score 0.42 < 0.6" when false).

    `applies` is False when the rule names only dimensions that do not apply to the record: such a
    part is skipped (`a and NA` is `a`, `a or NA` is `a`, `not NA` is NA), and a rule that does not
    apply at all keeps the record (ok is True)."""

    ok: bool
    reason: str
    applies: bool = True


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{round(value, 3):g}"
    return repr(value) if isinstance(value, str) else str(value)


def _operand(node: Any, env: dict[str, Any]) -> tuple[Any, str]:
    """(value, description) of a ref or literal: {"ref": "score"} → (0.42, "score 0.42")."""
    if isinstance(node, dict) and "ref" in node:
        name = str(node["ref"])
        if name not in env:
            raise RuleError(f"keep rule refers to unknown name {name!r}")
        value = env[name]
        if value is NOT_APPLICABLE:
            return value, f"{name} n/a"
        return value, f"{name} {fmt(value) if value is not None else 'has no value'}"
    if isinstance(node, dict) and ("value" in node or "const" in node):
        node = node.get("value", node.get("const"))
    if isinstance(node, dict | list):
        raise RuleError(f"keep rule operand {node!r} is not a ref or a literal")
    return node, fmt(node)


def _children(node: dict[str, Any]) -> list[Any]:
    if "args" in node:
        return list(node["args"])
    return [node[k] for k in ("left", "right", "arg", "operand") if k in node]


def _compare(op: str, node: dict[str, Any], env: dict[str, Any]) -> Outcome:
    left, left_text = _operand(node.get("left"), env)
    right, right_text = _operand(node.get("right"), env)
    if left is NOT_APPLICABLE or right is NOT_APPLICABLE:
        return Outcome(True, left_text if left is NOT_APPLICABLE else right_text, applies=False)
    if left is None or right is None:
        missing = left_text if left is None else right_text
        return Outcome(False, missing)
    try:
        ok = bool(COMPARE[op](left, right))
    except TypeError:
        return Outcome(False, f"cannot compare {left_text} with {right_text}")
    return Outcome(ok, f"{left_text} {op if ok else _NEGATION[op]} {right_text}")


def evaluate(node: Any, env: dict[str, Any]) -> Outcome:
    """Evaluate comparisons combined with and/or/not; a missing value (a check that failed) makes a
    comparison false; a value that does not apply (NOT_APPLICABLE) skips it (see Outcome)."""
    if not isinstance(node, dict) or "op" not in node:
        value, text = _operand(node, env)
        return Outcome(True, text, applies=False) if value is NOT_APPLICABLE else Outcome(bool(value), text)
    op = str(node["op"]).lower()
    if op in COMPARE:
        return _compare(op, node, env)
    parts = [evaluate(child, env) for child in _children(node)]
    applying = [p for p in parts if p.applies]
    if op in ("and", "or") and not applying:
        return Outcome(True, " and ".join(p.reason for p in parts), applies=False)
    if op == "and":
        failed = [p.reason for p in applying if not p.ok]
        return Outcome(not failed, failed[0] if failed else " and ".join(p.reason for p in parts))
    if op == "or":
        passed = [p.reason for p in applying if p.ok]
        return Outcome(bool(passed), passed[0] if passed else " and ".join(p.reason for p in applying))
    if op == "not" and len(parts) == 1:
        return Outcome(not parts[0].ok or not parts[0].applies, parts[0].reason, parts[0].applies)
    raise RuleError(f"keep rule has an unknown operator {node['op']!r}")


def refs(node: Any) -> set[str]:
    """Every name a rule refers to (the filter checks them against its dimensions up front)."""
    if isinstance(node, dict):
        if "ref" in node:
            return {str(node["ref"])}
        return set().union(*(refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node)) if node else set()
    return set()

"""AST values → typed Python values per FieldSpec, reporting type/range/choice errors."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from dialc import syntax as ast
from dialc.diagnostics import Diagnostics, Note
from dialc.ir import RefIR
from dialc.regex_bounds import warn_unbounded
from dialc.schema import FieldSpec

_INVALID = object()  # a value that failed; the caller leaves the field unset


def closest(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The candidate closest to `word`, when one is close enough to be a likely typo."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, candidates: list[str] | tuple[str, ...]) -> list[Note]:
    """'did you mean …' as a note, when a close match exists."""
    match = closest(word, candidates)
    return [Note(f'did you mean "{match}"?')] if match is not None else []


def describe(value: ast.Value) -> str:
    return {"str": "a string", "num": f"number {getattr(value, 'text', '')}",
            "name": f"name '{getattr(value, 'name', '')}'", "range": "a range", "list": "a list",
            "dict": "a {key: value} map", "call": "a call", "product": "a product (a * b)",
            "block": "a block"}.get(value.type, value.type)


class Coercer:
    """Converts one field value; every failure is reported once with the value's span."""

    def __init__(self, diags: Diagnostics) -> None:
        self.diags = diags

    def coerce(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        handler: Callable[[str, FieldSpec, ast.Value], Any] = getattr(self, f"_{spec.type}")
        return handler(field, spec, value)

    def _mismatch(self, field: str, expected: str, value: ast.Value) -> Any:
        self.diags.report("type-mismatch", f"field '{field}' expects {expected}, got {describe(value)}", value.span)
        return _INVALID

    def _bounds(self, field: str, spec: FieldSpec, value: ast.Num) -> Any:
        lo, hi = spec.lo, spec.hi
        if (lo is not None and value.value < lo) or (hi is not None and value.value > hi):
            shown = f"[{_fmt(lo)}..{_fmt(hi)}]" if hi is not None else f">= {_fmt(lo)}"
            self.diags.report("out-of-range", f"field '{field}' = {value.text} is outside {shown}", value.span)
            return _INVALID
        return value.value

    def _int(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if not isinstance(value, ast.Num) or isinstance(value.value, float):
            return self._mismatch(field, "an integer", value)
        return self._bounds(field, spec, value)

    def _float(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if not isinstance(value, ast.Num):
            return self._mismatch(field, "a number", value)
        result = self._bounds(field, spec, value)
        return float(result) if result is not _INVALID else result

    def _weight(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if isinstance(value, ast.Num) and value.value < 0:
            self.diags.report("bad-weight", f"field '{field}' = {value.text} is negative: weights are >= 0",
                              value.span)
            return _INVALID
        return self._float(field, spec, value)

    def _str(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if not isinstance(value, ast.Str):
            return self._mismatch(field, "a string", value)
        return value.value

    def _word(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        return self._name_or_str(field, value)

    def _regex(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        text = self._str(field, spec, value)
        if text is _INVALID:
            return text
        try:
            re.compile(text)
        except re.error as exc:
            self.diags.report("bad-regex", f"invalid regular expression: {exc}", value.span)
            return _INVALID
        warn_unbounded(text, value.span, self.diags)
        return text

    def _bool(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if isinstance(value, ast.Name) and value.name in ("true", "false"):
            return value.name == "true"
        return self._mismatch(field, "true or false", value)

    def _choice(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        text = value.name if isinstance(value, ast.Name) else value.value if isinstance(value, ast.Str) else None
        if text is None:
            return self._mismatch(field, "one of " + ", ".join(spec.options), value)
        if text not in spec.options:
            self.diags.report("bad-choice", f"field '{field}' must be one of {', '.join(spec.options)}; got '{text}'",
                              value.span, notes=suggest(text, spec.options))
            return _INVALID
        return text

    def _ref(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if isinstance(value, ast.Name):
            return RefIR(name=value.name, span=value.span)
        return self._mismatch(field, "the name of a declaration", value)

    def _refs(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        items = value.items if isinstance(value, ast.ListV) else [value]
        refs = [self._ref(field, spec, item) for item in items]
        return _INVALID if _INVALID in refs else refs

    def _product(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        items = value.items if isinstance(value, ast.Product) else [value]
        refs = [self._ref(field, spec, item) for item in items]
        return _INVALID if _INVALID in refs else refs

    def _names(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if not isinstance(value, ast.ListV):
            return self._mismatch(field, "a list of names", value)
        names = []
        for item in value.items:
            name = self._choice(field, spec, item) if spec.options else self._name_or_str(field, item)
            if name is _INVALID:
                return _INVALID
            names.append(name)
        return names

    def _name_or_str(self, field: str, value: ast.Value) -> Any:
        if isinstance(value, ast.Name):
            return value.name
        if isinstance(value, ast.Str):
            return value.value
        return self._mismatch(field, "a name", value)

    def _strings(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if not isinstance(value, ast.DictV):
            return self._mismatch(field, "a {name: \"text\"} map", value)
        result = {}
        for pair in value.pairs:
            text = self._str(f"{field}.{pair.key}", spec, pair.value)
            if text is _INVALID:
                return _INVALID
            result[pair.key] = text
        return result

    def _weights(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if isinstance(value, ast.ListV):  # [a, b, c]: equal weights
            names = [self._name_or_str(field, item) for item in value.items]
            return _INVALID if _INVALID in names else {n: 1.0 for n in names}
        if not isinstance(value, ast.DictV):
            return self._mismatch(field, "weighted values {value: weight, …} or a list", value)
        weights: dict[str, float] = {}
        for pair in value.pairs:
            if not isinstance(pair.value, ast.Num):
                return self._mismatch(f"{field}.{pair.key}", "a number", pair.value)
            if pair.value.value < 0:
                self.diags.report("bad-weight", f"weight of '{pair.key}' in '{field}' is negative", pair.value.span)
                return _INVALID
            weights[pair.key] = float(pair.value.value)
        if weights and not any(weights.values()):
            self.diags.report("bad-weight", f"all weights of '{field}' are zero: nothing can be drawn", value.span)
            return _INVALID
        if not weights:
            self.diags.report("empty-list", f"axis '{field}' has no values", value.span)
            return _INVALID
        return weights

    def _range(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if not isinstance(value, ast.Range) or isinstance(value.lo.value, float) or isinstance(value.hi.value, float):
            return self._mismatch(field, "an integer range like 1..5", value)
        if value.lo.value >= value.hi.value:
            self.diags.report("out-of-range", f"range {value.lo.text}..{value.hi.text} is empty or reversed",
                              value.span)
            return _INVALID
        if self._bounds(field, spec, value.lo) is _INVALID or self._bounds(field, spec, value.hi) is _INVALID:
            return _INVALID
        return [value.lo.value, value.hi.value]

    def _source_field(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if isinstance(value, ast.Str):
            return value.value
        if isinstance(value, ast.Call) and value.func == "field" and len(value.args) == 1 and not value.kwargs:
            return self._str(field, spec, value.args[0])
        return self._mismatch(field, 'a field name: "name" or field("name")', value)

    def _roles(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if isinstance(value, ast.ListV):
            names = [self._name_or_str(field, item) for item in value.items]
            return _INVALID if _INVALID in names else {n: [n] for n in names}
        if isinstance(value, ast.DictV):
            mapping: dict[str, list[str]] = {}
            for pair in value.pairs:
                raw = pair.value.items if isinstance(pair.value, ast.ListV) else [pair.value]
                labels = [self._name_or_str(f"roles.{pair.key}", item) for item in raw]
                if _INVALID in labels:
                    return _INVALID
                mapping[pair.key] = labels
            return mapping
        return self._mismatch(field, "a list of roles or {role: [raw labels]}", value)

    def _holdout(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if not (isinstance(value, ast.Call) and value.func == "holdout" and len(value.args) == 1):
            return self._mismatch(field, "holdout(FRACTION) or gold(TESTSET)", value)
        arg = value.args[0]
        if not isinstance(arg, ast.Num):
            return self._mismatch(field, "holdout(FRACTION) with a number", arg)
        if not 0 < arg.value < 1:
            self.diags.report("bad-holdout", f"hold-out fraction {arg.text} must be between 0 and 1 (exclusive)",
                              arg.span)
            return _INVALID
        return {"fraction": float(arg.value)}

    def _domain(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        """gold(TESTSET), holdout(FRACTION), or a list of one of each → {"gold": RefIR, "fraction": F}."""
        items = value.items if isinstance(value, ast.ListV) else [value]
        result: dict[str, Any] = {}
        for item in items:
            part = self._gold(field, item) if isinstance(item, ast.Call) and item.func == "gold" else (
                self._holdout(field, spec, item))
            if part is _INVALID:
                return _INVALID
            if set(part) & set(result):
                self.diags.report("duplicate-field", f"field '{field}' names {', '.join(part)} twice", item.span)
                return _INVALID
            result.update(part)
        if not result:
            return self._mismatch(field, "gold(TESTSET), holdout(FRACTION) or a list of them", value)
        return result

    def _gold_testset(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        """gold(TESTSET) → {"gold": RefIR}."""
        if not (isinstance(value, ast.Call) and value.func == "gold"):
            return self._mismatch(field, "gold(TESTSET)", value)
        return self._gold(field, value)

    def _gold(self, field: str, value: ast.Call) -> Any:
        if len(value.args) != 1 or value.kwargs or not isinstance(value.args[0], ast.Name):
            return self._mismatch(field, "gold(TESTSET) with the name of a testset", value)
        return {"gold": RefIR(name=value.args[0].name, span=value.args[0].span)}

    def _suites(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        items = value.items if isinstance(value, ast.ListV) else [value]
        suites = [self._suite(field, item) for item in items]
        return _INVALID if _INVALID in suites else suites

    def _suite(self, field: str, value: ast.Value) -> Any:
        if not (isinstance(value, ast.Call) and value.func == "suite" and len(value.args) == 1
                and isinstance(value.args[0], ast.Str)):
            return self._mismatch(field, 'suite("builtin:NAME" or "path", kind = …, limit = …)', value)
        suite: dict[str, Any] = {"path": value.args[0].value}
        for pair in value.kwargs:
            if pair.key not in ("kind", "limit", "ratio", "subjects", "fewshot"):
                self.diags.report("unknown-field", f"suite() takes kind, limit, ratio, subjects, fewshot; "
                                  f"not '{pair.key}'", pair.key_span)
                return _INVALID
            suite[pair.key] = _literal(pair.value)
        return suite

    def _model_method(self, field: str, spec: FieldSpec, value: ast.Value) -> Any:
        if isinstance(value, ast.Name) and value.name in ("lora", "full"):
            return {"kind": value.name}
        if isinstance(value, ast.BlockV) and value.kind in ("lora", "full"):
            method: dict[str, Any] = {"kind": value.kind}
            for member in value.body:
                if not isinstance(member, ast.Assign):
                    self.diags.report("misplaced-member", "only `name = value` fields belong in a method block",
                                      member.span)
                    continue
                method[member.name] = _literal(member.value)
            return method
        return self._mismatch(field, "lora, full, or lora { r = 8 … }", value)


def _literal(value: ast.Value) -> Any:
    """Plain JSON value of a literal (names become strings)."""
    if isinstance(value, ast.Str | ast.Num):
        return value.value
    if isinstance(value, ast.Name):
        return {"true": True, "false": False}.get(value.name, value.name)
    if isinstance(value, ast.ListV):
        return [_literal(v) for v in value.items]
    if isinstance(value, ast.DictV):
        return {p.key: _literal(p.value) for p in value.pairs}
    if isinstance(value, ast.Range):
        return [value.lo.value, value.hi.value]
    return None


def _fmt(number: float | None) -> str:
    if number is None:
        return ""
    return str(int(number)) if float(number).is_integer() else str(number)


INVALID = _INVALID
literal = _literal

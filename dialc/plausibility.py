"""Checked IR → diagnostics where a setting would do something other than it says (dimensions that cannot
apply, scores outside 0..1, keys that cannot be balanced, language names for codes, near-duplicate
categories, corpus fields that nothing downstream can read)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from dialc.diagnostics import Diagnostics, Note
from dialc.files import open_regular
from dialc.ir import IR, BinaryIR, CallIR, DeclIR, ExprIR, LiteralIR, NameIR, NotIR, RefIR, expr_names
from dialc.schema import LANGUAGE_AXIS, LANGUAGE_NAMES, inapplicable_to, is_language_code
from dialc.values import suggest

UNIT_METRICS = ("kept_rate", "rejected_rate", "duplicate_rate", "distinct_1", "distinct_2")  # 0..1
UNIT_FUNCTIONS = ("mean", "pass_rate", "balance_p")  # 0..1 as well; kept / rejected / records are counts
BALANCE_FIELDS = ("scenario", "category")  # besides the expression axes of the sample's product
MAPPED_FIELDS = ("id", "scenario", "turns", "role", "text")  # source fields a record carries on


def pass_plausibility(ir: IR, diags: Diagnostics) -> None:
    """Every check of this module, each reporting and going on."""
    for check in (pass_applicability, pass_scales, pass_balance_keys, pass_language_axis, pass_categories):
        check(ir, diags)


# ---- dimensions that do not apply to some task ------------------------------------------------------
def pass_applicability(ir: IR, diags: Diagnostics) -> None:
    """Warn where a keep rule or a gate names a dimension that cannot judge some task's output kind."""
    tasks = [(t.name, t.fields["output"].get("kind")) for t in ir.of_kind("task")
             if isinstance(t.fields.get("output"), dict)]
    for quality in ir.of_kind("quality"):
        for dim in quality.children:
            kinds = inapplicable_to(dim.qualifier, dim.fields.get("check"))
            skipped = [f"task {name} ({kind})" for name, kind in tasks if kind in kinds]
            if skipped:
                _warn_inapplicable(quality, dim, kinds, skipped, diags)
            if dim.qualifier == "rule" and dim.fields.get("check") == "language" and not _language_axes(ir):
                diags.report("inapplicable-dimension", f"rule {dim.name} (check = language) reads each record's "
                             f"expected language from the '{LANGUAGE_AXIS}' expression axis, but no expressions "
                             "block declares one: it applies to no record", dim.name_span)


def _warn_inapplicable(quality: DeclIR, dim: DeclIR, kinds: tuple[str, ...], skipped: list[str],
                       diags: Diagnostics) -> None:
    what = f"rule check = {dim.fields.get('check')}" if dim.qualifier == "rule" else str(dim.qualifier)
    why = f"{what} does not apply to {' or '.join(kinds)} outputs"
    tasks = ", ".join(skipped)
    if dim.fields.get("gate"):
        diags.report("inapplicable-dimension", f"gate {dim.name} passes the records of {tasks} unchecked: "
                     f"{why}", dim.span_of("gate"))
    for keep in quality.keep:
        for ref in expr_names(keep.expr):
            if ref.parts == (dim.name,):
                diags.report("inapplicable-dimension", f"{why}: for the records of {tasks} the keep rule's "
                             f"condition on {dim.name} is skipped (not applicable)", ref.span)


# ---- scores and rates are 0..1 ---------------------------------------------------------------------
def pass_scales(ir: IR, diags: Diagnostics) -> None:
    """`keep when score >= 40`, `expect kept_rate >= 20`: scores, rates and means are 0..1, not percents."""
    for quality in ir.of_kind("quality"):
        scored: dict[str, DeclIR | None] = {"score": None, **{c.name: c for c in quality.children}}
        for keep in quality.keep:
            for node in _comparisons(keep.expr):
                for name, value in ((node.left, node.right), (node.right, node.left)):
                    if isinstance(name, NameIR) and name.dotted in scored:
                        _check_unit(name.dotted, value, diags, scored[name.dotted])
        for expect in quality.expects:
            expr = expect.expr
            if isinstance(expr, BinaryIR) and _is_unit_metric(expr.left):
                _check_unit(_shown(expr.left), expr.right, diags)


def _comparisons(expr: ExprIR) -> Iterator[BinaryIR]:
    if isinstance(expr, BinaryIR):
        if expr.op in ("and", "or"):
            yield from _comparisons(expr.left)
            yield from _comparisons(expr.right)
        else:
            yield expr
    elif isinstance(expr, NotIR):
        yield from _comparisons(expr.operand)


def _is_unit_metric(metric: ExprIR) -> bool:
    return (isinstance(metric, NameIR) and metric.dotted in UNIT_METRICS) or (
        isinstance(metric, CallIR) and metric.func in UNIT_FUNCTIONS)


def _shown(metric: ExprIR) -> str:
    if isinstance(metric, CallIR):
        return f"{metric.func}({', '.join(a.dotted if isinstance(a, NameIR) else str(a.value) for a in metric.args)})"
    return metric.dotted if isinstance(metric, NameIR) else "?"


def _check_unit(what: str, value: ExprIR, diags: Diagnostics, dim: DeclIR | None = None) -> None:
    if not isinstance(value, LiteralIR) or isinstance(value.value, str) or 0 <= value.value <= 1:
        return
    lo, hi = (dim.fields.get("scale") or [1, 5]) if dim is not None and dim.qualifier == "judge" else (0, 0)
    percent = float(value.value).is_integer() and 1 < value.value <= 100  # `>= 40` meant 40 %
    hint = [Note(f"did you mean {value.value / 100:g}?")] if percent else []
    if lo < hi and lo <= value.value <= hi:  # a judge's own scale: scores are rescaled to 0..1
        hint = [Note(f"judge scores are rescaled to 0..1: {value.value:g} on {lo}..{hi} is "
                     f"{(value.value - lo) / (hi - lo):g}")]
    diags.report("out-of-range", f"{what} lies between 0 and 1 (scores, rates and means are 0..1, not percents): "
                 f"comparing it with {value.value:g} is always true or always false", value.span, notes=hint)


# ---- balance keys and corpus fields --------------------------------------------------------------------
def pass_balance_keys(ir: IR, diags: Diagnostics) -> None:
    """`balance` takes scenario, category and the sample's expression axes: nothing else has a declared mix."""
    for sample in ir.of_kind("sample"):
        axes = sample_axes(ir, sample)
        allowed = [*BALANCE_FIELDS, *axes]
        for key in sample.fields.get("balance") or []:
            if key not in allowed:
                diags.report("bad-choice", f'balance key "{key}" cannot be balanced: balance takes scenario, '
                             f"category or an expression axis of this sample ({', '.join(axes) or 'none'})",
                             sample.span_of("balance"), notes=[*suggest(key, allowed), *corpus_notes(ir, key)])


def sample_axes(ir: IR, sample: DeclIR) -> list[str]:
    """The expression axes of a sample's product (`from = source * tasks * style`)."""
    axes: list[str] = []
    for ref in sample.fields.get("from") or []:
        for decl in ir.find(ref.name, ("expressions",)) if isinstance(ref, RefIR) else []:
            axes.extend(k for k, v in decl.fields.items() if isinstance(v, dict))
    return axes


def corpus_notes(ir: IR, name: str) -> list[Note]:
    """Why a name that is a column of a readable corpus cannot be used as one (and what to do instead)."""
    for source in ir.of_kind("source"):
        if name == source.fields.get("scenario", "scenario"):
            return [Note(f'"{name}" is the field of source {source.name} read as the scenario: write scenario',
                         source.span_of("scenario"))]
        if name in corpus_fields(ir, source):
            return [Note(f'"{name}" is a field of source {source.name}, but records carry only the mapped fields '
                         f"(id, scenario, turns): map it as the scenario (scenario = field(\"{name}\")) or "
                         "declare its values as an expression axis to use it", source.name_span)]
    return []


def corpus_fields(ir: IR, source: DeclIR, limit: int = 1 << 16) -> list[str]:
    """The field names of a source's first record (JSONL keys, CSV header); empty when unreadable."""
    path = Path(ir.spec_dir) / str(source.fields.get("path", ""))
    try:
        with open_regular(path) as handle:  # not a FIFO or a device: nothing validate reads may block
            head = handle.read(limit).removeprefix(b"\xef\xbb\xbf").decode("utf-8", "ignore")
    except OSError:
        return []
    first = head.splitlines()[0] if head.strip() else ""
    if (source.fields.get("format") or path.suffix.lower().lstrip(".")) == "csv":
        return next(csv.reader([first]), [])
    try:
        record = json.loads(first)
    except (ValueError, RecursionError):
        return []
    return [str(k) for k in record] if isinstance(record, dict) else []


# ---- the language rule's codes ---------------------------------------------------------------------------
def pass_language_axis(ir: IR, diags: Diagnostics) -> None:
    """The `language` rule compares answers with the script of an ISO 639-1 code from the `language` axis."""
    rules = [d for q in ir.of_kind("quality") for d in q.children
             if d.qualifier == "rule" and d.fields.get("check") == "language"]
    if not rules:
        return
    for decl in _language_axes(ir):
        for value in decl.fields[LANGUAGE_AXIS]:
            if not is_language_code(str(value)):
                code = LANGUAGE_NAMES.get(str(value).casefold())
                hint = (f'write "{code}" (ISO 639-1)' if code else
                        "use ISO 639-1 codes such as en, zh, ja, fr (a region or script may follow: zh-Hans, pt-BR)")
                diags.report("bad-choice", f'{LANGUAGE_AXIS} value "{value}" is not an ISO 639-1 language code, '
                             f"but rule {rules[0].name} (check = language) reads it as one",
                             decl.span_of(LANGUAGE_AXIS), notes=[Note(hint)])


def _language_axes(ir: IR) -> list[DeclIR]:
    return [e for e in ir.of_kind("expressions") if isinstance(e.fields.get(LANGUAGE_AXIS), dict)]


# ---- categories one typo apart ------------------------------------------------------------------------
def pass_categories(ir: IR, diags: Diagnostics) -> None:
    """Warn when a task's category is one edit away from an earlier one: a typo makes a category of its own."""
    seen: dict[str, DeclIR] = {}
    for task in ir.of_kind("task"):
        category = task.fields.get("category")
        if not isinstance(category, str) or category in seen:
            continue
        near = next((c for c in seen if one_edit_apart(c, category)), None)
        if near is not None:
            diags.report("similar-name", f'category "{category}" is one typo away from "{near}" (task '
                         f"{seen[near].name}): it is sampled, balanced and reported as a category of its own",
                         task.span_of("category"), notes=[Note(f'"{near}" is declared here',
                                                               seen[near].span_of("category"))])
        seen[category] = task


def one_edit_apart(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours apart (names of 4+ letters only)."""
    if a == b or min(len(a), len(b)) < 4 or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


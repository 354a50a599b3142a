"""Checked IR: ordered semantic passes over the resolved spec, each reporting its own codes."""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import networkx as nx

from dialc import ast
from dialc.diagnostics import Diagnostics, Note
from dialc.ir import IR, DeclIR, RefIR
from dialc.schema import EXPECT_METRICS, KINDS, TEMPLATE_PLACEHOLDERS
from dialc.values import suggest

BUILTIN_SUITES = ("builtin:general-probe",)
TERMINAL_KINDS = ("pipeline", "scenarios", "task", "tasks", "evaluate", "export", "finetune", "quality")
# fields whose default is "the only declaration of this kind", filled in by pass_defaults
IMPLICIT_FROM = {("quality", "from"): "label", ("finetune", "data"): "quality", ("export", "from"): "quality"}


def run_checks(ir: IR, diags: Diagnostics, *, check_files: bool = True) -> None:
    """All passes in order; each one reports and goes on, so one run shows every problem."""
    passes: list[Callable[[IR, Diagnostics], None]] = [
        pass_defaults, pass_refs, pass_cycles, pass_unused, pass_weights, pass_templates,
        pass_quality, pass_training, pass_evaluation,
    ]
    if check_files:
        passes.append(pass_files)
    for check in passes:
        check(ir, diags)


# ---- helpers ------------------------------------------------------------------------------
def iter_refs(value: Any) -> Iterator[RefIR]:
    if isinstance(value, RefIR):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from iter_refs(item)


def decl_refs(decl: DeclIR) -> Iterator[tuple[str, RefIR]]:
    """(field, ref) pairs of a declaration and its children (dimensions)."""
    for field, value in decl.fields.items():
        for ref in iter_refs(value):
            yield field, ref
    for child in decl.children:
        yield from decl_refs(child)


def field_kinds(decl: DeclIR, field: str) -> tuple[str, ...]:
    from dialc.schema import DIMENSION_FIELDS

    fields = DIMENSION_FIELDS[decl.qualifier] if decl.qualifier else KINDS[decl.kind].fields
    return fields[field].ref_kinds if field in fields else ()


def task_set_exists(ir: IR) -> bool:
    return bool(ir.of_kind("task") or ir.of_kind("tasks"))


def lookup(ir: IR, name: str, kinds: tuple[str, ...]) -> DeclIR | None:
    found = ir.find(name, kinds)
    return found[0] if found else None


# ---- passes -------------------------------------------------------------------------------
def pass_defaults(ir: IR, diags: Diagnostics) -> None:
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


def pass_refs(ir: IR, diags: Diagnostics) -> None:
    """Every name refers to a declaration of a kind the field accepts."""
    scenario_names = [e.name for s in ir.of_kind("scenarios") for e in s.entries]
    for decl in _all_decls(ir):
        for field, value in decl.fields.items():
            kinds = field_kinds(decl, field)
            for ref in iter_refs(value):
                _check_ref(ir, decl, field, ref, kinds, scenario_names, diags)


def _check_ref(ir: IR, decl: DeclIR, field: str, ref: RefIR, kinds: tuple[str, ...],
               scenario_names: list[str], diags: Diagnostics) -> None:
    if kinds == ("scenario",):
        if ref.name not in scenario_names:
            diags.report("unknown-ref", f'unknown scenario "{ref.name}"', ref.span,
                         notes=suggest(ref.name, scenario_names))
        return
    if "tasks" in kinds and ref.name == "tasks" and task_set_exists(ir):
        return
    if lookup(ir, ref.name, kinds):
        return
    other = ir.find(ref.name)
    if other:
        expected = " or ".join(k for k in kinds)
        diags.report("wrong-ref-kind", f'"{ref.name}" is a {other[0].kind}, but {decl.kind}.{field} needs a '
                     f"{expected}", ref.span, notes=[Note(f"{other[0].kind} {ref.name} declared here",
                                                          other[0].name_span)])
        return
    candidates = [d.name for d in ir.decls if d.kind in kinds] + (["tasks"] if "tasks" in kinds else [])
    noun = kinds[0] if len(kinds) == 1 else "name"
    diags.report("unknown-ref", f'unknown {noun} "{ref.name}"', ref.span, notes=_did_you_mean(ir, ref.name,
                                                                                               candidates, kinds))


def _did_you_mean(ir: IR, name: str, candidates: list[str], kinds: tuple[str, ...]) -> list[Note]:
    notes = suggest(name, candidates)
    if notes:
        target = lookup(ir, notes[0].message.split('"')[1], kinds)
        if target is not None:
            return [Note(notes[0].message, target.name_span)]
    return notes


def dependency_graph(ir: IR) -> nx.DiGraph:
    """Declarations as nodes, an edge from each referenced declaration to the one referring to it."""
    graph = nx.DiGraph()
    for decl in ir.decls:
        graph.add_node(decl.id)
    for decl in ir.decls:
        for field, ref in decl_refs(decl):
            target = lookup(ir, ref.name, field_kinds(decl, field) or tuple(KINDS))
            if target is not None:
                graph.add_edge(target.id, decl.id, span=ref.span)
    return graph


def pass_cycles(ir: IR, diags: Diagnostics) -> None:
    graph = dependency_graph(ir)
    for cycle in nx.simple_cycles(graph):
        path = [*cycle, cycle[0]]
        span = graph.edges[path[-2], path[-1]]["span"]
        diags.report("cycle", "dependency cycle: " + " -> ".join(path), span)
        return  # one cycle report is enough: breaking it changes the others


def pass_unused(ir: IR, diags: Diagnostics) -> None:
    used = {ref.name for decl in ir.decls for _, ref in decl_refs(decl)}
    for decl in ir.decls:
        if decl.kind not in TERMINAL_KINDS and decl.name not in used:
            diags.report("unused", f"{decl.kind} '{decl.name}' is never used", decl.name_span)


def pass_weights(ir: IR, diags: Diagnostics) -> None:
    tasks = ir.of_kind("task")
    if tasks and not any(t.fields.get("weight", 1.0) for t in tasks):
        diags.report("bad-weight", "all task weights are zero: no task can be sampled", tasks[0].name_span)


def pass_templates(ir: IR, diags: Diagnostics) -> None:
    """Template placeholders must name something the upstream steps provide."""
    for sample in ir.of_kind("sample"):
        axes: list[str] = []
        for ref in sample.fields.get("from", []):
            target = lookup(ir, ref.name, ("expressions",))
            if target is not None:
                axes.extend(k for k, v in target.fields.items() if isinstance(v, dict))
        known = [*TEMPLATE_PLACEHOLDERS, *axes]
        for field in ("template", "system"):
            text = sample.fields.get(field)
            if isinstance(text, str):
                _check_template(text, known, sample.span_of(field), diags)


def _check_template(text: str, known: list[str], span: Any, diags: Diagnostics) -> None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        diags.report("bad-template", f"malformed template: {exc} (write {{{{ and }}}} for literal braces)", span)
        return
    for name in names:
        if name not in known:
            diags.report("bad-template", f"placeholder {{{name}}} is provided by no upstream step "
                         f"(available: {', '.join(known)})", span, notes=suggest(name, known))


def pass_quality(ir: IR, diags: Diagnostics) -> None:
    for quality in ir.of_kind("quality"):
        names = [c.name for c in quality.children]
        if not names:
            diags.report("no-dimensions", f"quality '{quality.name}' declares no dimension", quality.name_span)
        for keep in quality.keep:
            refs = [r for r in _expr_refs(keep.expr)]
            if not any(r.parts[0] in (*names, "score") for r in refs):
                diags.report("keep-no-dimension", "keep rule names neither 'score' nor a dimension "
                             f"({', '.join(names) or 'none declared'})", keep.span)
            for ref in refs:
                if ref.parts[0] not in (*names, "score"):
                    diags.report("unknown-ref", f'unknown dimension "{ref.parts[0]}" in keep rule', ref.span,
                                 notes=suggest(ref.parts[0], [*names, "score"]))
        for expect in quality.expects:
            _check_expect(expect, names, diags)


def _expr_refs(expr: ast.Expr) -> Iterator[ast.Ref]:
    if isinstance(expr, ast.Ref):
        yield expr
    elif isinstance(expr, ast.BinOp):
        yield from _expr_refs(expr.left)
        yield from _expr_refs(expr.right)
    elif isinstance(expr, ast.Not):
        yield from _expr_refs(expr.operand)
    elif isinstance(expr, ast.Call):
        for arg in expr.args:
            if isinstance(arg, ast.Name):
                yield ast.Ref(span=arg.span, parts=[arg.name])


def _check_expect(expect: ast.Expect, dims: list[str], diags: Diagnostics) -> None:
    expr = expect.expr
    if not (isinstance(expr, ast.BinOp) and expr.op in (">=", "<=", ">", "<", "==", "!=")):
        diags.report("unknown-metric", "expect needs a comparison, e.g. `expect kept_rate >= 0.5`", expect.span)
        return
    metric = expr.left
    if isinstance(metric, ast.Ref) and metric.parts[0] in EXPECT_METRICS:
        return
    if isinstance(metric, ast.Call) and metric.func in ("mean", "pass_rate"):
        arg = metric.args[0] if metric.args else None
        if isinstance(arg, ast.Name) and arg.name in dims:
            return
        diags.report("unknown-ref", f"{metric.func}() needs a dimension name ({', '.join(dims)})", metric.span)
        return
    if isinstance(metric, ast.Call) and metric.func == "balance_p":
        return
    shown = metric.parts[0] if isinstance(metric, ast.Ref) else getattr(metric, "func", "?")
    diags.report("unknown-metric", f"unknown metric '{shown}' (metrics: kept_rate, kept, duplicate_rate, "
                 "mean(DIM), pass_rate(DIM), balance_p(KEY))", metric.span,
                 notes=suggest(shown, list(EXPECT_METRICS)))


def pass_training(ir: IR, diags: Diagnostics) -> None:
    for finetune in ir.of_kind("finetune"):
        data = finetune.fields.get("data")
        quality = lookup(ir, data.name, ("quality",)) if isinstance(data, RefIR) else None
        if quality is not None and not quality.children:
            diags.report("no-training-data", f"finetune '{finetune.name}' trains on quality '{quality.name}', "
                         "which keeps nothing (no dimensions)", data.span)


def pass_evaluation(ir: IR, diags: Diagnostics) -> None:
    holdouts: dict[str, tuple[float, DeclIR]] = {}
    for evaluate in ir.of_kind("evaluate"):
        model = evaluate.fields.get("model")
        finetune = lookup(ir, model.name, ("finetune",)) if isinstance(model, RefIR) else None
        if not evaluate.fields.get("general"):
            diags.report("no-evaluation-suite", f"evaluate '{evaluate.name}' has no general suite: retention "
                         "cannot be shown", evaluate.name_span)
        if finetune is None:
            continue
        _check_replay_overlap(evaluate, finetune, diags)
        domain = evaluate.fields.get("domain")
        if domain is None:
            continue
        previous = holdouts.get(finetune.name)
        if previous and previous[0] != domain["fraction"]:
            diags.report("holdout-overlap", f"evaluate '{evaluate.name}' holds out {domain['fraction']} of "
                         f"'{finetune.name}''s data but '{previous[1].name}' holds out {previous[0]}: training "
                         "excludes only one hold-out, so the other overlaps training data",
                         evaluate.span_of("domain"), notes=[Note("other hold-out", previous[1].span_of("domain"))])
        holdouts.setdefault(finetune.name, (domain["fraction"], evaluate))


def _check_replay_overlap(evaluate: DeclIR, finetune: DeclIR, diags: Diagnostics) -> None:
    replayed = {s["path"] for s in finetune.fields.get("replay") or []}
    for suite in evaluate.fields.get("general") or []:
        if suite["path"] in replayed:
            diags.report("holdout-overlap", f"suite \"{suite['path']}\" is evaluated but '{finetune.name}' also "
                         "trains on it (replay): the evaluation would measure memorisation",
                         evaluate.span_of("general"), notes=[Note("replayed here", finetune.span_of("replay"))])


def pass_files(ir: IR, diags: Diagnostics) -> None:
    base = Path(ir.spec_dir)
    for source in ir.of_kind("source"):
        path = source.fields.get("path")
        if isinstance(path, str) and not (base / path).is_file():
            diags.report("missing-file", f"source file not found: {path} (relative to {ir.spec_dir or '.'})",
                         source.span_of("path"))
    for decl in ir.of_kind("evaluate") + ir.of_kind("finetune"):
        for field in ("general", "replay"):
            for suite in decl.fields.get(field) or []:
                _check_suite(suite["path"], base, decl.span_of(field), diags)


def _check_suite(path: str, base: Path, span: Any, diags: Diagnostics) -> None:
    if path.startswith("builtin:"):
        if path not in BUILTIN_SUITES:
            diags.report("unknown-suite", f'unknown builtin suite "{path}" (builtin: {", ".join(BUILTIN_SUITES)})',
                         span, notes=suggest(path, BUILTIN_SUITES))
    elif not (base / path).exists():
        diags.report("unknown-suite", f"suite file not found: {path} (relative to {base})", span)


def _all_decls(ir: IR) -> Iterator[DeclIR]:
    for decl in ir.decls:
        yield decl
        yield from decl.children

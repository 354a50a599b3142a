"""Checked IR: ordered semantic passes over the resolved spec, each reporting its own codes."""

from __future__ import annotations

import os
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dialc.diagnostics import Diagnostics, Note
from dialc.files import regular_file_problem
from dialc.graphs import find_cycle
from dialc.ir import IR, BinaryIR, CallIR, DeclIR, ExprIR, LiteralIR, NameIR, RefIR, RuleIR, expr_names, expr_nodes
from dialc.plausibility import corpus_notes, pass_plausibility
from dialc.samples import pass_min_per, pass_sample_inputs, pass_sample_mix, pass_sample_size, pass_task_set
from dialc.schema import (
    EVOLVE_PLACEHOLDERS,
    EXPECT_FUNCTIONS,
    EXPECT_METRICS,
    KEEP_FIELDS,
    KINDS,
    TEMPLATE_PLACEHOLDERS,
)
from dialc.security import current_policy, insecure_key_problem, real
from dialc.source import Span
from dialc.testsets import pass_testset_files, pass_testsets
from dialc.values import closest, suggest

BUILTIN_SUITES = ("builtin:general-probe",)
# a conservative static bound on finetune.max_len: SmolLM2's chat template with the default system prompt and
# answer-format hint takes about 70 tokens before any dialogue or answer (finetune { max_len = 64 } failed)
MIN_MAX_LEN = 128
THROUGHPUT_FIELDS = ("concurrency", "rpm", "tpm")  # model fields only the openai backend reads
TERMINAL_KINDS = ("pipeline", "scenarios", "task", "tasks", "evaluate", "export", "finetune", "quality", "study")


def run_checks(ir: IR, diags: Diagnostics, *, check_files: bool = True) -> None:
    """All passes in order; each one reports and goes on, so one run shows every problem."""
    passes: list[Callable[[IR, Diagnostics], None]] = [
        pass_refs, pass_cycles, pass_unused, pass_sample_inputs, pass_task_set, pass_weights,
        pass_templates, pass_quality, pass_training, pass_evaluation, pass_plausibility, pass_min_per,
        pass_testsets, pass_model_keys, pass_model_backend_fields, pass_candidates,
    ]
    if check_files:
        passes += [pass_project_paths, pass_files, pass_sample_size, pass_sample_mix, pass_testset_files]
    for check in passes:
        check(ir, diags)


# ---- helpers ------------------------------------------------------------------------------
def iter_refs(value: Any) -> Iterator[RefIR]:
    if isinstance(value, RefIR):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from iter_refs(item)
    elif isinstance(value, dict):  # evaluate.domain = {"gold": ref, "fraction": …}
        for item in value.values():
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
    if "tasks" in kinds and ref.name == "tasks":
        if not task_set_exists(ir):
            diags.report("unknown-ref", f"{decl.kind}.{field} refers to the task set, but no task is declared "
                         "(declare `task NAME { … }` blocks or a `tasks { generate = N … }` block)", ref.span)
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
    notes, target = _did_you_mean(ir, ref.name, candidates, kinds)
    # several kinds fit (sample.from): name the kind of the likely intended declaration
    noun = kinds[0] if len(kinds) == 1 else target.kind if target is not None else "name"
    diags.report("unknown-ref", f'unknown {noun} "{ref.name}"', ref.span, notes=notes)


def _did_you_mean(ir: IR, name: str, candidates: list[str],
                  kinds: tuple[str, ...]) -> tuple[list[Note], DeclIR | None]:
    match = closest(name, candidates)
    if match is None:
        return [], None
    target = lookup(ir, match, kinds)
    note = suggest(name, [match])[0]
    return [Note(note.message, target.name_span if target is not None else None)], target


def dependency_graph(ir: IR) -> dict[str, dict[str, Span]]:
    """Declarations as nodes, an edge (with the last reference's span) from each referenced one to the referrer."""
    graph: dict[str, dict[str, Span]] = {decl.id: {} for decl in ir.decls}
    for decl in ir.decls:
        for field, ref in decl_refs(decl):
            target = lookup(ir, ref.name, field_kinds(decl, field) or tuple(KINDS))
            if target is not None:
                graph.setdefault(target.id, {})[decl.id] = ref.span
    return graph


def pass_cycles(ir: IR, diags: Diagnostics) -> None:
    """Report one cycle (breaking it changes the others), the same one on every run."""
    graph = dependency_graph(ir)
    cycle = find_cycle(graph)  # depth-first in declaration order: deterministic
    if cycle is None:
        return
    order = {d.id: i for i, d in enumerate(ir.decls)}
    start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
    path = [*cycle[start:], *cycle[:start], cycle[start]]
    span = graph[path[-2]][path[-1]]
    diags.report("cycle", "dependency cycle: " + " -> ".join(path), span)


def pass_unused(ir: IR, diags: Diagnostics) -> None:
    used = {ref.name for decl in ir.decls for _, ref in decl_refs(decl)}
    for decl in ir.decls:
        if decl.kind not in TERMINAL_KINDS and decl.name not in used:
            diags.report("unused", f"{decl.kind} '{decl.name}' is never used", decl.name_span)


def pass_weights(ir: IR, diags: Diagnostics) -> None:
    tasks = ir.of_kind("task")
    if tasks and not any(t.fields.get("weight", 1.0) for t in tasks):
        diags.report("bad-weight", "all task weights are zero: no task can be sampled", tasks[0].name_span)
    for quality in ir.of_kind("quality"):
        scored = [d for d in quality.children if not d.fields.get("gate") and d.fields.get("weight", 1.0) > 0]
        uses_score = any(r.parts[0] == "score" for k in quality.keep for r in expr_names(k.expr))
        if quality.children and uses_score and not scored:
            diags.report("bad-weight", "the keep rule uses 'score', but every dimension is a gate or weighs 0: "
                         "the score is undefined", quality.keep[0].span)


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
                _check_template(ir, text, known, sample.span_of(field), diags)
    for evolve in ir.of_kind("evolve"):
        for text in (evolve.fields.get("prompts") or {}).values():
            if isinstance(text, str):
                _check_template(ir, text, list(EVOLVE_PLACEHOLDERS), evolve.span_of("prompts"), diags)


def _check_template(ir: IR, text: str, known: list[str], span: Any, diags: Diagnostics) -> None:
    """Only plain `{name}` placeholders: a conversion (`!r`) or a format spec (`:>999999999`) would run
    Python's format machinery on record text at run time (a gigabyte of padding, an internal error)."""
    try:
        parts = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        diags.report("bad-template", f"malformed template: {exc} (write {{{{ and }}}} for literal braces)", span)
        return
    names = []
    for name, spec, conv in parts:
        if spec or conv:
            shown = name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "")
            diags.report("bad-template", f"placeholder {{{shown}}}: only plain {{name}} placeholders are allowed "
                         "(no !conversion or :format spec)", span)
        else:
            names.append(name)
    for name in names:
        if name not in known:
            diags.report("bad-template", f"placeholder {{{name}}} is provided by no upstream step "
                         f"(available: {', '.join(known)})", span,
                         notes=[*suggest(name, known), *corpus_notes(ir, name)])


def pass_quality(ir: IR, diags: Diagnostics) -> None:
    axes = [k for e in ir.of_kind("expressions") for k, v in e.fields.items() if isinstance(v, dict)]
    for quality in ir.of_kind("quality"):
        names = [c.name for c in quality.children]
        if not names:
            diags.report("no-dimensions", f"quality '{quality.name}' declares no dimension", quality.name_span)
        for keep in quality.keep:
            _check_keep(ir, keep, names, [*KEEP_FIELDS, *axes], diags)
        for expect in quality.expects:
            _check_expect(expect, names, diags)


def _check_keep(ir: IR, keep: RuleIR, dims: list[str], fields: list[str], diags: Diagnostics) -> None:
    refs = list(expr_names(keep.expr))
    if not any(r.parts == (name,) for r in refs for name in (*dims, "score")):
        diags.report("keep-no-dimension", "keep rule names neither 'score' nor a dimension "
                     f"({', '.join(dims) or 'none declared'})", keep.span)
    known = [*dims, "score", *fields]
    for ref in refs:
        name = ref.dotted
        if name not in known:
            diags.report("unknown-ref", f'unknown dimension "{name}" in keep rule', ref.span,
                         notes=[*suggest(name, known), *corpus_notes(ir, name)])
    for call in _expr_calls(keep.expr):
        diags.report("type-mismatch", f"a keep rule cannot call {call.func}(): compare 'score', "
                     "dimensions and record fields with numbers or strings", call.span)


def _expr_calls(expr: ExprIR) -> Iterator[CallIR]:
    return (node for node in expr_nodes(expr) if isinstance(node, CallIR))


def _is_number(expr: ExprIR) -> bool:
    return isinstance(expr, LiteralIR) and isinstance(expr.value, int | float)


def _check_expect(expect: RuleIR, dims: list[str], diags: Diagnostics) -> None:
    expr = expect.expr
    if not (isinstance(expr, BinaryIR) and expr.op in (">=", "<=", ">", "<", "==", "!=")):
        diags.report("unknown-metric", "expect needs a comparison, e.g. `expect kept_rate >= 0.5`", expect.span)
        return
    if not _is_number(expr.right):
        diags.report("type-mismatch", "expect compares a metric with a number, e.g. `expect kept_rate >= 0.5`",
                     expr.right.span)
    metric = expr.left
    if isinstance(metric, NameIR) and metric.dotted in EXPECT_METRICS:
        return
    if isinstance(metric, CallIR) and metric.func in ("mean", "pass_rate"):
        arg = metric.args[0] if metric.args else None
        allowed = [*dims, "score"] if metric.func == "mean" else dims
        if isinstance(arg, NameIR) and arg.dotted in allowed:
            return
        shown = f'"{arg.dotted}" is not one' if isinstance(arg, NameIR) else "none given"
        diags.report("unknown-ref", f"{metric.func}() needs a dimension name: {shown} "
                     f"(dimensions: {', '.join(dims) or 'none declared'})", metric.span,
                     notes=suggest(arg.dotted, allowed) if isinstance(arg, NameIR) else [])
        return
    if isinstance(metric, CallIR) and metric.func == "balance_p" and len(metric.args) == 1:
        return
    shown = metric.dotted if isinstance(metric, NameIR) else getattr(metric, "func", "?")
    diags.report("unknown-metric", f"unknown metric '{shown}' (metrics: {', '.join(EXPECT_METRICS)}, "
                 "mean(DIM), pass_rate(DIM), balance_p(KEY))", metric.span,
                 notes=suggest(shown, [*EXPECT_METRICS, *EXPECT_FUNCTIONS]))


def pass_candidates(ir: IR, diags: Diagnostics) -> None:
    """Best-of-N needs candidates that can differ: a greedy labeller gives N copies of one answer."""
    for label in ir.of_kind("label"):
        n, model = label.fields.get("candidates", 1), label.fields.get("model")
        decl = lookup(ir, model.name, ("model",)) if isinstance(model, RefIR) else None
        if isinstance(n, int) and n > 1 and decl is not None and not decl.fields.get("temperature", 0.0):
            diags.report("greedy-candidates", f"label '{label.name}' asks for {n} candidates from model "
                         f"'{decl.name}', which decodes greedily (temperature 0): they are all the same answer",
                         label.span_of("candidates"), notes=[Note("set a temperature, e.g. 0.7",
                                                                  decl.name_span)])


def pass_training(ir: IR, diags: Diagnostics) -> None:
    for finetune in ir.of_kind("finetune"):
        data = finetune.fields.get("data")
        quality = lookup(ir, data.name, ("quality",)) if isinstance(data, RefIR) else None
        if isinstance(data, RefIR) and quality is not None and not quality.children:
            diags.report("no-training-data", f"finetune '{finetune.name}' trains on quality '{quality.name}', "
                         "which keeps nothing (no dimensions)", data.span)
        max_len = finetune.fields.get("max_len")
        if isinstance(max_len, int) and max_len < MIN_MAX_LEN:
            diags.report("out-of-range", f"max_len = {max_len} cannot hold a training example: the chat template's "
                         "role markers, the system prompt, the answer-format hint and a dialogue alone take more; "
                         f"at least {MIN_MAX_LEN} tokens (real prompts need several hundred)",
                         finetune.span_of("max_len"))


def pass_evaluation(ir: IR, diags: Diagnostics) -> None:
    holdouts: dict[str, DeclIR] = {}  # fine-tune name → the evaluation whose hold-out training excludes
    for evaluate in ir.of_kind("evaluate"):
        model = evaluate.fields.get("model")
        finetune = lookup(ir, model.name, ("finetune",)) if isinstance(model, RefIR) else None
        invalid = "general" in evaluate.field_spans and "general" not in evaluate.fields  # reported already
        if not evaluate.fields.get("general") and not invalid:
            diags.report("no-evaluation-suite", f"evaluate '{evaluate.name}' has no general suite: retention "
                         "cannot be shown", evaluate.name_span)
        if finetune is None:
            continue
        _check_replay_overlap(evaluate, finetune, diags)
        if ir.evaluation_holdout(evaluate) is None:  # gold only: no share of the training data held out
            continue
        first = holdouts.setdefault(finetune.name, evaluate)
        if first is not evaluate and ir.evaluation_holdout(first) != ir.evaluation_holdout(evaluate):
            (fraction, seed), (first_fraction, first_seed) = _pair(ir, evaluate), _pair(ir, first)
            diags.report("holdout-overlap", f"evaluate '{evaluate.name}' holds out {fraction} of "
                         f"'{finetune.name}''s data (seed {seed}) but '{first.name}' holds out {first_fraction} "
                         f"(seed {first_seed}): training excludes only one hold-out, so the other overlaps "
                         "training data", evaluate.span_of("domain"),
                         notes=[Note("other hold-out", first.span_of("domain"))])


def _pair(ir: IR, evaluate: DeclIR) -> tuple[float, int]:
    holdout = ir.evaluation_holdout(evaluate)
    assert holdout is not None  # only evaluations with a domain part reach here
    return holdout


def _check_replay_overlap(evaluate: DeclIR, finetune: DeclIR, diags: Diagnostics) -> None:
    replayed = {s["path"] for s in finetune.fields.get("replay") or []}
    for suite in evaluate.fields.get("general") or []:
        if suite["path"] in replayed:
            diags.report("holdout-overlap", f"suite \"{suite['path']}\" is evaluated but '{finetune.name}' also "
                         "trains on it (replay): the evaluation would measure memorisation",
                         evaluate.span_of("general"), notes=[Note("replayed here", finetune.span_of("replay"))])


READ_FIELDS = {"source": ("path",), "testset": ("path", "references"), "evolve": ("review",)}
SUITE_FIELDS = {"evaluate": ("general",), "finetune": ("replay",), "study": ("general",)}


def pass_project_paths(ir: IR, diags: Diagnostics) -> None:
    """Files a spec reads stay inside the project (dialc.security); outputs outside it are said out loud."""
    policy = current_policy()
    if policy is None:
        return
    base = Path(ir.spec_dir)
    for decl, field, path in _read_paths(ir):
        if not policy.allows(base / path):
            diags.report("outside-project", policy.outside(path, f"{decl.kind}.{field}"), decl.span_of(field))
    for pipeline in ir.of_kind("pipeline"):
        output = pipeline.fields.get("output")
        if isinstance(output, str) and not policy.allows(base / output):
            diags.report("writes-outside-project", f"the run directory {output} is outside the project: records, "
                         f"artifacts and reports are written to {real(base / output)}", pipeline.span_of("output"))


def _read_paths(ir: IR) -> Iterator[tuple[DeclIR, str, str]]:
    """(declaration, field, path) of every local file a spec reads (model paths excepted)."""
    for kind, fields in READ_FIELDS.items():
        for decl in ir.of_kind(kind):
            for field in fields:
                if isinstance(decl.fields.get(field), str):
                    yield decl, field, decl.fields[field]
    for kind, fields in SUITE_FIELDS.items():
        for decl in ir.of_kind(kind):
            for field in fields:
                for suite in decl.fields.get(field) or []:
                    if isinstance(suite, dict) and not str(suite.get("path", "builtin:")).startswith("builtin:"):
                        yield decl, field, str(suite["path"])


def pass_model_keys(ir: IR, diags: Diagnostics) -> None:
    """An API key never goes in clear to another machine unless the model says so."""
    for model in ir.of_kind("model"):
        f = model.fields
        problem = insecure_key_problem(f.get("base_url"), f.get("api_key_env"), bool(f.get("allow_insecure")))
        if f.get("backend") == "openai" and problem:
            diags.report("insecure-key", problem, model.span_of("base_url"))


def pass_model_backend_fields(ir: IR, diags: Diagnostics) -> None:
    """Throughput settings steer requests to a server: on a model run in this process they would do nothing."""
    for model in ir.of_kind("model"):
        backend = model.fields.get("backend", "transformers")
        if backend == "openai":
            continue
        for name in THROUGHPUT_FIELDS:
            if name in model.fields:
                diags.report("backend-field", f"{name} applies to requests sent to a server (backend = openai); "
                             f"model '{model.name}' runs with backend = {backend}, which would ignore it",
                             model.span_of(name))


def pass_files(ir: IR, diags: Diagnostics) -> None:
    base = Path(ir.spec_dir)
    policy = current_policy()
    for source in ir.of_kind("source"):
        path = source.fields.get("path")
        problem = regular_file_problem(base / path, path) if isinstance(path, str) else None
        if problem is None or (policy is not None and not policy.allows(base / str(path))):
            continue  # outside the project: pass_project_paths said so
        if os.path.lexists(base / str(path)) and not (base / str(path)).is_dir():  # a FIFO, a device, a loop …
            diags.report("missing-file", f"source {problem}", source.span_of("path"))
        else:
            diags.report("missing-file", f"source file not found: {path} (relative to {ir.spec_dir or '.'})",
                         source.span_of("path"))
    for model in ir.of_kind("model"):
        path = model.fields.get("path")
        if model.fields.get("backend", "transformers") not in ("transformers", "vllm") or not isinstance(path, str):
            continue
        if not path.startswith("builtin:") and not (base / path).exists():
            diags.report("missing-file", f"model not found: {path} (a builtin:NAME, a local HF directory or "
                         f".gguf file, relative to {ir.spec_dir or '.'})", model.span_of("path"))
    for decl in ir.of_kind("evaluate") + ir.of_kind("finetune") + ir.of_kind("study"):
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

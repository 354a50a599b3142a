"""Checked IR → checks of what production prompts come from: the product, task set and size."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from dialc.diagnostics import Diagnostics
from dialc.ir import IR, DeclIR, RefIR

MAX_COUNTED_BYTES = 64 * 1024 * 1024  # validate counts dialogues only in data files up to this size
PRODUCT_ROLES = {"source": "a dialogue source", "tasks": "a task set (tasks or an evolve block)"}


def product_role(ir: IR, ref: RefIR) -> str | None:
    """What a name in `sample.from` stands for: source, tasks or expressions (None: unknown)."""
    kinds = {d.kind for d in ir.find(ref.name)}
    if "source" in kinds:
        return "source"
    has_tasks = bool(ir.of_kind("task") or ir.of_kind("tasks"))
    if "evolve" in kinds or (ref.name == "tasks" and has_tasks):
        return "tasks"
    return "expressions" if "expressions" in kinds else None


def pass_sample_inputs(ir: IR, diags: Diagnostics) -> None:
    """`from` is one source times one task set (times expression axes)."""
    for sample in ir.of_kind("sample"):
        refs = [r for r in sample.fields.get("from", []) if isinstance(r, RefIR)]
        roles = [product_role(ir, r) for r in refs]
        for role, noun in PRODUCT_ROLES.items():
            found = [r for r, k in zip(refs, roles, strict=True) if k == role]
            if len(found) > 1:
                diags.report("type-mismatch", f"sample '{sample.name}' takes {noun} only once; "
                             f'"{found[1].name}" is a second one', found[1].span)
            elif not found and refs and None not in roles:
                diags.report("missing-field", f"sample '{sample.name}' needs {noun} in 'from' "
                             "(from = SOURCE * TASKS * EXPRESSIONS)", sample.span_of("from"))


def pass_task_set(ir: IR, diags: Diagnostics) -> None:
    """Generation needs a model and dialogues; a task set needs tasks; paraphrases need a model."""
    for tasks in ir.of_kind("tasks"):
        generate = tasks.fields.get("generate", 0)
        missing = [f for f in ("model", "from") if f not in tasks.field_spans]
        if generate and missing:
            diags.report("missing-field", f"tasks: generate = {generate} needs "
                         f"{' and '.join(missing)}", tasks.span_of("generate"))
        elif generate and not ir.of_kind("task") and not tasks.fields.get("categories"):
            diags.report("missing-field", "tasks: with no `task` declared, generate needs "
                         "categories = [...]", tasks.span_of("generate"))
        elif not generate and not ir.of_kind("task") and "generate" not in tasks.field_spans:
            diags.report("missing-field", "the task set is empty: declare `task` blocks or set "
                         "generate (with model and from)", tasks.name_span)
    for expressions in ir.of_kind("expressions"):
        paraphrases = expressions.fields.get("paraphrases", 0)
        if paraphrases and "paraphrase" not in expressions.field_spans:
            diags.report("missing-field", f"paraphrases = {paraphrases} needs a model: "
                         "paraphrase = MODEL", expressions.span_of("paraphrases"))


def pass_sample_size(ir: IR, diags: Diagnostics) -> None:
    """Warn when a sample draws more prompts than there are distinct combinations."""
    for sample in ir.of_kind("sample"):
        count = sample.fields.get("count")
        refs = [ref for ref in sample.fields.get("from", []) if isinstance(ref, RefIR)]
        roles = sorted(str(product_role(ir, ref)) for ref in refs)
        if roles.count("source") != 1 or roles.count("tasks") != 1:
            continue  # a malformed product is reported by pass_sample_inputs
        factors = [_size(ir, ref) for ref in refs]
        if not isinstance(count, int) or None in factors:
            continue  # unknown before running: evolved tasks, unreadable data
        combos = math.prod(f for f in factors if f is not None)
        if count > combos:
            shown = " × ".join(str(f) for f in factors)
            diags.report("sample-too-large", f"sample '{sample.name}' draws {count} prompts, but "
                         f"'from' has only {combos} distinct combinations ({shown})",
                         sample.span_of("count"))


def _size(ir: IR, ref: RefIR) -> int | None:
    role = product_role(ir, ref)
    if role == "source":
        return _dialogue_count(ir, ir.find(ref.name, ("source",))[0])
    if role == "expressions":
        return _expression_count(ir.find(ref.name, ("expressions",))[0])
    if role == "tasks" and not ir.find(ref.name, ("evolve",)):
        return _task_count(ir)
    return None


def _expression_count(decl: DeclIR) -> int:
    # paraphrases are drawn per prompt, not part of what makes a combination distinct
    return math.prod(len(v) for v in decl.fields.values() if isinstance(v, dict))


def _task_count(ir: IR) -> int | None:
    tasks = ir.of_kind("task")
    total = len(tasks)
    for decl in ir.of_kind("tasks"):
        if decl.fields.get("generate"):
            categories = decl.fields.get("categories") or {t.fields.get("category") for t in tasks}
            scenarios = sum(len(s.entries) for s in ir.of_kind("scenarios")) or 1
            total += decl.fields["generate"] * len(categories) * scenarios
    return total or None


def _dialogue_count(ir: IR, source: DeclIR) -> int | None:
    """Dialogues in the file: JSONL lines, or distinct ids of a CSV; None when unreadable."""
    path = Path(ir.spec_dir) / str(source.fields.get("path", ""))
    fmt = source.fields.get("format") or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    try:
        if path.stat().st_size > MAX_COUNTED_BYTES:
            return None
        with path.open(encoding="utf-8-sig", newline="") as handle:
            if fmt == "jsonl":
                return sum(1 for line in handle if line.strip()) or None
            id_field = source.fields.get("id", "id")
            return len({row.get(id_field) for row in csv.DictReader(handle)}) or None
    except (OSError, UnicodeDecodeError, csv.Error):
        return None

"""Checked IR → checks of what production prompts come from: the product, task set and size."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

from dialc.diagnostics import Diagnostics, Note
from dialc.files import open_text
from dialc.ir import IR, DeclIR, RefIR
from dialc.mix import Cell, cell_weights, holdable_count, minimum_shortfall, short_cells

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


def pass_min_per(ir: IR, diags: Diagnostics) -> None:
    """`min_per` is a floor per value of each balance key: it needs a balance, and must fit in `count`."""
    for sample in ir.of_kind("sample"):
        min_per, count = sample.fields.get("min_per", 0), sample.fields.get("count")
        balance = sample.fields.get("balance") or []
        if not min_per or not isinstance(count, int):
            continue
        if not balance:
            diags.report("missing-field", f"min_per = {min_per} is a floor for each value of a balance key, "
                         "but balance is empty: set balance = [scenario, category]", sample.span_of("min_per"))
            continue
        values = _balance_values(ir, sample, balance)
        shortfall = minimum_shortfall(values, count, min_per)
        if shortfall is not None:
            most = max(values.values())
            diags.report("out-of-range", f"sample '{sample.name}': {shortfall}", sample.span_of("min_per"),
                         notes=[Note(f"lower min_per to {count // most} or raise count to {min_per * most}")])


def _balance_values(ir: IR, sample: DeclIR, balance: list[str]) -> dict[str, int]:
    """How many values each balance key has, where that is known without running anything."""
    values: dict[str, int] = {}
    scenarios = sum(len(s.entries) for s in ir.of_kind("scenarios"))
    if "scenario" in balance and scenarios:
        values["scenario"] = scenarios
    categories = {t.fields.get("category") for t in ir.of_kind("task")}
    categories |= {c for t in ir.of_kind("tasks") if t.fields.get("generate") for c in t.fields.get("categories") or []}
    if "category" in balance and categories:
        values["category"] = len(categories)
    for ref in sample.fields.get("from") or []:
        for decl in ir.find(ref.name, ("expressions",)) if isinstance(ref, RefIR) else []:
            values.update({k: sum(1 for w in v.values() if w > 0) for k, v in decl.fields.items()
                           if isinstance(v, dict) and k in balance})
    return values


def pass_sample_mix(ir: IR, diags: Diagnostics) -> None:
    """Warn when a readable corpus cannot supply a sample's declared mix: a (scenario, category) cell with
    fewer distinct prompts than its share of `count`, and the count the mix can hold."""
    for sample in ir.of_kind("sample"):
        cells = _cells(ir, sample)
        count = sample.fields.get("count")
        if cells is None or not isinstance(count, int) or count > sum(cells[1].values()):
            continue  # unknown before running, or already over the total (pass_sample_size)
        weights, capacity = cells
        short = short_cells(weights, capacity, count)
        if short:
            shown = "; ".join(f"{s} × {c} holds only {cap} distinct prompts for a share of {share}"
                              for (s, c), share, cap in short[:3])
            diags.report("sample-too-large", f"sample '{sample.name}' cannot follow its declared mix at count = "
                         f"{count}: {shown}; at most count = {holdable_count(weights, capacity)} keeps the "
                         "declared weights", sample.span_of("count"))


def _cells(ir: IR, sample: DeclIR) -> tuple[dict[Cell, float], dict[Cell, int]] | None:
    """(weight, capacity) per cell from the corpus and the declared tasks; None when not knowable."""
    refs = [r for r in sample.fields.get("from") or [] if isinstance(r, RefIR)]
    roles = [product_role(ir, r) for r in refs]
    evolved = any(ir.find(r.name, ("evolve",)) for r in refs)
    if roles.count("source") != 1 or evolved or any(t.fields.get("generate") for t in ir.of_kind("tasks")):
        return None  # evolved or generated tasks are known only once they exist
    source = ir.find(refs[roles.index("source")].name, ("source",))[0]
    per_scenario = _scenario_counts(ir, source)
    if not per_scenario:
        return None
    tasks = [{"category": t.fields.get("category"), "weight": t.fields.get("weight", 1.0),
              "scenarios": [r.name for r in t.fields.get("scenarios") or []]} for t in ir.of_kind("task")]
    combos = math.prod(_expression_count(d) for r in refs for d in ir.find(r.name, ("expressions",)))
    scenario_weights = {e.name: e.weight for s in ir.of_kind("scenarios") for e in s.entries}
    dialogues = [row for s, n in per_scenario.items() for row in [{"scenario": s}] * n]  # a dict per scenario
    weights = cell_weights(dialogues, tasks, scenario_weights, list(sample.fields.get("balance") or []))
    capacity = {c: per_scenario[c[0]] * combos * sum(1 for t in tasks if t["category"] == c[1] and (
        not t["scenarios"] or c[0] in t["scenarios"])) for c in weights}
    return weights, capacity


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
        with open_text(path, MAX_COUNTED_BYTES) as handle:  # a FIFO or device is refused, not read
            if fmt == "jsonl":
                return sum(1 for line in handle if line.strip()) or None
            id_field = source.fields.get("id", "id")
            return len({row.get(id_field) for row in csv.DictReader(handle)}) or None
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def _scenario_counts(ir: IR, source: DeclIR) -> Counter[str] | None:
    """Dialogues per scenario in the file (JSONL lines, or CSV ids by their first row); None when
    unreadable or a line does not parse (ingest will say which)."""
    path = Path(ir.spec_dir) / str(source.fields.get("path", ""))
    fmt = source.fields.get("format") or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    id_field, scenario = source.fields.get("id", "id"), source.fields.get("scenario", "scenario")
    try:
        with open_text(path, MAX_COUNTED_BYTES) as handle:  # a FIFO or device is refused, not read
            if fmt == "jsonl":
                rows = (json.loads(line) for line in handle if line.strip())  # one at a time: not all held
                return Counter(str(r.get(scenario)) for r in rows if isinstance(r, dict))
            first = {row.get(id_field): row.get(scenario) for row in reversed(list(csv.DictReader(handle)))}
            return Counter(str(s) for s in first.values())
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, RecursionError):
        return None

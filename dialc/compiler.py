"""Checked IR → Plan: one step per unit of work, canonical params, edges from inputs, fingerprints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import networkx as nx

from dialc import syntax as ast
from dialc.ir import IR, DeclIR, RefIR
from dialc.plan import Plan, Step, fingerprint
from dialc.schema import KINDS

MODEL_FIELDS = ("backend", "path", "base_url", "api_key_env", "temperature", "top_p", "max_tokens", "retries",
                "batch_size", "timeout", "tokenizer")


class Lowering:
    """Builds steps from declarations; `steps` maps step id → (step without fingerprint, order)."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir
        self.steps: dict[str, Step] = {}
        self.order: dict[str, int] = {}

    # ---- small utilities
    def add(self, kind: str, name: str, params: dict[str, Any], inputs: list[str], decl: DeclIR,
            locations: dict[str, list[str]] | None = None) -> str:
        step_id = f"{kind}.{name}"
        self.order[step_id] = len(self.order)
        self.steps[step_id] = Step(id=step_id, kind=kind, name=name, params=params, inputs=inputs,
                                   span=decl.name_span, locations=locations or {})
        return step_id

    def seed(self, decl: DeclIR) -> int:
        return int(decl.fields.get("seed", self.ir.seed))

    def path(self, relative: str) -> str:
        """A spec-relative path as a path relative to the working directory (POSIX separators)."""
        if relative.startswith("builtin:") or os.path.isabs(relative):
            return relative
        return Path(os.path.relpath(Path(self.ir.spec_dir) / relative)).as_posix()

    def decl(self, ref: RefIR | str, kinds: tuple[str, ...]) -> DeclIR:
        name = ref.name if isinstance(ref, RefIR) else ref
        return self.ir.find(name, kinds)[0]

    def model(self, ref: RefIR) -> dict[str, Any]:
        decl = self.decl(ref, ("model",))
        cfg: dict[str, Any] = {"name": decl.name}
        cfg.update({k: decl.fields[k] for k in MODEL_FIELDS if k in decl.fields})
        if cfg.get("backend") == "transformers":
            cfg["path"] = self.path(cfg["path"])
        return cfg

    def task_step(self, ref: RefIR) -> str:
        """The step whose records are the usable tasks: the task set, an evolve, or its review gate."""
        if ref.name == "tasks" and not self.ir.find("tasks", ("evolve",)):
            return "tasks.tasks"
        evolve = self.decl(ref, ("evolve",))
        review_id = f"review.{evolve.name}"
        return review_id if review_id in self.steps else evolve.id


def compile_plan(ir: IR, spec_path: str) -> Plan:
    """Lower every declaration; the IR must be free of errors (run the checks first)."""
    low = Lowering(ir)
    pipeline = ir.pipeline
    for kind, lower in _LOWERERS.items():  # dependency order of kinds, declaration order within
        if kind == "evolve" and ir.of_kind("task") and "tasks.tasks" not in low.steps:
            _lower_tasks(low, None)
        for decl in ir.of_kind(kind):
            lower(low, decl)
    name = pipeline.name if pipeline else Path(spec_path).stem
    output = pipeline.fields.get("output") if pipeline else None
    settings = {"seed": ir.seed, "output": low.path(output) if output else f"runs/{name}"}
    steps = _finalise(low)
    return Plan(pipeline=name, spec=Path(spec_path).as_posix(), settings=settings, steps=steps)


def _finalise(low: Lowering) -> list[Step]:
    """Stable topological order (ties by declaration order) and fingerprints along it."""
    graph = nx.DiGraph()
    for step in low.steps.values():
        graph.add_node(step.id)
        for dep in step.inputs:
            graph.add_edge(dep, step.id)
    ordered = nx.lexicographical_topological_sort(graph, key=lambda s: (low.order.get(s, 0), s))
    prints: dict[str, str] = {}
    result = []
    for step_id in ordered:
        step = low.steps[step_id]
        prints[step_id] = fingerprint(step.kind, step.name, step.params, [prints[i] for i in step.inputs])
        result.append(step.model_copy(update={"fingerprint": prints[step_id]}))
    return result


def _lower_source(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    path = low.path(f["path"])
    fmt = f.get("format") or ("csv" if path.lower().endswith(".csv") else "jsonl")
    params = {"path": path, "format": fmt, "files": [path], "roles": f["roles"],
              "fields": {k: f[k] for k in ("id", "scenario", "turns", "role", "text")},
              "on_error": f["on_error"], "pii_scrub": f["pii_scrub"],
              "scenarios": _scenarios(low.ir)}
    low.add("ingest", decl.name, params, [], decl)


def _scenarios(ir: IR) -> dict[str, dict[str, Any]]:
    return {e.name: {"description": e.description, "weight": e.weight}
            for s in ir.of_kind("scenarios") for e in s.entries}


def _task_record(decl: DeclIR) -> dict[str, Any]:
    f = decl.fields
    return {"id": decl.name, "category": f["category"], "instruction": f["instruction"], "output": f["output"],
            "weight": f.get("weight", 1.0), "scenarios": [r.name for r in f.get("scenarios", [])],
            "origin": "declared", "chain": []}


def _lower_tasks(low: Lowering, decl: DeclIR | None) -> None:
    declared = [_task_record(t) for t in low.ir.of_kind("task") if "output" in t.fields]
    params: dict[str, Any] = {"declared": declared, "generate": None}
    inputs: list[str] = []
    anchor = decl or low.ir.of_kind("task")[0]
    if decl is not None and decl.fields.get("generate") and "model" in decl.fields and "from" in decl.fields:
        source = low.decl(decl.fields["from"], ("source",))
        inputs.append(source.id.replace("source.", "ingest.", 1))
        params["generate"] = {"model": low.model(decl.fields["model"]), "per_scenario": decl.fields["generate"],
                              "categories": decl.fields.get("categories") or sorted({t["category"] for t in declared}),
                              "scenarios": _scenarios(low.ir)}
    params["dedup_threshold"] = decl.fields["dedup"] if decl is not None else 0.7
    params["seed"] = low.seed(decl) if decl is not None else low.ir.seed
    low.add("tasks", "tasks", params, inputs, anchor)


def _lower_evolve(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    prompts = f.get("prompts", {})
    inputs = [low.task_step(f["from"])]
    if "context" in f:
        inputs.append("ingest." + f["context"].name)
    params = {"model": low.model(f["model"]), "operators": [{"name": o, "prompt": prompts.get(o)}
                                                             for o in f["operators"]],
              "rounds": f["rounds"], "per_round": f["per_round"],
              "review": low.path(f["review"]) if f.get("review") else None, "seed": low.seed(decl)}
    evolve_id = low.add("evolve", decl.name, params, inputs, decl)
    if params["review"]:  # the human gate: a cheap step keyed on the review file's contents
        review = {"path": params["review"], "files": [params["review"]]}
        low.add("review", decl.name, review, [evolve_id], decl)


def _lower_expressions(low: Lowering, decl: DeclIR) -> None:
    axes = {k: v for k, v in decl.fields.items() if isinstance(v, dict)}
    params: dict[str, Any] = {"axes": axes, "paraphrase": None}
    inputs: list[str] = []
    if decl.fields.get("paraphrases") and "paraphrase" in decl.fields and "tasks.tasks" in low.steps:
        params["paraphrase"] = {"model": low.model(decl.fields["paraphrase"]), "n": decl.fields["paraphrases"]}
        inputs.append("tasks.tasks")
    low.add("expressions", decl.name, params, inputs, decl)


def _lower_sample(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    inputs: list[str] = []
    axes: dict[str, Any] = {}
    for ref in f["from"]:
        target_kinds = [d.kind for d in low.ir.find(ref.name, ("source", "evolve", "expressions", "tasks"))]
        if "source" in target_kinds:
            inputs.append("ingest." + ref.name)
        elif "expressions" in target_kinds:
            inputs.append("expressions." + ref.name)
            axes.update({k: v for k, v in low.decl(ref, ("expressions",)).fields.items() if isinstance(v, dict)})
        else:
            inputs.append(low.task_step(ref))
    params = {"count": f["count"], "balance": f.get("balance", []), "min_per": f["min_per"],
              "axes": axes, "scenarios": _scenarios(low.ir), "template": f.get("template"),
              "system": f.get("system"), "seed": low.seed(decl)}
    low.add("sample", decl.name, params, inputs, decl)


def _lower_label(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    model = low.model(f["model"])
    if "max_tokens" in f:
        model["max_tokens"] = f["max_tokens"]
    low.add("label", decl.name, {"model": model, "seed": low.seed(decl)}, ["sample." + f["from"].name], decl)


def _lower_quality(low: Lowering, decl: DeclIR) -> None:
    label = low.decl(decl.fields["from"], ("label",))
    sample = low.decl(label.fields["from"], ("sample",))
    source_inputs = [i for i in low.steps[sample.id].inputs if i.startswith("ingest.")]
    score_ids = []
    for dim in decl.children:
        dimension = {"name": dim.name, "kind": dim.qualifier, **_plain(dim.fields)}
        if dim.qualifier == "judge":
            dimension["model"] = low.model(dim.fields["model"])
        inputs = [label.id, *source_inputs] if dim.qualifier in ("grounding", "judge") else [label.id]
        score_ids.append(low.add("score", dim.name, {"dimension": dimension, "seed": low.seed(decl)}, inputs, dim))
    dims = {d.name: {"kind": d.qualifier, "weight": d.fields.get("weight", 1.0), "gate": d.fields.get("gate", False)}
            for d in decl.children}
    keep = [expr_json(k.expr) for k in decl.keep]
    params = {"dimensions": dims, "keep": _conjunction(keep), "top_k": decl.fields["top_k"],
              "expects": [_expect_json(e) for e in decl.expects]}
    locations = {"expects": [e.span.location() for e in decl.expects]}
    low.add("filter", decl.name, params, [label.id, *score_ids], decl, locations)


def _conjunction(exprs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not exprs:
        return None
    result = exprs[0]
    for expr in exprs[1:]:
        result = {"op": "and", "left": result, "right": expr}
    return result


def expr_json(expr: ast.Expr) -> Any:
    """A keep/expect expression as a small JSON AST the runtime evaluates."""
    if isinstance(expr, ast.Num | ast.Str):
        return expr.value
    if isinstance(expr, ast.Ref):
        return {"ref": ".".join(expr.parts)}
    if isinstance(expr, ast.Not):
        return {"op": "not", "operand": expr_json(expr.operand)}
    if isinstance(expr, ast.Call):
        return {"call": expr.func, "args": [a.name if isinstance(a, ast.Name) else getattr(a, "value", None)
                                            for a in expr.args]}
    return {"op": expr.op, "left": expr_json(expr.left), "right": expr_json(expr.right)}


def _expect_json(expect: ast.Expect) -> dict[str, Any]:
    expr = expect.expr
    assert isinstance(expr, ast.BinOp)
    left = expr_json(expr.left)
    metric = left["ref"] if "ref" in left else f"{left['call']}:{left['args'][0] if left['args'] else ''}"
    return {"metric": metric, "op": expr.op, "value": expr_json(expr.right)}


def _lower_export(low: Lowering, decl: DeclIR) -> None:
    quality = low.decl(decl.fields["from"], ("quality",))
    params = {"formats": decl.fields["formats"], "include": decl.fields["include"]}
    low.add("export", decl.name, params, [quality.id.replace("quality.", "filter.", 1)], decl)


def _lower_finetune(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    quality = low.decl(f["data"], ("quality",))
    holdout = _holdout_for(low.ir, decl)
    params = {k: f[k] for k in ("epochs", "max_steps", "lr", "schedule", "warmup", "batch_size", "grad_accum",
                                "max_len", "packing", "merge")}
    params.update({"base": low.model(f["base"]), "method": f["method"], "holdout": holdout,
                   "replay": [_suite(low, s) for s in f.get("replay") or []], "seed": low.seed(decl)})
    params["files"] = [s["path"] for s in params["replay"] if not s["path"].startswith("builtin:")]
    low.add("finetune", decl.name, params, ["filter." + quality.name], decl)


def _holdout_for(ir: IR, finetune: DeclIR) -> dict[str, Any] | None:
    for evaluate in ir.of_kind("evaluate"):
        model = evaluate.fields.get("model")
        if isinstance(model, RefIR) and model.name == finetune.name and evaluate.fields.get("domain"):
            return {"fraction": evaluate.fields["domain"]["fraction"], "seed": int(evaluate.fields.get("seed",
                                                                                                       ir.seed))}
    return None


def _suite(low: Lowering, suite: dict[str, Any]) -> dict[str, Any]:
    return {**suite, "path": low.path(suite["path"])}


def _lower_evaluate(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    finetune = low.decl(f["model"], ("finetune",))
    quality = low.decl(finetune.fields["data"], ("quality",))
    general = [_suite(low, s) for s in f.get("general") or []]
    params = {"finetune": finetune.id, "base": low.model(finetune.fields["base"]),
              "domain": ({**f["domain"], "seed": low.seed(decl)} if f.get("domain") else None),
              "general": general, "max_drop": f["max_drop"], "limit": f["limit"], "seed": low.seed(decl),
              "files": [s["path"] for s in general if not s["path"].startswith("builtin:")
                        and Path(s["path"]).is_file()]}
    low.add("evaluate", decl.name, params, [finetune.id, "filter." + quality.name], decl)


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.name if isinstance(v, RefIR) else v) for k, v in fields.items()}


def _lower_study(low: Lowering, decl: DeclIR) -> None:
    """Each tier is trained like the target (same params) and scored like its evaluation."""
    finetune = low.steps["finetune." + decl.fields["finetune"].name]
    evaluations = [s for s in low.steps.values() if s.kind == "evaluate" and s.params["finetune"] == finetune.id]
    general = [_suite(low, s) for s in decl.fields.get("general") or []]
    if not general and evaluations:
        general = evaluations[0].params["general"]
    params = {**finetune.params, "tiers": decl.fields["tiers"], "general": general,
              "limit": decl.fields["limit"] or (evaluations[0].params["limit"] if evaluations else 0),
              "seed": low.seed(decl)}
    params["files"] = sorted({*finetune.params["files"], *(s["path"] for s in general
                                                          if not s["path"].startswith("builtin:")
                                                          and Path(s["path"]).is_file())})
    low.add("study", decl.name, params, list(finetune.inputs), decl)


_LOWERERS = {
    "source": _lower_source, "tasks": _lower_tasks, "evolve": _lower_evolve, "expressions": _lower_expressions,
    "sample": _lower_sample, "label": _lower_label, "quality": _lower_quality, "export": _lower_export,
    "finetune": _lower_finetune, "evaluate": _lower_evaluate, "study": _lower_study,
}
assert set(_LOWERERS) <= set(KINDS)

"""Checked IR → Plan: one typed step per unit of work, inputs by role, edges from inputs, fingerprints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dialc.ir import IR, BinaryIR, CallIR, DeclIR, ExprIR, LiteralIR, NameIR, NotIR, RefIR, RuleIR
from dialc.lower_gold import gold_set, prompt_format, sample_prompt_format
from dialc.plan import (
    CalibrateParams,
    DimensionWeight,
    EvaluateParams,
    EvolveParams,
    Expect,
    ExportParams,
    ExpressionsParams,
    FilterParams,
    FinetuneParams,
    GenerateTasks,
    Holdout,
    IngestParams,
    LabelParams,
    ModelSpec,
    Operator,
    Paraphrase,
    Plan,
    ReviewParams,
    SampleParams,
    Scenario,
    ScoreParams,
    Step,
    StepKind,
    StepParams,
    StudyParams,
    Suite,
    TasksParams,
    TaskSpec,
    fingerprint,
    resolve_path,
)
from dialc.samples import product_role
from dialc.schema import KINDS

MODEL_FIELDS = tuple(KINDS["model"].fields)  # every field of a model declaration goes into its ModelSpec
TRAINING_FIELDS = ("epochs", "max_steps", "lr", "schedule", "warmup", "batch_size", "grad_accum", "max_len",
                   "packing", "merge")
# the step kind whose records stand for a declaration of each kind when another declaration names it
OUTPUT_KIND = {"source": StepKind.INGEST, "tasks": StepKind.TASKS, "task": StepKind.TASKS,
               "expressions": StepKind.EXPRESSIONS, "sample": StepKind.SAMPLE, "label": StepKind.LABEL,
               "quality": StepKind.FILTER, "finetune": StepKind.FINETUNE}


def step_id(kind: StepKind, name: str) -> str:
    """The one spelling of a step id: `<kind>.<name>` (dbt style)."""
    return f"{kind.value}.{name}"


class Lowering:
    """Builds typed steps from declarations; remembers which step stands for each declaration."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir
        self.steps: dict[str, Step] = {}
        self.order: dict[str, int] = {}
        self.outputs: dict[str, str] = {}  # declaration id → id of the step whose records it names
        self.scenarios = _scenarios(ir)  # the taxonomy, built once (ingest, tasks and sample carry it)
        self.gated: set[str] = set()  # expressions steps whose paraphrases pass a review step

    def add(self, kind: StepKind, name: str, params: StepParams, inputs: dict[str, list[str]], decl: DeclIR,
            locations: dict[str, list[str]] | None = None) -> str:
        sid = step_id(kind, name)
        self.order[sid] = len(self.order)
        self.steps[sid] = Step(id=sid, kind=kind.value, name=name, params=params,
                               inputs={role: ids for role, ids in inputs.items() if ids}, span=decl.name_span,
                               locations=locations or {})
        return sid

    def path(self, relative: str) -> str:
        """A path as written in the spec: relative to the spec's folder (normalised, POSIX separators).

        The plan never holds a path relative to the working directory, so its params and cache keys
        are the same wherever dialc runs; the executor resolves them (dialc.plan.resolve_paths)."""
        if relative.startswith("builtin:") or os.path.isabs(relative):
            return relative
        return Path(os.path.normpath(relative)).as_posix()

    def exists(self, path: str) -> bool:
        """Whether a plan path (spec-relative) names an existing file, seen from the working directory."""
        return Path(resolve_path(path, self.ir.spec_dir)).is_file()

    def decl(self, ref: RefIR | str, kinds: tuple[str, ...]) -> DeclIR:
        name = ref.name if isinstance(ref, RefIR) else ref
        return self.ir.find(name, kinds)[0]

    def output(self, ref: RefIR, kinds: tuple[str, ...]) -> str:
        """The id of the step whose records a reference stands for (`tasks` = the task set)."""
        if ref.name == "tasks" and "tasks" in kinds and not self.ir.find("tasks", ("evolve",)):
            return self.outputs["tasks.tasks"]
        return self.outputs[self.decl(ref, kinds).id]

    def model(self, ref: RefIR) -> ModelSpec:
        decl = self.decl(ref, ("model",))
        cfg: dict[str, Any] = {k: decl.fields[k] for k in MODEL_FIELDS if k in decl.fields}
        if cfg.get("backend", "transformers") in ("transformers", "vllm"):
            cfg["path"] = self.path(cfg["path"])
        return ModelSpec(name=decl.name, **cfg)

    def suites(self, suites: list[dict[str, Any]] | None) -> list[Suite]:
        return [Suite(**{**s, "path": self.path(s["path"]), **_listed(s, "subjects")}) for s in suites or []]


def _listed(fields: dict[str, Any], key: str) -> dict[str, Any]:
    """`subjects = "law"` and `subjects = [law, art]` alike as a list."""
    value = fields.get(key)
    return {key: [value]} if isinstance(value, str) else {}


def compile_plan(ir: IR, spec_path: str) -> Plan:
    """Lower every declaration; the IR must be free of errors (run the checks first)."""
    low = Lowering(ir)
    pipeline = ir.pipeline
    for kind, lower in _LOWERERS.items():  # dependency order of kinds, declaration order within
        if kind == "evolve" and ir.of_kind("task") and "tasks.tasks" not in low.outputs:
            _lower_tasks(low, None)
        for decl in ir.of_kind(kind):
            lower(low, decl)
    name = pipeline.name if pipeline else Path(spec_path).stem
    output = pipeline.fields.get("output") if pipeline else None
    settings = {"seed": ir.seed, "output": low.path(output) if output else f"runs/{name}"}  # spec-relative
    steps = _finalise(low)
    return Plan(pipeline=name, spec=Path(spec_path).as_posix(), settings=settings, steps=steps)


def _finalise(low: Lowering) -> list[Step]:
    """Stable topological order (ties by declaration order) and fingerprints along it."""
    import networkx as nx  # compile needs it, validate does not

    graph = nx.DiGraph()
    for step in low.steps.values():
        graph.add_node(step.id)
        for dep in step.input_ids:
            graph.add_edge(dep, step.id)
    ordered = nx.lexicographical_topological_sort(graph, key=lambda s: (low.order.get(s, 0), s))
    prints: dict[str, str] = {}
    result = []
    for sid in ordered:
        step = low.steps[sid]
        prints[sid] = fingerprint(step.kind, step.name, step.params_json(), [prints[i] for i in step.input_ids])
        result.append(step.model_copy(update={"fingerprint": prints[sid]}))
    return result


def _scenarios(ir: IR) -> dict[str, Scenario]:
    return {e.name: Scenario(description=e.description, weight=e.weight)
            for s in ir.of_kind("scenarios") for e in s.entries}


def _lower_source(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    path = low.path(f["path"])
    fmt = f.get("format") or ("csv" if path.lower().endswith(".csv") else "jsonl")
    params = IngestParams.model_validate({
        "path": path, "format": fmt, "files": [path], "roles": f["roles"],
        "fields": {k: f[k] for k in ("id", "scenario", "turns", "role", "text")}, "on_error": f["on_error"],
        "pii_scrub": f["pii_scrub"], "scenarios": low.scenarios, "max_quarantine": f["max_quarantine"]})
    low.outputs[decl.id] = low.add(StepKind.INGEST, decl.name, params, {}, decl)


def _task_spec(decl: DeclIR) -> TaskSpec:
    f = decl.fields
    return TaskSpec(id=decl.name, category=f["category"], instruction=f["instruction"], output=f["output"],
                    weight=f.get("weight", 1.0), scenarios=[r.name for r in f.get("scenarios", [])])


def _lower_tasks(low: Lowering, decl: DeclIR | None) -> None:
    declared = [_task_spec(t) for t in low.ir.of_kind("task") if "output" in t.fields]
    generate = None
    dialogues: list[str] = []
    anchor = decl or low.ir.of_kind("task")[0]
    if decl is not None and decl.fields.get("generate") and "model" in decl.fields and "from" in decl.fields:
        dialogues.append(low.output(decl.fields["from"], ("source",)))
        generate = GenerateTasks(model=low.model(decl.fields["model"]), per_scenario=decl.fields["generate"],
                                 categories=decl.fields.get("categories") or sorted({t.category for t in declared}),
                                 scenarios=low.scenarios)
    params = TasksParams(declared=declared, generate=generate,
                         dedup_threshold=decl.fields["dedup"] if decl is not None else 0.7,
                         seed=low.ir.seed_of(decl) if decl is not None else low.ir.seed)
    sid = low.add(StepKind.TASKS, "tasks", params, {"dialogues": dialogues}, anchor)
    low.outputs["tasks.tasks"] = sid
    for task in low.ir.of_kind("task"):
        low.outputs[task.id] = sid


def _lower_evolve(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    prompts = f.get("prompts", {})
    dialogues = [low.output(f["context"], ("source",))] if "context" in f else []
    review = low.path(f["review"]) if f.get("review") else None
    params = EvolveParams(model=low.model(f["model"]), operators=[Operator(name=o, prompt=prompts.get(o))
                                                                   for o in f["operators"]],
                          rounds=f["rounds"], per_round=f["per_round"], review=review, seed=low.ir.seed_of(decl))
    inputs = {"tasks": [low.output(f["from"], ("tasks", "evolve"))], "dialogues": dialogues}
    evolve_id = low.add(StepKind.EVOLVE, decl.name, params, inputs, decl)
    low.outputs[decl.id] = evolve_id
    if review:  # the human gate: a cheap step keyed on the review file's contents
        gate = ReviewParams(path=review, files=[review])
        low.outputs[decl.id] = low.add(StepKind.REVIEW, decl.name, gate, {"candidates": [evolve_id]}, decl)


def _axes(decl: DeclIR) -> dict[str, dict[str, float]]:
    return {k: v for k, v in decl.fields.items() if isinstance(v, dict)}


def _lower_expressions(low: Lowering, decl: DeclIR) -> None:
    """Paraphrases are made of the task set the samples draw (evolved tasks included); behind a review
    gate they are made of its candidates and join them at the gate, so none reaches a sample unreviewed."""
    paraphrase = None
    tasks: list[str] = []
    gate: Step | None = None
    if decl.fields.get("paraphrases") and "paraphrase" in decl.fields and "tasks.tasks" in low.outputs:
        paraphrase = Paraphrase(model=low.model(decl.fields["paraphrase"]), n=decl.fields["paraphrases"])
        source = low.steps[_paraphrased_tasks(low, decl)]
        gate = source if source.kind == StepKind.REVIEW else None
        tasks.append(gate.role("candidates")[0] if gate is not None else source.id)
    params = ExpressionsParams(axes=_axes(decl), paraphrase=paraphrase)
    sid = low.outputs[decl.id] = low.add(StepKind.EXPRESSIONS, decl.name, params, {"tasks": tasks}, decl)
    if gate is not None:
        inputs = {**gate.inputs, "candidates": [*gate.role("candidates"), sid]}
        low.steps[gate.id] = gate.model_copy(update={"inputs": inputs})
        low.gated.add(sid)


def _paraphrased_tasks(low: Lowering, decl: DeclIR) -> str:
    """The step of the task set drawn together with these expressions (the declared tasks by default)."""
    for sample in low.ir.of_kind("sample"):
        refs = [r for r in sample.fields.get("from", []) if isinstance(r, RefIR)]
        if any(r.name == decl.name and product_role(low.ir, r) == "expressions" for r in refs):
            for ref in refs:
                if product_role(low.ir, ref) == "tasks":
                    return low.output(ref, ("tasks", "evolve"))
    return low.outputs["tasks.tasks"]


def _sample_sources(low: Lowering, sample: DeclIR) -> list[DeclIR]:
    return [d for ref in sample.fields["from"] for d in low.ir.find(ref.name, ("source",))]


def _lower_sample(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    inputs: dict[str, list[str]] = {"dialogues": [], "tasks": [], "expressions": []}
    axes: dict[str, dict[str, float]] = {}
    for ref in f["from"]:
        kinds = [d.kind for d in low.ir.find(ref.name, ("source", "evolve", "expressions", "tasks"))]
        if "source" in kinds:
            inputs["dialogues"].append(low.output(ref, ("source",)))
        elif "expressions" in kinds:
            expressions = low.output(ref, ("expressions",))
            if expressions not in low.gated:  # gated paraphrases arrive through the review step
                inputs["expressions"].append(expressions)
            axes.update(_axes(low.decl(ref, ("expressions",))))
        else:
            inputs["tasks"].append(low.output(ref, ("tasks", "evolve")))
    params = SampleParams(count=f["count"], balance=f.get("balance", []), min_per=f["min_per"], axes=axes,
                          scenarios=low.scenarios, template=f.get("template"), system=f.get("system"),
                          seed=low.ir.seed_of(decl))
    low.outputs[decl.id] = low.add(StepKind.SAMPLE, decl.name, params, inputs, decl)


def _lower_label(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    model = low.model(f["model"])
    if "max_tokens" in f:
        model = model.model_copy(update={"max_tokens": f["max_tokens"]})
    params = LabelParams(model=model, seed=low.ir.seed_of(decl), candidates=f["candidates"])
    low.outputs[decl.id] = low.add(StepKind.LABEL, decl.name, params, {"prompts": [low.output(f["from"],
                                                                                              ("sample",))]}, decl)


def _dimension(low: Lowering, dim: DeclIR) -> dict[str, Any]:
    settings: dict[str, Any] = {"name": dim.name, "kind": dim.qualifier, **_plain(dim.fields)}
    if dim.qualifier == "judge":
        settings["model"] = low.model(dim.fields["model"])
    return settings


def _lower_quality(low: Lowering, decl: DeclIR) -> None:
    label = low.decl(decl.fields["from"], ("label",))
    sample = low.decl(label.fields["from"], ("sample",))
    labels = [low.outputs[label.id]]
    dialogues = [low.outputs[s.id] for s in _sample_sources(low, sample)]
    score_ids = []
    for dim in decl.children:
        inputs = {"labels": labels, "dialogues": dialogues if dim.qualifier in ("grounding", "judge") else []}
        score = ScoreParams.model_validate({"dimension": _dimension(low, dim), "seed": low.ir.seed_of(decl)})
        score_ids.append(low.add(StepKind.SCORE, dim.name, score, inputs, dim))
    dims = {d.name: DimensionWeight(kind=d.qualifier or "", weight=d.fields.get("weight", 1.0),
                                    gate=d.fields.get("gate", False)) for d in decl.children}
    keep = [expr_json(k.expr) for k in decl.keep]
    params = FilterParams(dimensions=dims, keep=_conjunction(keep), top_k=decl.fields["top_k"],
                          expects=[_expect(e) for e in decl.expects])
    locations = {"expects": [e.span.location() for e in decl.expects]}
    low.outputs[decl.id] = low.add(StepKind.FILTER, decl.name, params, {"labels": labels, "scores": score_ids},
                                   decl, locations)
    if isinstance((decl.fields.get("calibrate") or {}).get("gold"), RefIR):
        _lower_calibrate(low, decl, label, sample, params)


def _lower_calibrate(low: Lowering, decl: DeclIR, label: DeclIR, sample: DeclIR, rule: FilterParams) -> None:
    """`quality { calibrate = gold(NAME) }`: the labeller on the test set, scored by the block's dimensions."""
    testset = low.decl(decl.fields["calibrate"]["gold"], ("testset",))
    labelling = low.steps[low.outputs[label.id]].params
    assert isinstance(labelling, LabelParams)
    gold = gold_set(low.ir, testset, low.path, _task_spec)
    dimensions = [ScoreParams.model_validate({"dimension": _dimension(low, d), "seed": 0}).dimension
                  for d in decl.children]
    params = CalibrateParams(model=labelling.model, candidates=labelling.candidates, dimensions=dimensions,
                             weights=rule.dimensions, keep=rule.keep, gold=gold,
                             prompt=sample_prompt_format(low.ir, sample), gold_limit=decl.fields["calibrate_limit"],
                             seed=low.ir.seed_of(decl), files=[gold.path, gold.references])
    low.add(StepKind.CALIBRATE, decl.name, params, {}, decl)


def _conjunction(exprs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not exprs:
        return None
    result = exprs[0]
    for expr in exprs[1:]:
        result = {"op": "and", "left": result, "right": expr}
    return result


def expr_json(expr: ExprIR) -> Any:
    """A keep/expect expression as a small JSON AST the runtime evaluates."""
    if isinstance(expr, LiteralIR):
        return expr.value
    if isinstance(expr, NameIR):
        return {"ref": expr.dotted}
    if isinstance(expr, NotIR):
        return {"op": "not", "operand": expr_json(expr.operand)}
    if isinstance(expr, CallIR):
        return {"call": expr.func, "args": [a.dotted if isinstance(a, NameIR) else a.value for a in expr.args]}
    return {"op": expr.op, "left": expr_json(expr.left), "right": expr_json(expr.right)}


def _expect(expect: RuleIR) -> Expect:
    expr = expect.expr
    assert isinstance(expr, BinaryIR)
    left = expr_json(expr.left)
    metric = left["ref"] if "ref" in left else f"{left['call']}:{left['args'][0] if left['args'] else ''}"
    return Expect.model_validate({"metric": metric, "op": expr.op, "value": expr_json(expr.right)})


def _lower_export(low: Lowering, decl: DeclIR) -> None:
    quality = low.decl(decl.fields["from"], ("quality",))
    params = ExportParams(formats=decl.fields["formats"], include=decl.fields["include"],
                          holdout=_export_holdout(low, quality))
    records = [low.outputs[quality.id]]
    low.add(StepKind.EXPORT, decl.name, params, {"records": records}, decl)


def _export_holdout(low: Lowering, quality: DeclIR) -> Holdout | None:
    """The hold-out of the first fine-tune trained on the same quality block (exported as its own split)."""
    for finetune in low.ir.of_kind("finetune"):
        data = finetune.fields.get("data")
        if isinstance(data, RefIR) and low.decl(data, ("quality",)).id == quality.id:
            holdout = _holdout(low, finetune)
            if holdout is not None:
                return holdout
    return None


def _holdout(low: Lowering, finetune: DeclIR) -> Holdout | None:
    split = low.ir.finetune_holdout(finetune)
    return Holdout(fraction=split[0], seed=split[1]) if split else None


def _training(low: Lowering, finetune: DeclIR) -> dict[str, Any]:
    """A fine-tune target's training settings (finetune and every study tier train alike)."""
    f = finetune.fields
    replay = low.suites(f.get("replay"))
    return {**{k: f[k] for k in TRAINING_FIELDS}, "base": low.model(f["base"]), "method": f["method"],
            "replay": replay, "holdout": _holdout(low, finetune),
            "files": [s.path for s in replay if not s.path.startswith("builtin:")]}


def _lower_finetune(low: Lowering, decl: DeclIR) -> None:
    records = [low.output(decl.fields["data"], ("quality",))]
    params = FinetuneParams(**_training(low, decl), seed=low.ir.seed_of(decl))
    low.outputs[decl.id] = low.add(StepKind.FINETUNE, decl.name, params, {"records": records}, decl)


def _suite_files(low: Lowering, suites: list[Suite]) -> list[str]:
    return [s.path for s in suites if not s.path.startswith("builtin:") and low.exists(s.path)]


def _lower_evaluate(low: Lowering, decl: DeclIR) -> None:
    f = decl.fields
    finetune = low.decl(f["model"], ("finetune",))
    split = low.ir.evaluation_holdout(decl)
    general = low.suites(f.get("general"))
    testset = low.ir.evaluation_gold(decl)
    gold = gold_set(low.ir, testset, low.path, _task_spec) if testset is not None else None
    files = _suite_files(low, general) + ([gold.path, gold.references] if gold is not None else [])
    params = EvaluateParams(base=low.model(finetune.fields["base"]),
                            holdout=Holdout(fraction=split[0], seed=split[1]) if split else None,
                            gold=gold, gold_limit=f["gold_limit"],
                            prompt=prompt_format(low.ir, finetune) if gold is not None else None,
                            general=general, max_drop=f["max_drop"], limit=f["limit"], seed=low.ir.seed_of(decl),
                            files=files)
    inputs = {"adapter": [low.outputs[finetune.id]], "records": [low.output(finetune.fields["data"], ("quality",))]}
    low.add(StepKind.EVALUATE, decl.name, params, inputs, decl)


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.name if isinstance(v, RefIR) else v) for k, v in fields.items()}


def _lower_study(low: Lowering, decl: DeclIR) -> None:
    """Each tier is trained like the target (same settings) and scored like its first evaluation (its gold
    test set, general suites and hold-out)."""
    finetune = low.decl(decl.fields["finetune"], ("finetune",))
    evaluations = [e for e in low.ir.of_kind("evaluate")
                   if isinstance(e.fields.get("model"), RefIR) and e.fields["model"].name == finetune.name]
    first = evaluations[0].fields if evaluations else {}
    general = low.suites(decl.fields.get("general") or first.get("general"))
    testset = low.ir.evaluation_gold(evaluations[0]) if evaluations else None
    gold = gold_set(low.ir, testset, low.path, _task_spec) if testset is not None else None
    gold_limit = decl.fields.get("gold_limit")
    training = _training(low, finetune)
    gold_files = [gold.path, gold.references] if gold is not None else []
    training["files"] = sorted({*training["files"], *_suite_files(low, general), *gold_files})
    params = StudyParams(**training, tiers=decl.fields["tiers"], per_task=decl.fields["per_task"], general=general,
                         limit=decl.fields["limit"] or first.get("limit", 0), seed=low.ir.seed_of(decl),
                         gold=gold, gold_limit=first.get("gold_limit", 0) if gold_limit is None else gold_limit,
                         prompt=prompt_format(low.ir, finetune) if gold is not None else None)
    records = [low.output(finetune.fields["data"], ("quality",))]
    low.add(StepKind.STUDY, decl.name, params, {"records": records}, decl)


_LOWERERS = {
    "source": _lower_source, "tasks": _lower_tasks, "evolve": _lower_evolve, "expressions": _lower_expressions,
    "sample": _lower_sample, "label": _lower_label, "quality": _lower_quality, "export": _lower_export,
    "finetune": _lower_finetune, "evaluate": _lower_evaluate, "study": _lower_study,
}
assert set(_LOWERERS) <= set(KINDS)

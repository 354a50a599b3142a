"""Plan: the compiler's output and the runtime's input, a DAG of typed steps serialised as canonical JSON.

This module is the one contract between the two halves: a `StepKind` enum, one pydantic params model
per kind (sharing `ModelSpec`, `Holdout`, `Suite` and the output constraints), and inputs keyed by
role. `docs/contracts.md` is generated from these types (`python -m dialc.plan_doc`).
"""

from __future__ import annotations

import hashlib
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from dialc.schema import RULE_CHECKS
from dialc.source import Span

if TYPE_CHECKING:
    import networkx as nx

PLAN_FORMAT = 2


class StepKind(StrEnum):
    """What a step does; the runtime finds the implementation by this name."""

    INGEST = "ingest"
    TASKS = "tasks"
    EVOLVE = "evolve"
    REVIEW = "review"
    EXPRESSIONS = "expressions"
    SAMPLE = "sample"
    LABEL = "label"
    SCORE = "score"
    FILTER = "filter"
    EXPORT = "export"
    FINETUNE = "finetune"
    EVALUATE = "evaluate"
    STUDY = "study"
    CALIBRATE = "calibrate"


class Frozen(BaseModel):
    """A plan value: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True)
    # fields holding local file paths: relative to the spec's folder in the plan, so that no plan
    # value or cache key depends on the working directory; the executor resolves them (resolve_paths)
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ()

    def path_fields(self) -> tuple[str, ...]:
        return self.PATH_FIELDS


# ---- shared values -------------------------------------------------------------------------------
class ModelSpec(Frozen):
    """A model declaration with every default filled in: steps and backends never pick their own."""

    name: str
    backend: Literal["transformers", "openai", "vllm"] = "transformers"  # vllm: --engine ray only (ray.data.llm)
    path: str  # builtin:NAME, a local HF directory or .gguf file, or the served model name
    base_url: str | None = None  # backend = openai
    api_key_env: str | None = None  # backend = openai: environment variable holding the key
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_tokens: int = 256  # new tokens per generation at most
    retries: int = 2  # extra attempts for an invalid constrained output
    batch_size: int = 8  # requests decoded (or kept in flight) together
    timeout: float | None = None  # seconds per server request (backend = openai)
    tokenizer: str | None = None  # local tokenizer directory (backend = openai scoring)
    # policies, not settings of the output: written into the plan (and so into cache keys) only when a spec
    # sets them to something else than the default, so adding them changed no existing key
    max_failed: float = 0.2  # share of a step's requests that may end without an answer (server errors)
    allow_insecure: bool = False  # send the API key over plain http to a host that is not this machine
    # throughput settings (backend = openai): they change how fast answers come, never which, so they are
    # written into the plan only when set and never into a cache key (THROUGHPUT)
    concurrency: int | None = None  # requests kept in flight (a sliding window); None: batch_size
    rpm: int | None = None  # requests per minute at most
    tpm: int | None = None  # tokens per minute at most (prompt estimate + max_tokens, corrected by usage)

    THROUGHPUT: ClassVar[tuple[str, ...]] = ("concurrency", "rpm", "tpm")

    @model_serializer(mode="wrap")
    def _omit_default_policies(self, handler: SerializerFunctionWrapHandler,
                               info: SerializationInfo) -> dict[str, Any]:
        data = dict(handler(self))
        for name in ("max_failed", "allow_insecure", *self.THROUGHPUT):
            if data.get(name) == type(self).model_fields[name].default:
                data.pop(name, None)
        if isinstance(info.context, dict) and info.context.get("cache_key"):
            for name in self.THROUGHPUT:
                data.pop(name, None)
        return data

    def path_fields(self) -> tuple[str, ...]:
        """`path` is a local file for the transformers and vllm backends (a served model name otherwise)."""
        return ("path", "tokenizer") if self.backend in ("transformers", "vllm") else ("tokenizer",)

    def config(self) -> dict[str, Any]:
        """The backend configuration as a plain dict (what `get_backend` takes)."""
        return self.model_dump(mode="json")


class Holdout(Frozen):
    """The hold-out (scored as agreement with the labeller): a dialogue is held out iff
    `is_holdout(dialogue_id, fraction, seed)`."""

    fraction: float
    seed: int


class Suite(Frozen):
    """A general-capability suite: a builtin name or a file, with its scoring kind and limits."""

    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("path",)
    path: str
    kind: str | None = None  # choice / gsm8k / cmmlu …; None = from the file
    limit: int | None = None  # items at most
    ratio: float | None = None  # replay: share of general samples mixed into training
    subjects: list[str] | None = None  # cmmlu subjects (a single name becomes a list)
    fewshot: int | None = None


class JsonOutput(Frozen):
    kind: Literal["json"] = "json"
    json_schema: dict[str, Any] = Field(alias="schema")  # bounded, additionalProperties false


class TextOutput(Frozen):
    kind: Literal["text"] = "text"
    max_chars: int


class ChoiceOutput(Frozen):
    kind: Literal["choice"] = "choice"
    options: list[str]


class RegexOutput(Frozen):
    kind: Literal["regex"] = "regex"
    pattern: str


Output = Annotated[JsonOutput | TextOutput | ChoiceOutput | RegexOutput, Field(discriminator="kind")]


class Scenario(Frozen):
    description: str
    weight: float


class TaskSpec(Frozen):
    """A declared task, as the tasks step emits it."""

    id: str
    category: str
    instruction: str
    output: Output
    weight: float = 1.0
    scenarios: list[str] = Field(default_factory=list)  # empty = every scenario
    origin: Literal["declared"] = "declared"
    chain: list[dict[str, Any]] = Field(default_factory=list)


# ---- params per step kind ------------------------------------------------------------------------
class StepParams(Frozen):
    """Base of every params model; `record_wise()` says whether the step maps over record batches
    (the engine may stream it and ship it to workers) or needs a global view of its inputs."""

    RECORD_WISE: ClassVar[bool] = False
    SHAPE_NOTE: ClassVar[str] = ""  # exceptions to RECORD_WISE, for the contract doc
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("files",)
    files: list[str] = Field(default_factory=list)  # files the step reads: their contents are in the cache key

    def record_wise(self) -> bool:
        return self.RECORD_WISE


class FieldMapping(Frozen):
    id: str = "id"
    scenario: str = "scenario"
    turns: str = "turns"
    role: str = "role"
    text: str = "text"


class IngestParams(StepParams):
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("files", "path")
    path: str
    format: Literal["jsonl", "csv"]
    fields: FieldMapping
    roles: dict[str, list[str]]  # spec role → raw speaker labels
    on_error: Literal["fail", "skip"] = "skip"
    pii_scrub: bool = False
    scenarios: dict[str, Scenario] = Field(default_factory=dict)
    max_quarantine: float = 0.1  # largest share of quarantined rows before the step fails


class GenerateTasks(Frozen):
    model: ModelSpec
    per_scenario: int
    categories: list[str]
    scenarios: dict[str, Scenario]


class TasksParams(StepParams):
    declared: list[TaskSpec]
    generate: GenerateTasks | None = None
    dedup_threshold: float = 0.7
    seed: int


class Operator(Frozen):
    name: str
    prompt: str | None = None  # None = the built-in prompt


class EvolveParams(StepParams):
    RECORD_WISE: ClassVar[bool] = True  # each round maps over the tasks it evolves
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("files", "review")
    model: ModelSpec
    operators: list[Operator]
    rounds: int
    per_round: int  # 0 = every task
    review: str | None = None  # review file; a review step follows when set
    seed: int


class ReviewParams(StepParams):
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("files", "path")
    path: str


class Paraphrase(Frozen):
    model: ModelSpec
    n: int


class ExpressionsParams(StepParams):
    axes: dict[str, dict[str, float]]
    paraphrase: Paraphrase | None = None


class SampleParams(StepParams):
    SHAPE_NOTE: ClassVar[str] = "holds each dialogue's id and scenario and the draws; renders a page at a time"
    count: int
    balance: list[str] = Field(default_factory=list)
    min_per: int = 0
    axes: dict[str, dict[str, float]] = Field(default_factory=dict)
    scenarios: dict[str, Scenario] = Field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    seed: int


class LabelParams(StepParams):
    RECORD_WISE: ClassVar[bool] = True
    model: ModelSpec  # max_tokens already set to the label's own when it declares one
    seed: int
    candidates: int = 1  # answers per prompt (best-of-N); written into the plan only when > 1

    @model_serializer(mode="wrap")
    def _omit_single_candidate(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = dict(handler(self))
        if data.get("candidates") == 1:  # a single label: plans and cache keys as before best-of-N
            data.pop("candidates")
        return data


class DimensionBase(Frozen):
    name: str
    weight: float = 1.0
    gate: bool = False


class RuleDimension(DimensionBase):
    kind: Literal["rule"] = "rule"
    check: str  # one of dialc.schema.RULE_CHECKS
    min: float | None = None
    max: float | None = None
    n: int = 3
    pattern: str | None = None
    must_match: bool = True

    @field_validator("check")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        if value not in RULE_CHECKS:
            raise ValueError(f"unknown rule {value!r} (known: {', '.join(RULE_CHECKS)})")
        return value


class GroundingDimension(DimensionBase):
    kind: Literal["grounding"] = "grounding"
    min: float = 0.5


class JudgeDimension(DimensionBase):
    kind: Literal["judge"] = "judge"
    model: ModelSpec
    rubric: str
    scale: list[int] = Field(default_factory=lambda: [1, 5])
    method: Literal["choice", "expected"] = "expected"


class DedupDimension(DimensionBase):
    kind: Literal["dedup"] = "dedup"
    method: Literal["minhash", "embedding"] = "minhash"
    threshold: float = 0.85


Dimension = Annotated[RuleDimension | GroundingDimension | JudgeDimension | DedupDimension,
                      Field(discriminator="kind")]


class ScoreParams(StepParams):
    RECORD_WISE: ClassVar[bool] = True
    SHAPE_NOTE: ClassVar[str] = "dedup dimensions are global (each record is compared with all earlier ones)"
    dimension: Dimension
    seed: int

    def record_wise(self) -> bool:
        return self.dimension.kind != "dedup"

    def settings(self) -> dict[str, Any]:
        """The dimension as the plain dict the quality functions read."""
        return self.dimension.model_dump(mode="json")


class DimensionWeight(Frozen):
    kind: str
    weight: float = 1.0
    gate: bool = False


class Expect(Frozen):
    """A data test: `metric op value`; metric is a name (kept_rate) or `func:arg` (mean:helpful)."""

    metric: str
    op: Literal[">=", "<=", ">", "<", "==", "!="]
    value: float


class FilterParams(StepParams):
    SHAPE_NOTE: ClassVar[str] = "holds a slim row per record (no prompt, no verdict details) for top_k and metrics"
    dimensions: dict[str, DimensionWeight]
    keep: dict[str, Any] | None = None  # the keep rule as a small JSON expression tree (dialc.compiler)
    top_k: int = 0
    expects: list[Expect] = Field(default_factory=list)


class ExportParams(StepParams):
    SHAPE_NOTE: ClassVar[str] = "streams records into the files; only hf_dataset holds every row"
    formats: list[Literal["chat_jsonl", "parquet", "hf_dataset"]]
    include: Literal["kept", "all"] = "kept"
    # the hold-out of the fine-tune that trains on the same quality block: its records are exported
    # apart (holdout.jsonl, a "holdout" split), never into train.*
    holdout: Holdout | None = None


class LoraMethod(Frozen):
    kind: Literal["lora", "full"] = "lora"
    r: int | None = None
    alpha: float | None = None
    dropout: float | None = None
    targets: list[str] | None = None


class TrainingParams(StepParams):
    """How a fine-tune target trains (shared by finetune and study)."""

    base: ModelSpec
    method: LoraMethod
    epochs: float = 1.0
    max_steps: int = 0
    lr: float = 2e-4
    schedule: Literal["linear", "cosine", "constant"] = "cosine"
    warmup: float = 0.03
    batch_size: int = 4
    grad_accum: int = 1
    max_len: int = 1024
    packing: bool = False
    merge: bool = False
    replay: list[Suite] = Field(default_factory=list)
    holdout: Holdout | None = None  # dialogues left out of training for the evaluation
    seed: int


class FinetuneParams(TrainingParams):
    pass


class GoldSet(Frozen):
    """A gold test set: dialogues never trained on (checked by the compiler), read with an ingest mapping,
    and a reference file with a hand-written answer per dialogue and task."""

    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("path", "references")
    name: str
    path: str  # the dialogues, read like a source (format, fields, roles, pii_scrub)
    format: Literal["jsonl", "csv"]
    fields: FieldMapping
    roles: dict[str, list[str]]
    pii_scrub: bool = False
    references: str  # JSONL: {"id": dialogue id, "answers": {task: answer}} per dialogue
    tasks: list[TaskSpec]  # the tasks answered; a task with scenarios applies to those dialogues only


class PromptFormat(Frozen):
    """How an evaluation renders a gold item: the training sample's template and system prompt, with each
    expression axis at its most weighted value (first declared on a tie)."""

    template: str | None = None
    system: str | None = None
    expression: dict[str, str] = Field(default_factory=dict)
    scenarios: dict[str, Scenario] = Field(default_factory=dict)


class EvaluateParams(StepParams):
    base: ModelSpec
    holdout: Holdout | None = None  # the same split the fine-tune left out: agreement with the labeller
    gold: GoldSet | None = None  # domain accuracy against hand-written references
    gold_limit: int = 0  # gold dialogues scored at most (0 = all): a sample seeded by `seed`
    prompt: PromptFormat | None = None  # how gold items are put to the models (set with `gold`)
    general: list[Suite] = Field(default_factory=list)
    max_drop: float = 1.0
    limit: int = 0
    seed: int


class StudyParams(TrainingParams):
    tiers: int = 3
    per_task: bool = False  # tiers cut within each task (same task mix in every tier)
    general: list[Suite] = Field(default_factory=list)
    limit: int = 0
    gold: GoldSet | None = None  # every tier scored against the target's evaluation's gold references
    gold_limit: int = 0  # gold dialogues scored per tier at most (0 = all): a sample seeded by `seed`
    prompt: PromptFormat | None = None  # how gold items are put to the tiers (set with `gold`)


class CalibrateParams(StepParams):
    """Does quality predict correctness: the labeller answers a gold test set's items as the label step
    would (its model, its candidates), the quality block's dimensions score every answer and the filter's
    rule decides, and each score is compared with the answer's correctness against the references."""

    model: ModelSpec  # the labeller, as the label step runs it
    candidates: int = 1
    dimensions: list[Dimension]  # as the score steps run them
    weights: dict[str, DimensionWeight]  # as the filter counts them
    keep: dict[str, Any] | None = None
    gold: GoldSet
    prompt: PromptFormat
    gold_limit: int = 0  # gold dialogues labelled at most (0 = all): a sample seeded by `seed`
    seed: int


class OpaqueParams(StepParams):
    """Params of a kind this module does not know (tests' fake steps, plugins): kept as given."""

    model_config = ConfigDict(frozen=True, extra="allow")

    def get(self, key: str, default: Any = None) -> Any:
        if key in type(self).model_fields:
            return getattr(self, key)
        return (self.model_extra or {}).get(key, default)


PARAMS: dict[StepKind, type[StepParams]] = {
    StepKind.INGEST: IngestParams, StepKind.TASKS: TasksParams, StepKind.EVOLVE: EvolveParams,
    StepKind.REVIEW: ReviewParams, StepKind.EXPRESSIONS: ExpressionsParams, StepKind.SAMPLE: SampleParams,
    StepKind.LABEL: LabelParams, StepKind.SCORE: ScoreParams, StepKind.FILTER: FilterParams,
    StepKind.EXPORT: ExportParams, StepKind.FINETUNE: FinetuneParams, StepKind.EVALUATE: EvaluateParams,
    StepKind.STUDY: StudyParams, StepKind.CALIBRATE: CalibrateParams,
}

# the roles each kind reads its inputs under (a step may leave a role empty)
ROLES: dict[StepKind, tuple[str, ...]] = {
    StepKind.INGEST: (), StepKind.TASKS: ("dialogues",), StepKind.EVOLVE: ("tasks", "dialogues"),
    StepKind.REVIEW: ("candidates",), StepKind.EXPRESSIONS: ("tasks",),
    StepKind.SAMPLE: ("dialogues", "tasks", "expressions"), StepKind.LABEL: ("prompts",),
    StepKind.SCORE: ("labels", "dialogues"), StepKind.FILTER: ("labels", "scores"),
    StepKind.EXPORT: ("records",), StepKind.FINETUNE: ("records",), StepKind.EVALUATE: ("adapter", "records"),
    StepKind.STUDY: ("records",), StepKind.CALIBRATE: (),
}


def params_class(kind: str) -> type[StepParams]:
    """The params model of a step kind (OpaqueParams for kinds outside StepKind)."""
    try:
        return PARAMS[StepKind(kind)]
    except ValueError:
        return OpaqueParams


def is_record_wise(kind: str) -> bool:
    """Whether steps of this kind (as a rule: see SHAPE_NOTE) map over record batches rather than need
    every record."""
    return params_class(kind).RECORD_WISE


# ---- steps and the plan --------------------------------------------------------------------------
class Step(BaseModel):
    """One node of the plan: `id` is `<kind>.<name>`; `params` is the kind's typed model."""

    model_config = ConfigDict(frozen=True)
    id: str
    kind: str  # a StepKind value (or a test/plugin kind)
    name: str
    params: SerializeAsAny[StepParams]
    inputs: dict[str, list[str]] = Field(default_factory=dict)  # role → ids of the steps read, in order
    span: Span | None = None
    # where parts of the step were declared (e.g. each expect test): for messages only, so not part
    # of the fingerprint or the cache key — moving lines in a spec must not invalidate a run
    locations: dict[str, list[str]] = Field(default_factory=dict)
    fingerprint: str = ""  # sha256 of kind, name, params and the inputs' fingerprints

    @model_validator(mode="before")
    @classmethod
    def _typed_params(cls, data: Any) -> Any:
        """Plan JSON (or a dict from a test) → the params model of the step's kind."""
        if isinstance(data, dict) and isinstance(data.get("params"), dict):
            data = {**data, "params": params_class(str(data.get("kind")))(**data["params"])}
        return data

    @property
    def input_ids(self) -> list[str]:
        """Every input step id, roles in name order (as in the canonical JSON), without repeats."""
        return list(dict.fromkeys(i for role in sorted(self.inputs) for i in self.inputs[role]))

    def role(self, name: str) -> list[str]:
        """The ids of the steps read under `name` (empty when none)."""
        return list(self.inputs.get(name, []))

    def params_json(self, cache_key: bool = False) -> dict[str, Any]:
        """The params as JSON; for a cache key without the settings that cannot change an output
        (a model's throughput settings)."""
        return self.params.model_dump(mode="json", context={"cache_key": True} if cache_key else None)


class Plan(BaseModel):
    """The whole pipeline as steps in a stable topological order, with its settings."""

    format: int = PLAN_FORMAT
    pipeline: str
    spec: str
    settings: dict[str, Any] = Field(default_factory=dict)  # seed, output directory …
    steps: list[Step]

    def graph(self) -> nx.DiGraph:
        """Edges go from a dependency to its dependent (dbt style)."""
        import networkx as nx  # only compile/graph/run need it, not validate

        g = nx.DiGraph()
        for step in self.steps:
            g.add_node(step.id, step=step)
        for step in self.steps:
            for dep in step.input_ids:
                g.add_edge(dep, step.id)
        return g

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_json(self) -> str:
        return canonical_json(self.model_dump(mode="json"))

    def spec_dir(self) -> Path:
        """The spec's folder as this process sees it: the plan's spec-relative paths are resolved against it."""
        return Path(self.spec).parent

    def run_dir(self) -> Path:
        """The run directory: `settings.output`, relative to the spec's folder (default runs/<pipeline>)."""
        return Path(resolve_path(str(self.settings.get("output") or f"runs/{self.pipeline}"), self.spec_dir()))


FrozenT = TypeVar("FrozenT", bound=Frozen)


def resolve_path(path: str, base: str | Path) -> str:
    """A spec-relative path as the working directory sees it; builtin names and absolute paths stay."""
    if path.startswith("builtin:") or os.path.isabs(path):
        return path
    return Path(os.path.normpath(Path(base) / path)).as_posix()


def resolve_paths(value: FrozenT, base: str | Path) -> FrozenT:
    """A plan value (step params, model spec …) with every local path field resolved against `base`,
    the spec's folder: what a running step reads. The plan itself keeps them spec-relative."""
    update: dict[str, Any] = {}
    for name in type(value).model_fields:
        item = getattr(value, name)
        if name in value.path_fields():
            update[name] = [resolve_path(i, base) for i in item] if isinstance(item, list) else (
                resolve_path(item, base) if isinstance(item, str) else item)
        elif isinstance(item, Frozen):
            update[name] = resolve_paths(item, base)
        elif isinstance(item, list) and any(isinstance(i, Frozen) for i in item):
            update[name] = [resolve_paths(i, base) if isinstance(i, Frozen) else i for i in item]
    return value.model_copy(update=update) if update else value


def canonical_json(value: Any) -> str:
    """Same value → same bytes: sorted keys, fixed separators, UTF-8 kept readable."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2) + "\n"


def digest(value: Any) -> str:
    """sha256 of a JSON value's compact canonical form."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(kind: str, name: str, params: dict[str, Any], input_fingerprints: list[str]) -> str:
    """A step's identity: what it is, how it is configured, and what it reads."""
    return digest({"kind": kind, "name": name, "params": params, "inputs": input_fingerprints})

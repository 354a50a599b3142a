"""What each declaration kind accepts: its header words, fields, types, bounds and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldSpec:
    """One field of a declaration: its type tag, allowed values/range, default and meaning."""

    type: str  # int, float, weight, str, bool, choice, ref, refs, names, weights, range, product, model_method,
    #            source_field, holdout, suites, output, roles, any_axis
    doc: str
    required: bool = False
    default: Any = None
    lo: float | None = None  # inclusive numeric bounds
    hi: float | None = None
    options: tuple[str, ...] = ()  # for choice / names
    ref_kinds: tuple[str, ...] = ()  # for ref / refs / product


@dataclass(frozen=True)
class KindSpec:
    """One declaration kind: whether it takes a name, its qualifiers, fields and member forms."""

    doc: str
    named: bool = True  # `task NAME {…}`; unnamed kinds default their name to the kind
    singleton: bool = False
    qualifiers: tuple[str, ...] = ()  # allowed third words (dimension kinds)
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    members: tuple[str, ...] = ()  # other member forms allowed: entry, schema_field, keep, expect, decl:<kind>
    open_fields: str | None = None  # type of user-named fields (expression axes)


F = FieldSpec
MODEL_REF = ("model",)
WEIGHT = F("weight", "relative weight (≥ 0) of this item in sampling / aggregation", default=1.0, lo=0)
GATE = F("bool", "a hard gate: a record failing this dimension is rejected whatever its score", default=False)
SEED = F("int", "random seed (defaults to the pipeline seed)", lo=0, hi=2**32 - 1)

OPERATORS = ("deepen", "add_constraint", "concretize", "broaden")
RULE_CHECKS = ("schema", "length", "language", "repetition", "pii", "refusal", "regex")
CATEGORIES_HINT = ("information_extraction", "summarization", "reply_generation", "analysis", "classification")

KINDS: dict[str, KindSpec] = {
    "pipeline": KindSpec(
        "pipeline-wide settings",
        singleton=True,
        fields={
            "seed": F("int", "seed of every stochastic step unless it sets its own", default=0, lo=0, hi=2**32 - 1),
            "output": F("str", "run directory (records store, artifacts, reports)"),
            "description": F("str", "what this pipeline is for"),
        },
    ),
    "model": KindSpec(
        "a model used for generation, judging or as a fine-tune base",
        fields={
            "backend": F("choice", "how the model is run", default="transformers", options=("transformers", "openai")),
            "path": F("str", "builtin:NAME, a local HF directory or .gguf file, or the served model name",
                      required=True),
            "base_url": F("str", "OpenAI-compatible server URL (backend = openai)"),
            "api_key_env": F("str", "environment variable holding the API key (backend = openai)"),
            "temperature": F("float", "sampling temperature; 0 = greedy", default=0.0, lo=0, hi=2),
            "top_p": F("float", "nucleus sampling mass", default=1.0, lo=0.01, hi=1),
            "max_tokens": F("int", "new tokens per generation at most", default=256, lo=1, hi=32768),
            "retries": F("int", "extra attempts for an invalid constrained output", default=2, lo=0, hi=10),
            "batch_size": F("int", "requests decoded together", default=8, lo=1, hi=1024),
            "timeout": F("float", "seconds to wait for a server answer (backend = openai)", lo=1, hi=3600),
            "tokenizer": F("str", "local tokenizer directory for chat templates (backend = openai scoring)"),
        },
    ),
    "source": KindSpec(
        "a dialogue corpus (JSONL: one dialogue per line; CSV: one turn per row)",
        fields={
            "path": F("str", "data file, relative to the spec's directory", required=True),
            "format": F("choice", "file format (default: from the extension)", options=("jsonl", "csv")),
            "id": F("source_field", "field holding the dialogue id", default="id"),
            "scenario": F("source_field", "field holding the scenario name", default="scenario"),
            "turns": F("source_field", "JSONL: field holding the list of turns", default="turns"),
            "role": F("source_field", "field of a turn (CSV: of a row) holding the speaker", default="role"),
            "text": F("source_field", "field of a turn (CSV: of a row) holding the text", default="text"),
            "roles": F("roles", "role names, or {role: [raw labels]} mapping raw speaker labels", required=True),
            "on_error": F("choice", "malformed rows: fail the step, or skip them into a quarantine file",
                          default="skip", options=("fail", "skip")),
            "pii_scrub": F("bool", "mask phone numbers, e-mails and ID numbers before any model sees them",
                           default=False),
        },
    ),
    "scenarios": KindSpec("the scenario taxonomy: `name \"description\" weight N` entries",
                          named=False, singleton=True, members=("entry",)),
    "task": KindSpec(
        "a seed task: an instruction, its category and the output it must produce",
        fields={
            "category": F("word", "task category, e.g. information_extraction, summarization", required=True),
            "instruction": F("str", "the task instruction shown to the model", required=True),
            "output": F("output", "output constraint: a schema block, text(max = N), choice([..]) or regex(\"..\")",
                        required=True),
            "weight": WEIGHT,
            "scenarios": F("refs", "scenarios this task applies to (default: all)", ref_kinds=("scenario",)),
        },
        members=("decl:output",),
    ),
    "tasks": KindSpec(
        "the task set: declared tasks plus, optionally, tasks a model proposes from the dialogues",
        named=False, singleton=True,
        fields={
            "model": F("ref", "model that proposes new tasks", ref_kinds=MODEL_REF),
            "from": F("ref", "dialogue source the proposals are based on", ref_kinds=("source",)),
            "generate": F("int", "proposed tasks per scenario and category", default=0, lo=0, hi=1000),
            "categories": F("names", "categories to propose tasks for (default: the declared ones)"),
            "dedup": F("float", "drop a proposal this similar (ROUGE-L) to an earlier task", default=0.7, lo=0, hi=1),
            "seed": SEED,
        },
    ),
    "evolve": KindSpec(
        "task evolution: operators applied for N rounds, optionally behind a human review gate",
        fields={
            "from": F("ref", "tasks to evolve", default="tasks", ref_kinds=("tasks", "evolve")),
            "model": F("ref", "model that rewrites the tasks", required=True, ref_kinds=MODEL_REF),
            "operators": F("names", "evolution operators", default=list(OPERATORS), options=OPERATORS),
            "rounds": F("int", "evolution rounds", default=1, lo=1, hi=10),
            "per_round": F("int", "tasks evolved per round at most (0 = all)", default=0, lo=0, hi=100000),
            "review": F("str", "review file: candidates wait there for `dialc review` before use"),
            "context": F("ref", "dialogues used to check an evolved task is answerable", ref_kinds=("source",)),
            "prompts": F("strings", "operator → prompt template overriding the built-in one"),
            "seed": SEED,
        },
    ),
    "expressions": KindSpec(
        "expression axes: each field is an axis of weighted values ({formal: 2, friendly: 1})",
        named=False,
        fields={
            "paraphrase": F("ref", "model that paraphrases each task instruction", ref_kinds=MODEL_REF),
            "paraphrases": F("int", "paraphrases per instruction", default=0, lo=0, hi=20),
        },
        open_fields="weights",
    ),
    "sample": KindSpec(
        "production prompts: dialogue × task × expression, weighted, balanced, without replacement",
        fields={
            "from": F("product", "source * tasks * expressions", required=True,
                      ref_kinds=("source", "tasks", "evolve", "expressions")),
            "count": F("int", "production prompts to draw", required=True, lo=1, hi=10_000_000),
            "balance": F("names", "keys whose proportions follow the declared weights"),
            "min_per": F("int", "quota: at least this many prompts per balance-key value", default=0, lo=0),
            "template": F("str", "user prompt template ({dialogue}, {instruction}, axis names …)"),
            "system": F("str", "system prompt template"),
            "seed": SEED,
        },
    ),
    "label": KindSpec(
        "labels: each production prompt answered under its task's output constraint",
        fields={
            "from": F("ref", "production prompts", required=True, ref_kinds=("sample",)),
            "model": F("ref", "labelling model", required=True, ref_kinds=MODEL_REF),
            "max_tokens": F("int", "new tokens per answer (default: the model's)", lo=1, hi=32768),
            "seed": SEED,
        },
    ),
    "quality": KindSpec(
        "quality dimensions, aggregation, keep rule and data tests over a label set",
        named=False,
        fields={
            "from": F("ref", "labels to assess (default: the only label set)", ref_kinds=("label",)),
            "top_k": F("int", "keep at most this many records per category (0 = no limit)", default=0, lo=0),
        },
        members=("decl:dimension", "keep", "expect"),
    ),
    "dimension": KindSpec("one quality dimension, scored per record",
                          qualifiers=("rule", "grounding", "judge", "dedup")),
    "export": KindSpec(
        "exports of a quality-filtered set (chat JSONL for SFT trainers, Parquet / HF datasets)",
        fields={
            "from": F("ref", "quality block to export", ref_kinds=("quality",)),
            "formats": F("names", "formats", default=["chat_jsonl", "parquet"],
                         options=("chat_jsonl", "parquet", "hf_dataset")),
            "include": F("choice", "which records", default="kept", options=("kept", "all")),
        },
    ),
    "finetune": KindSpec(
        "a fine-tune target: LoRA or full fine-tuning on the kept records",
        fields={
            "base": F("ref", "base model", required=True, ref_kinds=MODEL_REF),
            "data": F("ref", "quality block whose kept records are the training data", ref_kinds=("quality",)),
            "method": F("model_method", "lora { r = 8 alpha = 16 dropout = 0.05 targets = [q_proj, v_proj] } or full",
                        default="lora"),
            "epochs": F("float", "passes over the data", default=1.0, lo=0.01, hi=100),
            "max_steps": F("int", "optimizer steps at most (0 = by epochs)", default=0, lo=0),
            "lr": F("float", "peak learning rate", default=2e-4, lo=1e-8, hi=1),
            "schedule": F("choice", "learning-rate schedule", default="cosine",
                          options=("linear", "cosine", "constant")),
            "warmup": F("float", "warm-up share of the steps", default=0.03, lo=0, hi=0.5),
            "batch_size": F("int", "sequences per device batch", default=4, lo=1, hi=1024),
            "grad_accum": F("int", "batches per optimizer step", default=1, lo=1, hi=1024),
            "max_len": F("int", "tokens per sequence at most", default=1024, lo=16, hi=131072),
            "packing": F("bool", "pack short sequences together", default=False),
            "replay": F("suites", "general data mixed in: suite(\"builtin:general-probe\", ratio = 0.1)"),
            "merge": F("bool", "also write merged weights", default=False),
            "seed": SEED,
        },
    ),
    "evaluate": KindSpec(
        "before/after evaluation: domain hold-out and general suites with a retention gate",
        fields={
            "model": F("ref", "fine-tune target to evaluate", required=True, ref_kinds=("finetune",)),
            "domain": F("holdout", "holdout(FRACTION): production prompts kept out of training", default=None),
            "general": F("suites", "general-capability suites: suite(\"builtin:general-probe\"), "
                         "suite(\"path\", kind = gsm8k)"),
            "max_drop": F("float", "largest allowed drop per general suite, in accuracy points", default=1.0,
                          lo=0, hi=100),
            "limit": F("int", "items per suite at most (0 = all)", default=0, lo=0),
            "seed": SEED,
        },
    ),
    "study": KindSpec(
        "quality ⇄ performance study: the same fine-tune target trained on equal-size quality tiers",
        fields={
            "finetune": F("ref", "fine-tune target whose settings every tier reuses", required=True,
                          ref_kinds=("finetune",)),
            "tiers": F("int", "equal-size tiers by aggregate quality score (top … bottom)", default=3, lo=2, hi=10),
            "general": F("suites", "general suites scored per tier (default: the target's evaluation's)"),
            "limit": F("int", "items per suite at most (0 = all)", default=0, lo=0),
            "seed": SEED,
        },
    ),
}

DIMENSION_FIELDS: dict[str, dict[str, FieldSpec]] = {
    "rule": {
        "check": F("choice", "which rule", required=True, options=RULE_CHECKS),
        "min": F("float", "lower bound (length: tokens)", lo=0),
        "max": F("float", "upper bound (length: tokens; repetition: repeated n-gram ratio)", lo=0),
        "n": F("int", "n-gram size for repetition", default=3, lo=1, hi=10),
        "pattern": F("regex", "regular expression (check = regex)"),
        "must_match": F("bool", "regex: the answer must (true) or must not (false) match", default=True),
        "weight": WEIGHT, "gate": GATE,
    },
    "grounding": {
        "min": F("float", "free text: content overlap with the dialogue needed to pass (JSON labels: every "
                    "extracted value must be found in the dialogue)", default=0.5, lo=0, hi=1),
        "weight": WEIGHT, "gate": GATE,
    },
    "judge": {
        "model": F("ref", "judge model", required=True, ref_kinds=MODEL_REF),
        "rubric": F("str", "what the judge scores, in words", required=True),
        "scale": F("range", "integer score scale, e.g. 1..5", default=[1, 5], lo=0, hi=100),
        "method": F("choice", "constrained choice of a score, or the expected score from token probabilities",
                    default="expected", options=("choice", "expected")),
        "weight": WEIGHT, "gate": GATE,
    },
    "dedup": {
        "method": F("choice", "near-duplicate detector", default="minhash", options=("minhash", "embedding")),
        "threshold": F("float", "similarity at which a later record is a duplicate", default=0.85, lo=0, hi=1),
        "weight": WEIGHT, "gate": GATE,
    },
}

# placeholders every production-prompt template may use, besides the expression axes
TEMPLATE_PLACEHOLDERS = ("dialogue", "instruction", "scenario", "scenario_description", "category",
                         "output_format", "task_id")
# metrics an `expect` test may name (dimension-specific ones are `mean(dim)` / `pass_rate(dim)`)
EXPECT_METRICS = ("kept_rate", "rejected_rate", "kept", "rejected", "records", "duplicate_rate", "distinct_1",
                  "distinct_2")
EXPECT_FUNCTIONS = ("mean", "pass_rate", "balance_p")  # mean(DIM or score), pass_rate(DIM), balance_p(KEY)
# record fields a keep rule may name, besides 'score', the dimensions and the expression axes
KEEP_FIELDS = ("category", "scenario", "task_id", "dialogue_id")

"""What each declaration kind accepts: its header words, fields, types, bounds and defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldSpec:
    """One field of a declaration: its type tag, allowed values/range, default and meaning."""

    type: str  # int, float, weight, str, bool, choice, ref, refs, names, weights, range, product, model_method,
    #            source_field, holdout, domain, gold_testset, suites, output, roles, any_axis
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
            "backend": F("choice", "how the model is run (vllm: vLLM engines through ray.data.llm, under "
                         "--engine ray only)", default="transformers", options=("transformers", "openai", "vllm")),
            "path": F("str", "builtin:NAME, a local HF directory or .gguf file, or the served model name",
                      required=True),
            "base_url": F("str", "OpenAI-compatible server URL (backend = openai)"),
            "api_key_env": F("str", "environment variable holding the API key (backend = openai)"),
            "temperature": F("float", "sampling temperature; 0 = greedy", default=0.0, lo=0, hi=2),
            "top_p": F("float", "nucleus sampling mass", default=1.0, lo=0.01, hi=1),
            "max_tokens": F("int", "new tokens per generation at most", default=256, lo=1, hi=32768),
            "retries": F("int", "extra attempts for an invalid constrained output", default=2, lo=0, hi=10),
            "batch_size": F("int", "requests decoded together (backend = openai: requests in flight, unless "
                            "concurrency is set)", default=8, lo=1, hi=1024),
            "timeout": F("float", "seconds to wait for a server answer (backend = openai)", lo=1, hi=3600),
            "tokenizer": F("str", "local tokenizer directory for chat templates (backend = openai scoring)"),
            "max_failed": F("float", "share of a step's requests that may get no answer (server errors) before the "
                            "step fails; fewer are asked again at the next run (0..1)", default=0.2, lo=0, hi=1),
            "allow_insecure": F("bool", "send the API key over plain http to a host that is not this machine "
                                "(backend = openai; refused otherwise)", default=False),
            "concurrency": F("int", "requests kept in flight to the server, a sliding window: a new one starts as "
                             "soon as one ends (backend = openai; default: batch_size)", lo=1, hi=1024),
            "rpm": F("int", "requests per minute at most, spread evenly (backend = openai; default: no limit)",
                     lo=1, hi=1_000_000),
            "tpm": F("int", "tokens per minute at most: each request counts its prompt (estimated) plus max_tokens "
                     "until the server reports its usage (backend = openai; default: no limit)",
                     lo=1, hi=1_000_000_000),
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
            "max_quarantine": F("float", "largest share of malformed rows skipped into the quarantine file "
                                "before ingest fails (0..1); reading no dialogue at all always fails",
                                default=0.1, lo=0, hi=1),
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
            "context": F("ref", "dialogues to check an evolved task against: the review gate shows each candidate "
                         "with one of its scenario's, to judge it answerable", ref_kinds=("source",)),
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
            "candidates": F("int", "answers sampled per prompt: every one is scored by the quality dimensions and "
                            "the filter keeps the best that passes the gates (best-of-N); 1 = a single answer",
                            default=1, lo=1, hi=16),
            "seed": SEED,
        },
    ),
    "quality": KindSpec(
        "quality dimensions, aggregation, keep rule and data tests over a label set",
        named=False,
        fields={
            "from": F("ref", "labels to assess (default: the only label set)", ref_kinds=("label",)),
            "top_k": F("int", "keep at most this many records per category (0 = no limit)", default=0, lo=0),
            "calibrate": F("gold_testset", "gold(TESTSET): the labeller answers the test set's items, these "
                           "dimensions score them, and the run reports whether each score predicts correctness "
                           "against the references (Spearman, AUC, precision of kept vs rejected)",
                           ref_kinds=("testset",)),
            "calibrate_limit": F("int", "gold dialogues labelled for `calibrate` at most (0 = all): a seeded "
                                 "sample, the same on every run", default=0, lo=0),
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
        "before/after evaluation: domain accuracy against gold references (or agreement with the labeller on a "
        "hold-out) and general suites with a retention gate",
        fields={
            "model": F("ref", "fine-tune target to evaluate", required=True, ref_kinds=("finetune",)),
            "domain": F("domain", "gold(TESTSET): accuracy against a gold test set's references; holdout(FRACTION): "
                        "agreement with the labeller on production prompts kept out of training; or [both]",
                        default=None, ref_kinds=("testset",)),
            "general": F("suites", "general-capability suites: suite(\"builtin:general-probe\"), "
                         "suite(\"path\", kind = gsm8k)"),
            "max_drop": F("float", "largest allowed drop per general suite, in accuracy points", default=1.0,
                          lo=0, hi=100),
            "limit": F("int", "items per suite at most (0 = all)", default=0, lo=0),
            "gold_limit": F("int", "gold dialogues scored at most (0 = all): a seeded sample, the same on every run; "
                            "each costs a generation per task and model", default=0, lo=0),
            "seed": SEED,
        },
    ),
    "testset": KindSpec(
        "a gold test set: dialogues kept out of training, each with hand-written reference answers per task",
        fields={
            "path": F("str", "dialogue file, relative to the spec's directory (read like a source)", required=True),
            "references": F("str", "reference answers: JSONL, one {\"id\": …, \"answers\": {TASK: answer}} per "
                            "dialogue", required=True),
            "tasks": F("refs", "declared tasks the references answer (default: every declared task)",
                       ref_kinds=("task",)),
            "like": F("ref", "source whose format, field mapping, roles and pii_scrub this test set reuses "
                      "(fields set here win)", ref_kinds=("source",)),
            "format": F("choice", "file format (default: the source's, else from the extension)",
                        options=("jsonl", "csv")),
            "id": F("source_field", "field holding the dialogue id (default: the source's, else \"id\")"),
            "scenario": F("source_field", "field holding the scenario name"),
            "turns": F("source_field", "JSONL: field holding the list of turns"),
            "role": F("source_field", "field of a turn (CSV: of a row) holding the speaker"),
            "text": F("source_field", "field of a turn (CSV: of a row) holding the text"),
            "roles": F("roles", "role names or {role: [raw labels]} (required unless `like` gives them)"),
            "pii_scrub": F("bool", "mask phone numbers, e-mails and ID numbers before any model sees them"),
            "near_duplicate": F("float", "shingle Jaccard similarity at or above which a test dialogue counts as a "
                                "copy of a training dialogue (different dialogues of one domain score below 0.1)",
                                default=0.3, lo=0.05, hi=1),
        },
    ),
    "study": KindSpec(
        "quality ⇄ performance study: the same fine-tune target trained on equal-size quality tiers",
        fields={
            "finetune": F("ref", "fine-tune target whose settings every tier reuses", required=True,
                          ref_kinds=("finetune",)),
            "tiers": F("int", "equal-size tiers by aggregate quality score (top … bottom)", default=3, lo=2, hi=10),
            "per_task": F("bool", "cut each task's records into tiers by quality, so every tier holds the same task "
                          "mix (otherwise one ranking over all tasks: tiers can differ in which tasks they teach)",
                          default=False),
            "general": F("suites", "general suites scored per tier (default: the target's evaluation's)"),
            "limit": F("int", "items per suite at most (0 = all)", default=0, lo=0),
            "gold_limit": F("int", "gold dialogues scored per tier at most, a seeded sample (0 = all; default: the "
                            "target's evaluation's)", lo=0),
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

# placeholders an evolve operator's prompt template (`evolve { prompts = {deepen: "…"} }`) may use
EVOLVE_PLACEHOLDERS = ("instruction", "category", "scenario")
# placeholders every production-prompt template may use, besides the expression axes
TEMPLATE_PLACEHOLDERS = ("dialogue", "instruction", "scenario", "scenario_description", "category",
                         "output_format", "task_id")
# metrics an `expect` test may name (dimension-specific ones are `mean(dim)` / `pass_rate(dim)`)
EXPECT_METRICS = ("kept_rate", "rejected_rate", "kept", "rejected", "records", "duplicate_rate", "distinct_1",
                  "distinct_2")
EXPECT_FUNCTIONS = ("mean", "pass_rate", "balance_p")  # mean(DIM or score), pass_rate(DIM), balance_p(KEY)
# record fields a keep rule may name, besides 'score', the dimensions and the expression axes
KEEP_FIELDS = ("category", "scenario", "task_id", "dialogue_id")

# Output kinds a dimension cannot judge ("kind" or "rule:CHECK" → output kinds): its verdict on such a
# record is "not applicable" (n/a), and n/a means the same everywhere — the aggregate score leaves the
# dimension out (weights renormalised), a gate passes, a keep-rule comparison on it is skipped (`a and
# NA` = a; a rule that is n/a as a whole keeps), and mean()/pass_rate() count only the records it applies
# to. `validate` warns where a keep rule or gate names such a dimension (inapplicable-dimension).
NOT_APPLICABLE: dict[str, tuple[str, ...]] = {
    "grounding": ("choice", "regex"),  # a fixed option or pattern: nothing to find in the dialogue
    "rule:language": ("choice", "regex"),  # option names and codes are in no language
}
# the expression axis the `language` rule reads a record's expected language from (ISO 639-1 codes)
LANGUAGE_AXIS = "language"
ISO_639_1 = frozenset((
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh", "bi", "bm", "bn",
    "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de", "dv", "dz", "ee", "el", "en",
    "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he",
    "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv",
    "ka", "kg", "ki", "kj", "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li",
    "ln", "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd", "ne",
    "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl", "ps", "pt", "qu", "rm",
    "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl", "sm", "sn", "so", "sq", "sr", "ss", "st",
    "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk",
    "ur", "uz", "ve", "vi", "vo", "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
))  # fmt: skip

_LANGUAGE_CODE = re.compile(r"^([a-z]{2})(?:[-_][A-Za-z0-9]{2,8})*$")  # zh, zh-Hans, pt-BR


def is_language_code(value: str) -> bool:
    """An ISO 639-1 code, optionally with a script or region subtag (what the `language` rule reads)."""
    match = _LANGUAGE_CODE.match(value)
    return match is not None and match.group(1) in ISO_639_1


# language names people write instead of codes → the code (for `validate`'s hint)
LANGUAGE_NAMES = {
    "english": "en", "chinese": "zh", "mandarin": "zh", "cantonese": "zh", "japanese": "ja", "korean": "ko",
    "french": "fr", "german": "de", "spanish": "es", "portuguese": "pt", "italian": "it", "russian": "ru",
    "arabic": "ar", "hindi": "hi", "dutch": "nl", "swedish": "sv", "polish": "pl", "turkish": "tr",
    "vietnamese": "vi", "thai": "th", "indonesian": "id", "greek": "el", "hebrew": "he", "ukrainian": "uk",
    "czech": "cs", "danish": "da", "finnish": "fi", "norwegian": "no", "hungarian": "hu", "romanian": "ro",
    "malay": "ms", "persian": "fa", "urdu": "ur", "bengali": "bn", "中文": "zh", "汉语": "zh", "英文": "en",
    "英语": "en", "日语": "ja", "韩语": "ko",
}  # fmt: skip


def inapplicable_to(kind: str | None, check: str | None = None) -> tuple[str, ...]:
    """The output kinds a dimension of this kind (and rule check) does not apply to."""
    return NOT_APPLICABLE.get(f"rule:{check}" if kind == "rule" else str(kind), ())

"""The registry of diagnostic codes: every message dialc prints has one, listed by `dialc codes`."""

from __future__ import annotations

from typing import Literal

Severity = Literal["error", "warning", "note"]

# code → (default severity, what it means). Kebab-case, stable: users grep and suppress by code.
CODES: dict[str, tuple[Severity, str]] = {
    # reading and syntax
    "file-error": ("error", "a spec or included file cannot be read (missing, binary, too big, not UTF-8)"),
    "syntax": ("error", "the text does not follow the .dial grammar"),
    "bad-string": ("error", "a string literal has an invalid escape sequence"),
    "include-cycle": ("error", "files include each other in a cycle"),
    "include-error": ("error", "an included file cannot be found or read"),
    "bad-override": ("error", "a --set override names no field or has an unparsable value"),
    # structure
    "unknown-declaration": ("error", "a declaration kind dialc does not know (e.g. a typo of 'task')"),
    "missing-name": ("error", "a declaration that needs a name has none"),
    "extra-words": ("error", "a declaration header has more words than its kind takes"),
    "unknown-field": ("error", "a field that this kind of declaration does not take"),
    "misplaced-member": ("error", "a member that cannot appear in this block (e.g. a schema field in a model)"),
    "missing-field": ("error", "a required field is not set"),
    "duplicate-field": ("error", "the same field is set twice in one block"),
    "duplicate-name": ("error", "two declarations of the same kind share a name"),
    "duplicate-singleton": ("error", "a declaration that may appear once appears again"),
    # values
    "type-mismatch": ("error", "a value of the wrong type for its field"),
    "out-of-range": ("error", "a number outside the field's allowed range"),
    "bad-choice": ("error", "a value that is not one of the field's allowed options"),
    "bad-weight": ("error", "a weight that is negative, or a set of weights that are all zero"),
    "empty-list": ("error", "a list that must not be empty is empty"),
    "bad-schema-type": ("error", "an output-schema field with an unknown type or inconsistent bounds"),
    "unbounded-output": ("warning", "an output-schema string or integer without bounds: "
                         "constrained generation runs away"),
    "bad-regex": ("error", "a regular expression that does not compile"),
    "unbounded-regex": ("warning", "a regular expression whose matching time dialc cannot bound (nested "
                        "repetition, overlapping alternatives, backreferences): each match stops after 1 s"),
    "bad-template": ("error", "a template placeholder that no upstream step provides"),
    # references and graph
    "unknown-ref": ("error", "a name that refers to nothing declared"),
    "wrong-ref-kind": ("error", "a name that refers to a declaration of the wrong kind"),
    "unused": ("warning", "a declaration nothing uses"),
    "cycle": ("error", "steps depend on each other in a cycle"),
    "missing-file": ("error", "a data file the spec reads does not exist"),
    "outside-project": ("error", "a file the spec reads lies outside the project (the spec's folder or its "
                        "version-control root); --allow-path DIR widens it"),
    "writes-outside-project": ("warning", "an output (the run directory) would be written outside the project"),
    "backend-field": ("error", "a model field that its backend does not read (rpm, tpm or concurrency on a model "
                      "that is not backend = openai)"),
    "insecure-key": ("error", "an API key would be sent in clear (plain http) to another machine; use https or "
                     "allow_insecure = true"),
    # quality, training, evaluation
    "keep-no-dimension": ("error", "a keep rule that names no quality dimension or the aggregate score"),
    "unknown-metric": ("error", "an expect test on a metric dialc does not compute"),
    "no-dimensions": ("error", "a quality block without dimensions"),
    "no-training-data": ("error", "a fine-tune target with no data to train on"),
    "holdout-overlap": ("error", "an evaluation hold-out that overlaps the training data"),
    "bad-holdout": ("error", "a hold-out fraction outside (0, 1)"),
    "testset-leak": ("error", "a gold test-set dialogue that also appears in a training source (same id or "
                     "near-duplicate text): the score would measure memorisation"),
    "bad-reference": ("error", "a gold reference file entry that is missing, unreadable or not a valid answer "
                      "to its task"),
    "no-evaluation-suite": ("warning", "an evaluation without a general-capability suite cannot show retention"),
    "sample-too-large": ("warning", "a sample count larger than the number of distinct combinations"),
    "greedy-candidates": ("warning", "label candidates > 1 with a greedy labeller (temperature 0): every candidate "
                          "is the same answer, so best-of-N only multiplies the cost"),
    "similar-name": ("warning", "a category one typo away from another: it becomes a category of its own"),
    "inapplicable-dimension": ("warning", "a keep rule or gate names a dimension that does not apply to some "
                               "task's output kind: for those records it is skipped (not applicable)"),
    "unknown-suite": ("error", "a general-capability suite that is neither builtin nor an existing file"),
}


def severity_of(code: str) -> Severity:
    return CODES[code][0]


def describe(code: str) -> str:
    return CODES[code][1]

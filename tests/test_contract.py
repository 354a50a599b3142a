"""The typed plan contract: docs in sync with the types, defaults in one place, steps typed, no id parsing."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from dialc import contract_doc
from dialc.plan import (
    PARAMS,
    ROLES,
    DedupDimension,
    FinetuneParams,
    GroundingDimension,
    JudgeDimension,
    ModelSpec,
    RuleDimension,
    StepKind,
)
from dialc.schema import DIMENSION_FIELDS, KINDS

ROOT = Path(__file__).resolve().parent.parent
KIND_PREFIX = "|".join(k.value for k in StepKind) + "|source|quality"


def test_contracts_doc_is_generated_from_the_types() -> None:
    text = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    start = text.index(contract_doc.BEGIN)
    end = text.index(contract_doc.END) + len(contract_doc.END) + 1
    assert text[start:end] == contract_doc.render(), "run `python -m dialc.contract_doc --write`"


@pytest.mark.parametrize(("model", "fields"), [
    (ModelSpec, KINDS["model"].fields),
    (FinetuneParams, KINDS["finetune"].fields),
    (RuleDimension, DIMENSION_FIELDS["rule"]),
    (GroundingDimension, DIMENSION_FIELDS["grounding"]),
    (JudgeDimension, DIMENSION_FIELDS["judge"]),
    (DedupDimension, DIMENSION_FIELDS["dedup"]),
], ids=lambda v: getattr(v, "__name__", ""))
def test_plan_defaults_are_the_language_defaults(model: type, fields: dict) -> None:
    """A value the spec leaves out means the same on both sides (the compiler fills it in anyway)."""
    for name, spec in fields.items():
        if name not in model.model_fields or spec.default is None or spec.type in ("ref", "model_method"):
            continue
        default = model.model_fields[name].get_default(call_default_factory=True)
        assert default == spec.default, f"{model.__name__}.{name}: {default!r} != schema {spec.default!r}"


@pytest.mark.parametrize("kind", list(StepKind), ids=lambda k: k.value)
def test_every_step_module_declares_its_typed_params(kind: StepKind) -> None:
    module = importlib.import_module(f"dialc_runtime.steps.{kind.value}")
    ctx_type = typing.get_type_hints(module.run)["ctx"]
    assert typing.get_args(ctx_type) == (PARAMS[kind],), f"run(ctx: StepContext[{PARAMS[kind].__name__}])"
    assert ROLES[kind] is not None


def test_no_code_parses_step_ids_or_messages() -> None:
    """Kinds come from step.kind, inputs from roles, names from step.name: never from an id's text."""
    patterns = [
        re.compile(r"startswith\(\s*[\"'](" + KIND_PREFIX + r")\."),  # filtering inputs by id prefix
        re.compile(r"\.replace\(\s*[\"'](" + KIND_PREFIX + r")\."),  # rewriting ids
        re.compile(r"(?<!r)split\(\s*[\"']\.[\"']\s*,\s*1\s*\)\[0\]"),  # taking the kind out of an id
        re.compile(r"\.message\.split\("),  # reading a name back out of a diagnostic
    ]
    offenders = []
    for folder in ("dialc", "dialc_runtime"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if any(p.search(line) for p in patterns):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.slow
def test_plan_and_step_modules_pass_mypy_strict() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "dialc/plan.py",
                          "dialc_runtime/steps"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr


def test_vocabularies_are_shared_across_the_boundary() -> None:
    """Names the language accepts are the names the runtime implements, each list defined once."""
    from dialc.schema import EXPECT_METRICS, KEEP_FIELDS, RULE_CHECKS, TEMPLATE_PLACEHOLDERS
    from dialc_runtime.data.sampling import Draw
    from dialc_runtime.quality.aggregate import RECORD_FIELDS
    from dialc_runtime.quality.expects import metric
    from dialc_runtime.quality.rules import RULES
    from dialc_runtime.steps.sample import template_values

    assert set(RULES) == set(RULE_CHECKS)
    assert RECORD_FIELDS is KEEP_FIELDS
    dialogue = {"id": "d", "scenario": "s", "turns": [{"role": "agent", "text": "hi"}]}
    task = {"id": "t", "category": "c", "output": {"kind": "text", "max_chars": 10}}
    values = template_values(dialogue, task, "Do it.", Draw("d", "s", "t", "c", ()), "S")
    assert set(values) == set(TEMPLATE_PLACEHOLDERS)
    rows = [{"id": "r", "kept": True, "answer": "a b", "scores": {}, "quality": {}, "aggregate": 1.0}]
    assert all(metric(name, rows) is not None for name in EXPECT_METRICS)

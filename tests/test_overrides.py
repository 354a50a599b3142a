"""`--set KIND.NAME.FIELD=VALUE` → the spec as if the field were written so (or bad-override)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dialc.diagnostics import Diagnostics
from dialc.frontend import load_modules, run_frontend
from dialc.overrides import OVERRIDE_FILE, apply_overrides

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path("specs/realestate.dial")


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def fields(overrides: list[str], kind: str, name: str) -> dict[str, Any]:
    """The resolved fields of one declaration of realestate.dial after the overrides (clean run)."""
    front = run_frontend(SPEC, overrides)
    # an override may leave a declaration unused (domain=holdout(…) leaves the gold test set idle): that
    # is worth a warning, and only a warning
    problems = [f"{d.code}: {d.message}" for d in front.diags.items if d.code != "unused"]
    assert problems == []
    assert front.ir is not None
    return front.ir.find(name, (kind,))[0].fields


def problems(overrides: list[str]) -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in run_frontend(SPEC, overrides).diags.items]


@pytest.mark.parametrize(("override", "kind", "name", "field", "value"), [
    ("sample.prompts.count=40", "sample", "prompts", "count", 40),
    ("sample.prompts.count=1_000", "sample", "prompts", "count", 1000),
    ("model.small.temperature=0", "model", "small", "temperature", 0.0),
    ("pipeline.seed=7", "pipeline", "realestate", "seed", 7),
    ("pipeline.realestate.seed=8", "pipeline", "realestate", "seed", 8),
    ("quality.top_k=3", "quality", "quality", "top_k", 3),
    ("quality.quality.top_k=4", "quality", "quality", "top_k", 4),
    ("source.dialogues.pii_scrub=false", "source", "dialogues", "pii_scrub", False),
    ("sample.prompts.balance=[scenario]", "sample", "prompts", "balance", ["scenario"]),
    ("expressions.style.tone={formal: 1}", "expressions", "style", "tone", {"formal": 1.0}),
    ("evaluate.after.domain=holdout(0.3)", "evaluate", "after", "domain", {"fraction": 0.3}),
    ("finetune.domain.method=full", "finetune", "domain", "method", {"kind": "full"}),
    ("finetune.domain.method=lora { r = 4 }", "finetune", "domain", "method",
     {"kind": "lora", "r": 4}),
    ("pipeline.description=A bare sentence, no quotes", "pipeline", "realestate", "description",
     "A bare sentence, no quotes"),
    ("pipeline.output=runs2", "pipeline", "realestate", "output", "runs2"),
    ("sample.prompts.template={dialogue} {tone} {persona}", "sample", "prompts", "template",
     "{dialogue} {tone} {persona}"),
    ('pipeline.description="quoted \\u00e9"', "pipeline", "realestate", "description", "quoted é"),
])
def test_override_sets_the_field(override: str, kind: str, name: str, field: str,
                                  value: Any) -> None:
    assert fields([override], kind, name)[field] == value


def test_last_override_wins() -> None:
    both = ["sample.prompts.count=40", "sample.prompts.count=50"]
    assert fields(both, "sample", "prompts")["count"] == 50


def test_override_adds_an_unset_field_and_a_new_axis() -> None:
    assert fields(["label.labels.max_tokens=64"], "label", "labels")["max_tokens"] == 64
    axes = fields(["expressions.style.length={short: 2, long: 1}"], "expressions", "style")
    assert axes["length"] == {"short": 2.0, "long": 1.0} and "tone" in axes


def test_override_product_and_template() -> None:
    got = fields(["sample.prompts.from=style * evolved * dialogues",
                  "sample.prompts.template={dialogue} in a {tone} tone"], "sample", "prompts")
    assert [r.name for r in got["from"]] == ["style", "evolved", "dialogues"]
    assert got["template"] == "{dialogue} in a {tone} tone"


def test_overrides_do_not_mutate_the_parsed_modules() -> None:
    diags = Diagnostics()
    modules = load_modules(ROOT / SPEC, diags, str(SPEC))
    before = [m.model_dump() for m in modules]
    changed = apply_overrides(modules, ["sample.prompts.count=99"], diags)
    assert diags.items == [] and [m.model_dump() for m in modules] == before
    assert [m.model_dump() for m in changed] != before


@pytest.mark.parametrize(("override", "message"), [
    ("sample.prompts.count", "expected KIND.NAME.FIELD=VALUE"),
    ("=3", "expected KIND.NAME.FIELD=VALUE"),
    ("sample..count=3", "expected KIND.NAME.FIELD=VALUE"),
    ("count=3", "expected KIND.NAME.FIELD=VALUE"),
    ("sample.nothing.count=3", "'sample.nothing.count' matches no declaration"),
    ("task.category=analysis", "'task.category' is ambiguous"),
    ("quality.other.top_k=3", "'quality.other.top_k' matches no declaration"),
    ("sample.prompts.cnt=3", "'sample.prompts.cnt': sample has no field 'cnt'"),
    ("sample.prompts.count=[1,", "cannot parse the value '[1,'"),
    ("sample.prompts.count=", "cannot parse the value ''"),
    ('sample.prompts.template="\\q"', "invalid escape sequence '\\q'"),
])
def test_bad_override(override: str, message: str) -> None:
    front = run_frontend(SPEC, [override])
    [diag] = front.diags.items
    assert diag.code == "bad-override" and message in diag.message
    assert diag.span is not None and diag.span.file == OVERRIDE_FILE and diag.span.line == 1


def test_bad_override_suggests_a_name() -> None:
    [diag] = run_frontend(SPEC, ["sample.prompt.count=3"]).diags.items
    assert diag.code == "bad-override" and diag.notes[0].message == 'did you mean "sample.prompts"?'
    [diag] = run_frontend(SPEC, ["model.small.temprature=0.1"]).diags.items
    assert diag.notes[0].message == 'did you mean "temperature"?'


@pytest.mark.parametrize(("override", "code"), [
    ("sample.prompts.count=many", "type-mismatch"),
    ("sample.prompts.count=0", "out-of-range"),
    ("model.small.backend=onnx", "bad-choice"),
    ("label.labels.model=prompts", "wrong-ref-kind"),
    ("label.labels.model=smal", "unknown-ref"),
    ("sample.prompts.template={nothing}", "bad-template"),
    ("sample.prompts.count=1_000_000_000", "out-of-range"),
])
def test_override_values_are_checked_like_written_ones(override: str, code: str) -> None:
    found = problems([override])
    assert [c for c, _ in found if c not in ("unused", "sample-too-large")] == [code]


def test_value_errors_point_at_the_override() -> None:
    [diag] = run_frontend(SPEC, ["sample.prompts.count=many"]).diags.items
    assert diag.span is not None and diag.span.file == OVERRIDE_FILE


def test_every_bad_override_is_reported() -> None:
    found = problems(["sample.prompts.cnt=1", "sample.x.count=1", "model.small.temperature=9"])
    assert [c for c, _ in found] == ["bad-override", "bad-override", "out-of-range"]

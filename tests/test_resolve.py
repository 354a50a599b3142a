"""dialc.resolve: parsed modules → IR declarations with typed, bounded, defaulted fields, or diagnostics."""

from __future__ import annotations

import pytest

from dialc.diagnostics import Diagnostic, Diagnostics, Note
from dialc.frontend import parse_text
from dialc.ir import IR, DeclIR, RefIR
from dialc.resolve import resolve
from dialc.schema import DIMENSION_FIELDS, KINDS
from dialc.source import Source

MODEL = 'model m { path = "builtin:tiny" }\n'


def resolve_files(*texts: str) -> tuple[IR, Diagnostics]:
    """Resolve one module per text (f0.dial, f1.dial, …; the last is the main file, as after includes)."""
    diags = Diagnostics()
    modules = []
    for i, text in enumerate(texts):
        module = parse_text(Source(f"f{i}.dial", text), diags)
        assert module is not None, diags.items
        modules.append(module)
    return resolve(modules, f"f{len(texts) - 1}.dial", diags), diags


def decl(text: str, decl_id: str) -> tuple[DeclIR | None, list[Diagnostic]]:
    ir, diags = resolve_files(text)
    found = next((d for d in ir.decls if d.id == decl_id), None)
    return found, diags.items


def errors(text: str) -> list[tuple[str, str]]:
    _, diags = resolve_files(text)
    return [(d.code, d.message) for d in diags.errors]


def pos(item: Diagnostic | Note) -> tuple[int, int]:
    assert item.span is not None
    return item.span.line, item.span.col


# ---- defaults -----------------------------------------------------------------------------------------------------
def test_unset_fields_take_the_schema_defaults() -> None:
    model, diags = decl(MODEL, "model.m")
    assert model is not None and not diags
    defaults = {name: f.default for name, f in KINDS["model"].fields.items() if f.default is not None}
    assert model.fields == {"path": "builtin:tiny", **defaults}
    assert "base_url" not in model.fields  # no default: left unset, not None


def test_a_set_value_wins_over_the_default() -> None:
    model, _ = decl('model m { path = "p"  temperature = 0.7  backend = openai }', "model.m")
    assert model is not None
    assert model.fields["temperature"] == 0.7 and model.fields["backend"] == "openai"


def test_an_invalid_value_is_reported_and_not_replaced_by_the_default() -> None:
    model, diags = decl('model m { path = "p"  temperature = 3 }', "model.m")
    assert model is not None and "temperature" not in model.fields  # later checks never see a silent default
    assert [d.code for d in diags] == ["out-of-range"]


def test_dimension_defaults_come_from_their_kind() -> None:
    quality, diags = decl("quality { from = l  dimension g grounding { }  dimension d dedup { gate = true } }",
                          "quality.quality")
    assert quality is not None and not diags
    grounding, dedup = quality.children
    assert (grounding.qualifier, dedup.qualifier) == ("grounding", "dedup")
    assert grounding.fields == {n: f.default for n, f in DIMENSION_FIELDS["grounding"].items()}
    assert dedup.fields["gate"] is True and dedup.fields["threshold"] == DIMENSION_FIELDS["dedup"]["threshold"].default


def test_a_default_reference_is_a_real_reference_at_the_declaration() -> None:
    evolve, diags = decl("evolve e { model = m }", "evolve.e")
    assert evolve is not None and not diags
    source = evolve.fields["from"]
    assert isinstance(source, RefIR) and source.name == "tasks"
    assert source.span == evolve.name_span  # an unresolvable default is reported at the declaration


def test_a_defaulted_field_has_the_same_form_as_the_same_value_written_out() -> None:
    implicit, _ = decl("finetune f { base = m  data = q }", "finetune.f")
    explicit, _ = decl("finetune f { base = m  data = q  method = lora }", "finetune.f")
    assert implicit is not None and explicit is not None
    assert implicit.fields["method"] == explicit.fields["method"] == {"kind": "lora"}


# ---- types and bounds ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("members", "code", "message"),
    [
        ('path = "p"  max_tokens = 1.5', "type-mismatch", "field 'max_tokens' expects an integer, got number 1.5"),
        ('path = "p"  top_p = "high"', "type-mismatch", "field 'top_p' expects a number, got a string"),
        ("path = 3", "type-mismatch", "field 'path' expects a string"),
        ('path = "p"  backend = llamacpp', "bad-choice",
         "field 'backend' must be one of transformers, openai, vllm; got 'llamacpp'"),
        ('path = "p"  temperature = 2.01', "out-of-range", "field 'temperature' = 2.01 is outside [0..2]"),
        ('path = "p"  max_tokens = 0', "out-of-range", "field 'max_tokens' = 0 is outside [1..32768]"),
    ],
)
def test_field_types_and_bounds(members: str, code: str, message: str) -> None:
    found = errors(f"model m {{ {members} }}")
    assert len(found) == 1 and found[0][0] == code and found[0][1].startswith(message), found


@pytest.mark.parametrize(("value", "ok"), [("0", True), ("2", True), ("-0.0001", False), ("2.0001", False)])
def test_bounds_are_inclusive(value: str, ok: bool) -> None:
    assert (errors(f'model m {{ path = "p"  temperature = {value} }}') == []) is ok


def test_integer_bounds_at_the_seed_limits() -> None:
    assert errors("pipeline p { seed = 4294967295 }") == []
    assert errors("pipeline p { seed = 1_000 }") == []
    assert [c for c, _ in errors("pipeline p { seed = 4294967296 }")] == ["out-of-range"]
    assert [c for c, _ in errors("pipeline p { seed = -1 }")] == ["out-of-range"]


def test_a_type_error_points_at_the_value() -> None:
    _, diags = resolve_files('model m {\n  path = "p"\n  retries = many\n}')
    (diag,) = diags.errors
    assert pos(diag) == (3, 13)


def test_negative_weights_are_refused() -> None:
    assert errors('task t { category = c  instruction = "i"  output = text(max = 9)  weight = -1 }') == [
        ("bad-weight", "field 'weight' = -1 is negative: weights are >= 0")]
    assert [c for c, _ in errors("expressions { tone = {formal: -2, terse: 1} }")] == ["bad-weight"]


# ---- unknown and missing fields -----------------------------------------------------------------------------------
def test_an_unknown_field_is_reported_at_its_name_with_a_suggestion() -> None:
    _, diags = resolve_files('model m { path = "p"  temprature = 0.1 }')
    (diag,) = diags.errors
    assert (diag.code, diag.message, pos(diag)) == ("unknown-field", "model has no field 'temprature'", (1, 23))
    assert [n.message for n in diag.notes] == ['did you mean "temperature"?']


def test_unknown_fields_of_a_dimension_name_its_kind() -> None:
    found = errors('quality { from = l  dimension j judge { model = m  rubric = "r"  treshold = 1 } }')
    assert found == [("unknown-field", "dimension (judge) has no field 'treshold'")]


def test_unknown_fields_in_a_lora_block_are_all_reported() -> None:
    found = errors("finetune f { base = m  data = q  method = lora { r = 0  rank = 3 } }")
    assert sorted(found) == [("out-of-range", "field 'r' = 0 is outside [1..1024]"),
                             ("unknown-field", "lora has no field 'rank'")]


def test_a_missing_required_field_says_what_it_is_for() -> None:
    _, diags = resolve_files("model m {\n}")
    (diag,) = diags.errors
    assert diag.code == "missing-field" and pos(diag) == (1, 7)
    assert diag.message == f"model 'm' needs field 'path' ({KINDS['model'].fields['path'].doc})"


def test_a_field_set_twice_keeps_the_first_and_points_at_both() -> None:
    model, diags = decl('model m {\n  path = "p"\n  path = "q"\n}', "model.m")
    assert model is not None and model.fields["path"] == "p"
    (diag,) = diags
    assert (diag.code, diag.message, pos(diag)) == ("duplicate-field", "field 'path' is set twice", (3, 3))
    assert [(n.message, pos(n)) for n in diag.notes] == [("first set here", (2, 10))]


# ---- declarations -------------------------------------------------------------------------------------------------
def test_a_duplicate_declaration_keeps_the_first_and_points_at_it() -> None:
    task = 'task m { category = c  instruction = "i"  output = text(max = 9) }'
    ir, diags = resolve_files(f'model m {{ path = "a" }}\n{task}\nmodel m {{ path = "b" }}\n')
    assert [d.id for d in ir.decls] == ["model.m", "task.m"]  # one name may serve two kinds
    assert ir.decls[0].fields["path"] == "a"
    (diag,) = diags.errors
    assert (diag.code, diag.message, pos(diag)) == ("duplicate-name", "model 'm' is already declared", (3, 7))
    assert [(n.message, pos(n)) for n in diag.notes] == [("first declared here", (1, 7))]


def test_duplicates_across_included_files_point_at_the_other_file() -> None:
    ir, diags = resolve_files(MODEL, "pipeline p { }\n" + MODEL)
    (diag,) = diags.errors
    assert diag.code == "duplicate-name" and diag.span is not None and diag.span.file == "f1.dial"
    assert diag.notes[0].span is not None and diag.notes[0].span.file == "f0.dial"
    assert ir.file == "f1.dial" and [d.id for d in ir.decls] == ["model.m", "pipeline.p"]


def test_a_singleton_kind_may_be_declared_once_whatever_its_name() -> None:
    ir, diags = resolve_files("pipeline a { seed = 1 }\npipeline b { seed = 2 }")
    assert [(d.code, d.message) for d in diags.errors] == [
        ("duplicate-singleton", "'pipeline' may be declared only once")]
    assert ir.seed == 1


def test_duplicate_dimension_names_within_a_quality_block() -> None:
    quality, diags = decl("quality { from = l  dimension v rule { check = schema }\n"
                          "  dimension v grounding { } }", "quality.quality")
    assert quality is not None and [c.qualifier for c in quality.children] == ["rule"]
    assert [(d.code, pos(d)) for d in diags] == [("duplicate-name", (2, 13))]


def test_an_unknown_kind_is_reported_with_a_suggestion() -> None:
    ir, diags = resolve_files('modle m { path = "p" }')
    (diag,) = diags.errors
    assert not ir.decls
    assert (diag.code, diag.message) == ("unknown-declaration", "unknown declaration kind 'modle'")
    assert [n.message for n in diag.notes] == ['did you mean "model"?']


def test_a_dimension_outside_a_quality_block_is_unknown() -> None:
    assert errors("dimension v rule { check = schema }") == [
        ("unknown-declaration", "unknown declaration kind 'dimension'")]


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ('model { path = "p" }', "missing-name", "model needs a name: `model NAME { … }`"),
        ('model m extra { path = "p" }', "extra-words", "unexpected 'extra' in the model header"),
        ("quality { from = l  dimension v { } }", "missing-name",
         "dimension needs a name and a kind (rule, grounding, judge, dedup)"),
        ("quality { from = l  dimension v fancy { } }", "bad-choice",
         "dimension kind must be one of rule, grounding, judge, dedup; got 'fancy'"),
    ],
)
def test_header_mistakes(text: str, code: str, message: str) -> None:
    assert errors(text) == [(code, message)]


def test_unnamed_kinds_are_named_after_their_kind() -> None:
    ir, diags = resolve_files("expressions { tone = {formal: 2, terse: 1} }")
    assert not diags.items and [d.id for d in ir.decls] == ["expressions.expressions"]
    assert ir.decls[0].fields["tone"] == {"formal": 2.0, "terse": 1.0}  # open fields: axes


# ---- members ------------------------------------------------------------------------------------------------------
def test_scenario_entries_with_and_without_weights() -> None:
    scenarios, diags = decl('scenarios {\n  rental "Renting" weight 3\n  buy "Buying"\n}', "scenarios.scenarios")
    assert scenarios is not None and not diags
    assert [(e.name, e.description, e.weight, e.span.line) for e in scenarios.entries] == [
        ("rental", "Renting", 3.0, 2), ("buy", "Buying", 1.0, 3)]


def test_scenario_weights_must_leave_something_to_draw() -> None:
    assert errors('scenarios { a "A" weight -1  b "B" }') == [("bad-weight", "weight of scenario 'a' is negative")]
    assert errors('scenarios { a "A" weight 0 }') == [
        ("bad-weight", "all scenario weights are zero: nothing can be drawn")]


@pytest.mark.parametrize(
    ("member", "what"),
    [('rental "Renting"', "a scenario entry"), ("keep when score > 0.5", "a keep rule"),
     ("expect kept_rate > 0.5", "an expect test"), ("x: int", "an output-schema field"),
     ('model n { path = "q" }', "a nested declaration")],
)
def test_members_in_the_wrong_block(member: str, what: str) -> None:
    assert errors(f'model m {{ path = "p"  {member} }}') == [
        ("misplaced-member", f"{what} cannot appear in a model block")]


def test_references_keep_the_span_they_were_written_at() -> None:
    sample, diags = decl("sample s { from = d * tasks  count = 5 }", "sample.s")
    assert sample is not None and not diags
    refs = sample.fields["from"]
    assert [(r.name, r.span.col) for r in refs] == [("d", 19), ("tasks", 23)]

"""Rule dimensions: schema, length, language, repetition, PII, refusal, regex on records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dialc_runtime.models.base import Constraint
from dialc_runtime.models.validation import check_output, schema_errors, validate_output
from dialc_runtime.quality.rules import find_pii, repetition_ratio, score_rule
from dialc_runtime.quality.text import script_shares, tokens

# The schema the compiler emits for `output { budget_max: int? [0..100000000]
# district: str? (max 40)  bedrooms: int? [0..10] }`, plus an array of enums.
SCHEMA = {
    "type": "object",
    "properties": {
        "budget_max": {"type": ["integer", "null"], "minimum": 0, "maximum": 100000000},
        "district": {"type": ["string", "null"], "maxLength": 40},
        "bedrooms": {"type": ["integer", "null"], "minimum": 0, "maximum": 10},
        "features": {"type": "array", "items": {"type": "string", "enum": ["balcony", "lift"]}},
    },
    "required": ["budget_max", "district", "bedrooms"],
    "additionalProperties": False,
}
GOOD = {"budget_max": 2800, "district": "Chaoyang", "bedrooms": 2}


def labelled(answer: str = "", value: Any = None, **extra: Any) -> dict[str, Any]:
    output = extra.pop("output", {"kind": "text"})
    return {"id": "r1", "answer": answer, "value": value, "ok": True, "output": output, **extra}


def test_schema_accepts_a_valid_value_and_nulls() -> None:
    assert schema_errors(GOOD, SCHEMA) == []
    assert schema_errors({"budget_max": None, "district": None, "bedrooms": None}, SCHEMA) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({**GOOD, "bedrooms": "two"}, '$.bedrooms: expected integer or null, got string "two"'),
        ({**GOOD, "bedrooms": 2.5}, "$.bedrooms: expected integer or null, got number 2.5"),
        ({**GOOD, "bedrooms": True}, "$.bedrooms: expected integer or null, got boolean true"),
        ({**GOOD, "bedrooms": 11}, "$.bedrooms: 11 is above the maximum 10"),
        ({**GOOD, "budget_max": -5}, "$.budget_max: -5 is below the minimum 0"),
        ({**GOOD, "district": "x" * 41}, "$.district: 41 characters, more than maxLength 40"),
        ({**GOOD, "parking": True}, "$: unexpected field 'parking'"),
        ({"budget_max": 1, "district": None}, "$: missing required field 'bedrooms'"),
        ({**GOOD, "features": ["pool"]}, '$.features[0]: "pool" is not one of ["balcony", "lift"]'),
        ([GOOD], "$: expected object, got array"),
    ],
)
def test_schema_violations_are_named(value: Any, expected: str) -> None:
    assert expected in schema_errors(value, SCHEMA)


def test_schema_rule_on_records() -> None:
    output = {"kind": "json", "schema": SCHEMA}
    assert score_rule(labelled(value=GOOD, output=output), {"check": "schema"}).passed
    bad = score_rule(labelled(value={**GOOD, "rooms": 2}, output=output), {"check": "schema"})
    assert (bad.score, bad.passed) == (0.0, False)
    assert "unexpected field 'rooms'" in bad.detail
    failed = labelled(value=None, output=output, ok=False, error="invalid JSON")
    assert "invalid JSON" in score_rule(failed, {"check": "schema"}).detail


ONE_OF = {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]}  # 3 matches both
NESTED = {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "maxItems": 2}}
NULLABLE = {"type": "object", "additionalProperties": False, "required": ["a"],
            "properties": {"a": {"type": ["string", "null"]}, "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}
OPEN = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "integer"}}
TRICKY = [  # (output constraint, decoded text, valid?)
    ({"kind": "json", "schema": ONE_OF}, "3", False),
    ({"kind": "json", "schema": ONE_OF}, "-3", True),
    ({"kind": "json", "schema": ONE_OF}, "0.5", True),
    ({"kind": "json", "schema": {"type": "number", "multipleOf": 0.1}}, "0.3", True),
    ({"kind": "json", "schema": {"type": "number", "multipleOf": 0.1}}, "0.35", False),
    ({"kind": "json", "schema": {"type": "integer", "multipleOf": 5}}, "15", True),
    ({"kind": "json", "schema": {"type": "number"}}, "NaN", False),
    ({"kind": "json", "schema": {"type": "number", "minimum": 0}}, "Infinity", False),
    ({"kind": "json", "schema": {}}, "[1, NaN]", False),
    ({"kind": "json", "schema": NESTED}, "[[1, 2], [3], []]", True),
    ({"kind": "json", "schema": NESTED}, "[[1, 2, 3]]", False),
    ({"kind": "json", "schema": NESTED}, '[[1, "2"]]', False),
    ({"kind": "json", "schema": NULLABLE}, '{"a": null, "b": null}', True),
    ({"kind": "json", "schema": NULLABLE}, '{"a": "x", "b": 2}', True),
    ({"kind": "json", "schema": NULLABLE}, '{"b": 2}', False),
    ({"kind": "json", "schema": NULLABLE}, '{"a": null, "c": 1}', False),
    ({"kind": "json", "schema": OPEN}, '{"a": 1, "c": 2}', True),
    ({"kind": "json", "schema": OPEN}, '{"a": 1, "c": "x"}', False),
    ({"kind": "json", "schema": {"enum": [0, 1]}}, "true", False),
    ({"kind": "json", "schema": {"type": "integer"}}, "2.0", True),
    ({"kind": "json", "schema": {"type": "string", "pattern": "^[A-Z]"}}, '"Abc"', True),
    ({"kind": "choice", "options": ["yes", "no"]}, "maybe", False),
    ({"kind": "regex", "pattern": r"[A-Z]-\d+"}, "A-12 and more", False),
    ({"kind": "text", "max_chars": 5}, "abcdef", False),
]


@pytest.mark.parametrize(("output", "text", "valid"), TRICKY)
def test_label_validation_and_schema_rule_agree(output: dict[str, Any], text: str, valid: bool) -> None:
    """The label's `ok` and the `schema` rule come from one validator: they never contradict."""
    ok, value, error = validate_output(text, Constraint.from_dict(output))
    assert ok is valid, error
    record = labelled(text, value if output["kind"] == "json" else (text if ok else None),
                      ok=ok, error=error, output=output)
    assert score_rule(record, {"check": "schema"}).passed is ok
    if output["kind"] == "json":  # a stored value the label did not produce (NaN kept, edited …)
        assert (check_output(json.loads(text), output) == []) is ok


def test_a_runaway_answer_lists_ten_violations_and_counts_the_rest() -> None:
    errors = schema_errors(["x"] * 30, {"type": "array", "items": {"type": "integer"}})
    assert len(errors) == 11 and errors[-1] == "… and 20 more"
    assert errors[0] == '$[0]: expected integer, got string "x"'


def test_schema_follows_refs_and_any_of() -> None:
    schema = {
        "type": "object",
        "properties": {"req": {"$ref": "#/$defs/Req"}},
        "$defs": {"Req": {"anyOf": [{"type": "integer", "maximum": 3}, {"type": "null"}]}},
    }
    assert schema_errors({"req": None}, schema) == []
    assert schema_errors({"req": 2}, schema) == []
    assert schema_errors({"req": 9}, schema) != []


def test_other_output_kinds() -> None:
    assert check_output("rental", {"kind": "choice", "options": ["rental", "purchase"]}) == []
    assert check_output("loan", {"kind": "choice", "options": ["rental", "purchase"]}) != []
    assert check_output("A-12", {"kind": "regex", "pattern": r"[A-Z]-\d+"}) == []
    assert check_output("A-12 and more", {"kind": "regex", "pattern": r"[A-Z]-\d+"}) != []
    assert check_output("short", {"kind": "text", "max_chars": 10}) == []
    assert check_output("far too long a text", {"kind": "text", "max_chars": 10}) != []


def test_tokens_count_cjk_characters_and_words() -> None:
    words = ["two", "bedroom", "flat", "2,800", "a", "month"]
    assert tokens("Two-bedroom flat, 2,800 a month!") == words
    assert tokens("我想租两居室 near the subway") == [*"我想租两居室", "near", "the", "subway"]


def test_length_rule_bounds() -> None:
    params = {"check": "length", "min": 3, "max": 8}
    assert score_rule(labelled("one two three four"), params).passed
    assert score_rule(labelled("too short"), params).detail == "2 tokens, fewer than 3"
    assert not score_rule(labelled("一二三四五六七八九十"), params).passed  # 10 CJK tokens


def test_length_rule_with_a_tokenizer() -> None:
    class Chars:
        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            return [ord(c) for c in text]

    params = {"check": "length", "max": 5, "tokenizer": Chars()}
    assert not score_rule(labelled("abcdefg"), params).passed


def test_language_mismatch_is_caught() -> None:
    zh = {"language": "zh", "tone": "formal"}
    english = "The customer wants a two-bedroom flat near the subway."
    chinese = "客户想在地铁附近租一套两居室。"
    assert not score_rule(labelled(english, expression=zh), {"check": "language"}).passed
    assert score_rule(labelled(chinese, expression=zh), {"check": "language"}).passed
    en = {"language": "en"}
    assert not score_rule(labelled(chinese, expression=en), {"check": "language"}).passed
    assert score_rule(labelled(english, expression=en), {"check": "language"}).passed


def test_language_checks_json_string_values_not_keys() -> None:
    output = {"kind": "json"}
    record = labelled('{"district": "朝阳区"}', {"district": "朝阳区"}, output=output,
                      expression={"language": "zh"})  # fmt: skip
    assert score_rule(record, {"check": "language"}).passed
    record["expression"] = {"language": "en"}
    assert not score_rule(record, {"check": "language"}).passed


def test_language_knows_other_scripts() -> None:
    assert script_shares("Привет, как дела")["cyrillic"] == 1.0
    record = labelled("Привет, как дела", expression={"language": "ru"})
    assert score_rule(record, {"check": "language"}).passed
    assert not score_rule(
        {**record, "expression": {"language": "fr"}}, {"check": "language"}
    ).passed
    assert score_rule(labelled("no language asked"), {"check": "language"}).passed  # n/a


def test_repetition_is_caught() -> None:
    fresh = "The flat has two bedrooms, a south balcony and is close to the subway line."
    loop = "the flat is nice " * 12
    assert repetition_ratio(fresh) == 0.0
    assert repetition_ratio(loop) > 0.7
    assert score_rule(labelled(fresh), {"check": "repetition"}).passed
    verdict = score_rule(labelled(loop), {"check": "repetition", "max": 0.3})
    assert not verdict.passed and verdict.score is not None and verdict.score < 0.3
    assert not score_rule(labelled("好的" * 8), {"check": "repetition"}).passed


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Call me at 138 1234 5678 tomorrow", "cn_mobile"),
        ("my number is 13812345678", "cn_mobile"),
        ("reach me on +1 (415) 555-2671", "phone"),
        ("mail zhang.wei@example.com please", "email"),
        ("身份证号 11010519491231002X", "cn_id"),
        ("SSN 078-05-1120", "ssn"),
        ("card 4111 1111 1111 1111", "card"),
    ],
)
def test_pii_is_caught(text: str, kind: str) -> None:
    assert kind in [k for k, _ in find_pii(text)]
    verdict = score_rule(labelled(text), {"check": "pii"})
    assert not verdict.passed and kind in verdict.detail


@pytest.mark.parametrize(
    "text",
    ["Budget 2,800 a month, 2 bedrooms, 90 m², built in 2015", "总价4500000元，首付30%",
     "Order 12345678901234567 is not an ID"],
)  # fmt: skip
def test_prices_and_dates_are_not_pii(text: str) -> None:
    assert score_rule(labelled(text), {"check": "pii"}).passed


@pytest.mark.parametrize(
    "text",
    ["As an AI language model, I cannot give advice.", "I’m sorry, but I can’t help with that.",
     "作为一个人工智能，我无法回答这个问题。", "抱歉，我无法提供这些信息。"],
)  # fmt: skip
def test_refusals_are_caught(text: str) -> None:
    assert not score_rule(labelled(text), {"check": "refusal"}).passed


def test_plain_answers_are_not_refusals() -> None:
    text = "The customer cannot afford more than 3000 and wants to move in May."
    assert score_rule(labelled(text), {"check": "refusal"}).passed
    custom = {"check": "refusal", "phrases": ["Sure thing"]}
    assert not score_rule(labelled("sure thing!"), custom).passed


def test_regex_must_and_must_not_match() -> None:
    must = {"check": "regex", "pattern": r"\d+ ?(yuan|元)"}
    assert score_rule(labelled("about 2800 yuan"), must).passed
    assert not score_rule(labelled("about 2800"), must).passed
    forbid = {"check": "regex", "pattern": r"(?i)lorem", "must": "not_match"}
    assert not score_rule(labelled("Lorem ipsum"), forbid).passed
    assert score_rule(labelled("fine"), forbid).passed


def test_the_rule_may_be_named_rule_or_check() -> None:
    assert not score_rule(labelled("x@y.com"), {"rule": "pii"}).passed
    assert not score_rule(labelled("x@y.com"), {"check": "pii"}).passed


def test_unknown_rule_is_a_failure_not_a_zero() -> None:
    verdict = score_rule(labelled("x"), {"check": "vibes"})
    assert verdict.failed_to_score and "unknown rule" in verdict.detail


def test_refusal_phrases_match_whole_words() -> None:
    assert score_rule(
        labelled("Our goal, as an aim, is a quick sale."), {"check": "refusal"}
    ).passed

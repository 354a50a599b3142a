"""Grounding: a label's values and words must come from the dialogue; numbers are normalised."""

from __future__ import annotations

from typing import Any

import pytest

from dialc_runtime.quality.grounding import score_grounding
from dialc_runtime.quality.numbers import extract_numbers, parse_number

EN = {
    "id": "d1",
    "turns": [
        {"role": "customer", "text": "Hi, I'm looking for a two-bedroom flat in Chaoyang."},
        {"role": "agent", "text": "Sure. What's your monthly budget?"},
        {"role": "customer", "text": "At most 2.8k, and it should be close to the subway."},
    ],
}
ZH = {
    "id": "d2",
    "turns": [
        {"role": "customer", "text": "我想在朝阳区买套三居室，总价四百五十万以内。"},
        {"role": "agent", "text": "好的，首付大概多少？"},
        {"role": "customer", "text": "首付135万左右。"},
    ],
}


def extraction(value: dict[str, Any]) -> dict[str, Any]:
    return {"id": "r1", "dialogue_id": "d1", "output": {"kind": "json"}, "value": value, "ok": True}


def prose(answer: str) -> dict[str, Any]:
    return {"id": "r2", "dialogue_id": "d1", "output": {"kind": "text"}, "answer": answer,
            "value": answer, "ok": True}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2,800", 2800), ("2800", 2800), ("2.8k", 2800), ("2.8K", 2800), ("4.5 million", 4_500_000),
        ("RMB 4.5M", 4_500_000), ("3万", 30_000), ("2.5万", 25_000), ("三千五", 3500),
        ("两万五", 25_000), ("四百五十万", 4_500_000), ("一百零五", 105), ("1.2亿", 120_000_000),
        ("twenty-five", 25), ("two-bedroom", 2), ("3w", 30_000), ("5%", 0.05),
        ("２８００元", 2800),
    ],
)  # fmt: skip
def test_numbers_are_normalised(text: str, value: float) -> None:
    assert value in extract_numbers(text)


def test_parse_number_only_for_whole_numbers() -> None:
    assert parse_number("2.8k") == 2800
    assert parse_number("三千") == 3000
    assert parse_number("two") == 2
    assert parse_number("2 bedrooms") is None
    assert parse_number("Chaoyang") is None


def test_correct_extraction_is_grounded() -> None:
    value = {"budget_max": 2800, "district": "Chaoyang", "bedrooms": 2, "near_subway": True}
    verdict = score_grounding(extraction(value), EN, {"min": 0.3})
    assert (verdict.score, verdict.passed) == (1.0, True)


def test_invented_budget_fails_grounding() -> None:
    value = {"budget_max": 5000, "district": "Chaoyang", "bedrooms": 2}
    verdict = score_grounding(extraction(value), EN, {"min": 0.3})
    assert verdict.passed is False
    assert verdict.score == pytest.approx(2 / 3, abs=1e-3)
    assert "budget_max=5000" in verdict.detail


def test_nulls_are_fine_and_invented_strings_fail() -> None:
    assert score_grounding(extraction({"budget_max": None, "district": None}), EN, {}).passed
    verdict = score_grounding(extraction({"district": "Haidian"}), EN, {})
    assert not verdict.passed and "Haidian" in verdict.detail


def test_strings_match_fuzzily() -> None:
    value = {"requirement": "close to the Subway", "district": "chaoyang district"}
    assert score_grounding(extraction(value), EN, {}).score == 0.5  # "district" is not said
    assert score_grounding(extraction({"rooms": ["two bedrooms"]}), EN, {}).passed


def test_chinese_extraction() -> None:
    good = {"budget_max": 4_500_000, "district": "朝阳区", "bedrooms": 3, "down_payment": "135万"}
    record = {**extraction(good), "dialogue_id": "d2"}
    assert score_grounding(record, ZH, {}).passed
    bad = {**good, "district": "海淀区", "budget_max": 6_000_000}
    verdict = score_grounding({**record, "value": bad}, ZH, {})
    assert verdict.score == 0.5 and "海淀区" in verdict.detail


def test_free_text_overlap() -> None:
    grounded = "The customer wants a two-bedroom flat in Chaoyang near the subway, at most 2800."
    assert score_grounding(prose(grounded), EN, {"min": 0.3}).passed
    invented = "Paris is the capital of France and famous for its cuisine and museums."
    verdict = score_grounding(prose(invented), EN, {"min": 0.3})
    assert verdict.passed is False and verdict.score is not None and verdict.score < 0.3


def test_missing_dialogue_is_a_failure_and_choice_is_not_applicable() -> None:
    assert score_grounding(extraction({}), None, {}).failed_to_score
    choice = {**prose("rental"), "output": {"kind": "choice", "options": ["rental"]}}
    verdict = score_grounding(choice, EN, {})
    assert verdict.score is None and verdict.passed is True

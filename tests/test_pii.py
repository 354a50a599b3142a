"""dialc_runtime.data.pii: text → text with e-mails, phones, ID and card numbers masked, and what was masked."""

from __future__ import annotations

from collections import Counter

import pytest

from dialc_runtime.data.pii import scrub


@pytest.mark.parametrize(
    ("text", "masked", "kind"),
    [
        ("mail li.wei+home@example.com.cn now", "mail [EMAIL] now", "email"),
        ("my number is 555-0142.", "my number is [PHONE].", "phone"),
        ("call 138 0013 8000", "call [PHONE]", "phone"),
        ("call 13800138000", "call [PHONE]", "phone"),
        ("+86 138-0013-8000", "[PHONE]", "phone"),
        ("(010) 6552-9988", "[PHONE]", "phone"),
        ("id 11010519491231002X please", "id [ID] please", "id_number"),
        ("id 110105194912310021", "id [ID]", "id_number"),
        ("card 6222 0202 0000 1234 ok", "card [CARD] ok", "card"),
        ("card 6222-0202-0000-1234", "card [CARD]", "card"),
    ],
)
def test_personal_data_is_masked(text: str, masked: str, kind: str) -> None:
    assert scrub(text) == (masked, Counter({kind: 1}))


def test_an_id_number_is_not_half_masked_as_a_phone() -> None:
    """The 18-character ID contains an 11-digit run that looks like a mobile number."""
    assert scrub("身份证 11010519881380013X") == ("身份证 [ID]", Counter({"id_number": 1}))


def test_every_occurrence_is_counted() -> None:
    text = "a@b.co, c@d.org; 555-0101 / 555-0102"
    assert scrub(text) == ("[EMAIL], [EMAIL]; [PHONE] / [PHONE]", Counter({"email": 2, "phone": 2}))


@pytest.mark.parametrize(
    "text",
    [
        "budget 3,500,000 yuan, 120 sqm, 3 rooms",
        "viewing on 2024-05-01 at 14:30",
        "unit 1507, floor 12, building 3",
        "order 20240501123456789012",  # longer than any ID: left alone
        "110105194912310021X",  # 19 characters: not an ID number
        "13800138000123",  # a mobile number cannot continue with digits
        "no digits here, just words",
    ],
)
def test_ordinary_numbers_are_kept(text: str) -> None:
    assert scrub(text) == (text, Counter())


@pytest.mark.parametrize("text", ["rent 8000-9000 per month", "between 2023 2024", "a budget of 1500-2000"])
def test_number_ranges_are_not_phone_numbers(text: str) -> None:
    assert scrub(text) == (text, Counter())


@pytest.mark.parametrize("text", ["call 555-0142", "+1 800-9000", "(010) 8000-9000", "5000-3000", "800 1234"])
def test_phone_numbers_that_look_like_pairs_of_numbers_are_still_masked(text: str) -> None:
    masked, counts = scrub(text)
    assert counts == Counter(phone=1) and "[PHONE]" in masked


def test_scrubbing_is_idempotent() -> None:
    once, _ = scrub("li@x.com 555-0142 11010519491231002X 6222 0202 0000 1234")
    assert scrub(once) == (once, Counter())


@pytest.mark.parametrize("run", ["a" * 200_000, "好" * 200_000, "1" * 200_000, "a." * 100_000, "x@" * 100_000])
def test_scrubbing_is_linear_in_the_text(run: str) -> None:
    """Issue 14: the e-mail pattern retried every start inside a long word run (one 100,000-character
    turn took 58 s); a 200,000-character run now takes milliseconds, and a run with an e-mail still masks it."""
    import time

    start = time.perf_counter()
    scrub(run)
    scrub(run + " li@example.com")
    assert time.perf_counter() - start < 1.0
    assert scrub(run[:50] + " li@example.com")[1]["email"] == 1


def test_the_quality_pii_rule_is_linear_too() -> None:
    import time

    from dialc_runtime.quality.rules import find_pii

    start = time.perf_counter()
    assert find_pii("a" * 200_000) == []
    assert time.perf_counter() - start < 1.0

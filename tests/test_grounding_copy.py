"""Grounding must not reward copying: a "summary" that repeats the dialogue verbatim scores below a real one."""

from __future__ import annotations

from typing import Any

from dialc_runtime.quality.grounding import copied_share, score_grounding

DIALOGUE = {"id": "d1", "turns": [
    {"role": "customer", "text": "Hi, I'm calling about the two-bedroom on Willow Lane in Riverside. "
                                 "Is it still available?"},
    {"role": "agent", "text": "Good morning, this is Daniel from Keystone Realty. Yes, the Willow Lane flat "
                              "is still on the market. It's on the 6th floor and the rent is 2,800 a month."},
    {"role": "customer", "text": "Great, can I see it on Friday afternoon with my partner?"},
]}  # fmt: skip
COPY = ("Hi, I'm calling about the two-bedroom on Willow Lane in Riverside. Is it still available? Good "
        "morning, this is Daniel from Keystone Realty. Yes, the Willow Lane flat is still on the market.")
SUMMARY = ("The customer asked whether the Willow Lane two-bedroom in Riverside is available; Daniel of "
           "Keystone Realty confirmed the 2,800 rent and the customer wants a Friday viewing.")


def prose(answer: str) -> dict[str, Any]:
    return {"id": "r", "dialogue_id": "d1", "output": {"kind": "text", "max_chars": 400}, "answer": answer,
            "value": answer, "ok": True}


def test_a_verbatim_copy_scores_below_a_summary_and_fails() -> None:
    copied = score_grounding(prose(COPY), DIALOGUE, {"min": 0.3})
    summary = score_grounding(prose(SUMMARY), DIALOGUE, {"min": 0.3})
    assert summary.passed and summary.score is not None and summary.score > 0.6
    assert copied.passed is False and copied.score is not None and copied.score < summary.score
    assert "copied verbatim" in copied.detail


def test_the_copied_share_counts_words_inside_long_verbatim_runs() -> None:
    assert copied_share(COPY, DIALOGUE) == 1.0
    assert copied_share(SUMMARY, DIALOGUE) == 0.0
    quote = "Daniel said: the Willow Lane flat is still on the market. We should book a viewing soon."
    assert 0.3 < copied_share(quote, DIALOGUE) < 0.7  # one quoted clause of a longer answer

"""dialc_runtime.data.prompts: records → transcripts, answer-format hints and chat messages shown to models."""

from __future__ import annotations

from typing import Any

import pytest

from dialc_runtime.data.prompts import DEFAULT_SYSTEM, fill, output_format, render_prompt, transcript

DIALOGUE = {"turns": [{"role": "agent", "text": "Hello, how can I help?"},
                      {"role": "customer", "text": "A two-bedroom flat near the park."}]}


def test_a_transcript_names_the_speakers_one_turn_a_line() -> None:
    assert transcript(DIALOGUE) == "Agent: Hello, how can I help?\nCustomer: A two-bedroom flat near the park."


def test_a_long_transcript_keeps_its_start_and_end() -> None:
    long = {"turns": [{"role": "agent", "text": "a" * 500}, {"role": "customer", "text": "b" * 500}]}
    text = transcript(long, limit=100)
    head, tail = text.split("\n[…]\n")
    assert head == "Agent: " + "a" * 43 and tail == "b" * 50  # half the limit each side of the cut
    assert transcript(long, limit=2000) == transcript(long)  # under the limit: untouched


@pytest.mark.parametrize(
    ("output", "hint"),
    [
        ({"kind": "json", "schema": {"properties": {"budget": {"type": ["integer", "null"]},
                                                    "area": {"type": "string"}}}},
         'Answer with a JSON object only: {"budget": integer or null, "area": string}. '
         "Use null when the dialogue does not say."),
        ({"kind": "choice", "options": ["yes", "no"]}, "Answer with exactly one of: yes, no."),
        ({"kind": "regex", "pattern": r"^\d+$"}, r"Answer in the form matching /^\d+$/."),
        ({"kind": "text", "max_chars": 400}, "Answer in plain text, at most 400 characters (about 66 words); "
                                             "finish your last sentence within that limit."),
    ],
)
def test_the_answer_format_hint_follows_the_constraint(output: dict[str, Any], hint: str) -> None:
    assert output_format(output) == hint


def test_a_nullable_enum_says_it_may_be_null() -> None:
    schema = {"properties": {"kind": {"type": ["string", "null"], "enum": ["flat", "house", None]}}}
    assert '"kind": one of flat/house or null' in output_format({"kind": "json", "schema": schema})


def test_the_default_prompt_shows_dialogue_task_and_format() -> None:
    values = {"scenario": "rental", "dialogue": "Agent: hi", "instruction": "Summarize.", "output_format": "FMT"}
    system, user = render_prompt(None, None, values)
    assert system == {"role": "system", "content": DEFAULT_SYSTEM}
    assert user == {"role": "user", "content": "Dialogue (rental):\nAgent: hi\n\nTask: Summarize.\nFMT"}


def test_a_custom_template_without_the_format_still_gets_it() -> None:
    """Constrained generation needs the model to know the form; a template may forget to show it."""
    values = {"instruction": "Summarize.", "output_format": "FMT", "tone": "terse"}
    _, user = render_prompt("Q ({tone}): {instruction}", "Be {tone}.", values)
    assert user["content"] == "Q (terse): Summarize.\nFMT"
    _, user = render_prompt("{output_format} then {instruction}", None, values)
    assert user["content"] == "FMT then Summarize."  # shown once, where the template puts it


def test_fill_keeps_literal_braces_and_blanks_unknown_placeholders() -> None:
    assert fill("{{json}} {a} [{b}]", {"a": 1}) == "{json} 1 []"


@pytest.mark.parametrize("template", ["{dialogue!x}", "{dialogue:,}", "{dialogue:{instruction}}",
                                      "{dialogue:x>999999999}", "{dialogue.__class__}", "{dialogue[0]}"])
def test_fill_takes_plain_placeholders_only(template: str) -> None:
    """Issue 14: conversions and format specs reached str.format (internal errors, a gigabyte per prompt)."""
    with pytest.raises(ValueError, match="only plain"):
        fill(template, {"dialogue": "Agent: hi", "instruction": "x"})

"""Bounded free text (text(max = N)) → an answer that ends naturally, or a truncation retried and quarantined."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tiny_model import build_sharp_model

from dialc_runtime.data.prompts import output_format
from dialc_runtime.models.base import Constraint, GenRequest
from dialc_runtime.models.transformers_backend import TransformersBackend
from dialc_runtime.models.validation import check_output, ends_sentence, settle_text, validate_output
from dialc_runtime.quality.rules import rule_schema

CUT = "The customer wants a two-bedroom flat near the park and I'll file a 2"  # cut mid-word at its bound
BOUND = Constraint(kind="text", max_chars=len(CUT))


def test_an_answer_cut_at_its_bound_is_truncated_not_valid() -> None:
    ok, value, error = validate_output(CUT, BOUND)
    assert not ok and value is None and str(error).startswith("truncated")
    assert check_output(CUT, BOUND.__dict__ | {"kind": "text"})  # the schema rule's validator agrees
    label = {"answer": CUT, "value": None, "ok": True, "output": {"kind": "text", "max_chars": len(CUT)}}
    assert rule_schema(label, {}).passed is False
    finished = CUT[:-11] + "a request."
    assert validate_output(finished, Constraint(kind="text", max_chars=len(finished)))[0]  # ends a sentence
    assert validate_output(CUT, Constraint(kind="text", max_chars=len(CUT) + 1))[0]  # stopped within the bound


@pytest.mark.parametrize(("text", "ends"), [
    ("Done.", True), ("Is it? ", True), ('He said "yes."', True), ("好的。", True), ("Call Mr.", False),
    ("Steps: 1.", False), ("a 2", False), ("budget 2.5", False), ("", False), ("Thanks.\n\nP.S.", False),
])
def test_sentence_ends(text: str, ends: bool) -> None:
    assert ends_sentence(text) is ends


def test_an_answer_at_its_bound_stops_at_its_last_sentence_end() -> None:
    text = "The flat has two bedrooms. The rent is 2,800 a month. The viewing is on Fri"
    bound = Constraint(kind="text", max_chars=len(text))
    assert settle_text(text, bound, None) == ("The flat has two bedrooms. The rent is 2,800 a month.", None)
    early = "Yes. " + "x" * 60  # the only sentence end is in the bound's first half: too little is left
    settled, error = settle_text(early, Constraint(kind="text", max_chars=len(early)), None)
    assert settled == early and str(error).startswith("truncated")
    short = "Two bedrooms, near the park"  # the token budget ran out before the character bound
    assert settle_text(short, Constraint(kind="text", max_chars=400), "max_tokens=8")[1] is not None
    assert settle_text(short, Constraint(kind="text", max_chars=400), None) == (short, None)


def test_the_prompt_states_the_limit_and_asks_for_a_whole_sentence() -> None:
    hint = output_format({"kind": "text", "max_chars": 400})
    assert "at most 400 characters" in hint and "sentence" in hint


@pytest.fixture(scope="module")
def sharp(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TransformersBackend:
    """The tiny model with larger random weights (it rambles: every answer runs into its bound)."""
    target = build_sharp_model(tiny_model_dir, tmp_path_factory.mktemp("sharp-text"))
    return TransformersBackend({"path": str(target)})


def ask(i: int, constraint: Constraint, max_tokens: int) -> GenRequest:
    return GenRequest(messages=({"role": "user", "content": f"story {i}"},), constraint=constraint,
                      max_tokens=max_tokens, temperature=1.0, seed=i)


def test_transformers_never_accepts_text_cut_at_its_bound(sharp: TransformersBackend) -> None:
    results = sharp.generate([ask(i, Constraint(kind="text", max_chars=25), 60) for i in range(6)])
    for result in results:
        if result.ok:
            assert len(result.text) < 25 or ends_sentence(result.text), result.text
        else:
            assert str(result.error).startswith("truncated") and result.attempts == 3
    assert any(not r.ok for r in results)  # the random model rambles: truncations are reported


def test_transformers_counts_tokens_as_well_as_characters(sharp: TransformersBackend) -> None:
    results = sharp.generate([ask(i, Constraint(kind="text", max_chars=2000), 4) for i in range(4)])
    for result in results:  # 4 tokens never reach 2,000 characters: the token budget is the bound
        assert result.ok is ends_sentence(result.text) or not result.ok
        if not result.ok:
            assert "max_tokens=4" in str(result.error)


@pytest.fixture
def server() -> Iterator[Callable[..., Any]]:
    from test_backend_openai import Scripted

    started: list[Scripted] = []

    def start(*args: str) -> Scripted:
        started.append(Scripted(*args))
        return started[-1]

    yield start
    for s in started:
        s.close()


def test_openai_text_over_its_bound_ends_at_a_sentence_or_is_truncated(server: Callable[..., Any]) -> None:
    text = Constraint(kind="text", max_chars=40)
    request = GenRequest(messages=({"role": "user", "content": "q"},), constraint=text, max_tokens=100)
    backend = server("--reply", "The rent is 2,800 a month. The flat is near the park").backend(retries=0)
    result = backend.generate([request])[0]
    assert (result.ok, result.text, result.trimmed) == (True, "The rent is 2,800 a month.", 26)
    runaway = server("--reply", "word " * 30).backend(retries=1)
    result = runaway.generate([request])[0]
    assert not result.ok and str(result.error).startswith("truncated") and result.attempts == 2

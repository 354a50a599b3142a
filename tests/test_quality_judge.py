"""Model judges through the Backend contract: choice and expected methods, failures as nulls."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dialc_runtime.models.base import GenRequest, GenResult, ScoreRequest
from dialc_runtime.quality.judge import JudgeSpec, expected_score, judge_messages, judge_records

DIALOGUE: dict[str, Any] = {
    "id": "d1",
    "turns": [{"role": "customer", "text": "I need a flat near the subway."}],
}
SPEC = JudgeSpec(rubric="Is the answer helpful and faithful?", lo=1, hi=5, method="choice")


def record(answer: str, rid: str = "r1") -> dict[str, Any]:
    messages = [{"role": "user", "content": "Summarise the customer's needs."}]
    return {"id": rid, "dialogue_id": "d1", "messages": messages, "answer": answer, "ok": True}


class FakeJudge:
    """Scores 5 when the answer mentions the subway, 1 otherwise; fails on "BOOM"."""

    name = "fake"

    def __init__(self) -> None:
        self.gen: list[GenRequest] = []
        self.scored: list[ScoreRequest] = []

    @staticmethod
    def _grade(content: str) -> int:
        answer = content.split("Answer: ", 1)[1]
        return 5 if "subway" in answer else 1

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        self.gen += requests
        out = []
        for r in requests:
            content = r.messages[-1]["content"]
            if "BOOM" in content:
                out.append(GenResult(text="", ok=False, error="truncated", prompt_tokens=50))
                continue
            grade = str(self._grade(content))
            out.append(GenResult(grade, True, grade, prompt_tokens=50, completion_tokens=1))
        return out

    def loglikelihood(self, requests: list[ScoreRequest]) -> list[float]:
        self.scored += requests
        out = []
        for r in requests:
            content = r.messages[-1]["content"]
            if "BOOM" in content:
                out.append(float("nan"))
                continue
            out.append(-abs(int(r.continuation) - self._grade(content)))  # peaked on the grade
        return out


def test_spec_from_params() -> None:
    params = {"rubric": "r", "scale": [0, 10], "method": "expected", "min": 0.6}
    spec = JudgeSpec.from_params(params)
    assert (spec.lo, spec.hi, spec.method, spec.minimum) == (0, 10, "expected", 0.6)
    assert JudgeSpec.from_params({"scale": {"lo": 1, "hi": 3}}).values == [1, 2, 3]
    assert JudgeSpec.from_params({}).method == "expected"  # the compiler's default too
    with pytest.raises(ValueError):
        JudgeSpec.from_params({"scale": [3, 3]})
    with pytest.raises(ValueError):
        JudgeSpec.from_params({"method": "vibes"})


def test_prompt_shows_rubric_dialogue_instruction_and_answer() -> None:
    (user,) = judge_messages(SPEC, record("Near the subway."), DIALOGUE)
    assert user["role"] == "user"
    text = user["content"]
    parts = ("Is the answer helpful", "I need a flat", "Summarise the customer", "Near the subway.")
    assert all(part in text for part in parts)
    assert text.endswith(
        "Is the answer helpful and faithful? Rate from 1 (not at all) to 5 (perfectly). "
        "Reply with the number only."
    )


def test_dialogue_is_not_repeated_when_the_instruction_quotes_it() -> None:
    quoted = record("x")
    prompt = "customer: I need a flat near the subway.\n\nSummarise the customer's needs."
    quoted["messages"] = [{"role": "user", "content": prompt}]
    text = judge_messages(SPEC, quoted, DIALOGUE)[0]["content"]
    assert text.count("I need a flat near the subway.") == 1


def test_choice_method_constrains_to_the_scale_and_normalises() -> None:
    backend = FakeJudge()
    items = [(record("Near the subway, please."), DIALOGUE), (record("Pizza is tasty."), DIALOGUE)]
    verdicts, cost = judge_records(backend, SPEC, items, seeds=[7, 8])
    assert [v.score for v in verdicts] == [1.0, 0.0]
    assert [v.extra["raw"] for v in verdicts] == [5, 1]
    request = backend.gen[0]
    assert request.constraint.kind == "choice"
    assert request.constraint.options == ("1", "2", "3", "4", "5")
    assert request.temperature == 0.0 and [r.seed for r in backend.gen] == [7, 8]
    assert (cost.model_calls, cost.prompt_tokens, cost.completion_tokens) == (2, 100, 2)
    used = {"model_calls": 1, "prompt_tokens": 50, "completion_tokens": 1}
    assert verdicts[0].extra["cost"] == used


def test_expected_method_weights_scale_values_by_probability() -> None:
    spec = JudgeSpec(rubric="r", lo=1, hi=5, method="expected", minimum=0.5)
    backend = FakeJudge()
    items = [(record("By the subway."), DIALOGUE), (record("Pizza."), DIALOGUE)]
    verdicts, cost = judge_records(backend, spec, items)
    good, bad = verdicts
    assert good.score is not None and bad.score is not None
    assert good.score > 0.8 > 0.2 > bad.score
    assert (good.passed, bad.passed) == (True, False)
    assert [r.continuation for r in backend.scored[:5]] == ["1", "2", "3", "4", "5"]
    assert cost.model_calls == 10


def test_expected_score_is_the_mean_of_the_softmax() -> None:
    spec = JudgeSpec(rubric="", lo=1, hi=3)
    raw, probs = expected_score(spec, [math.log(0.25), math.log(0.25), math.log(0.5)])
    assert raw == pytest.approx(2.25)
    assert sum(probs.values()) == pytest.approx(1.0)
    assert spec.normalise(raw) == pytest.approx(0.625)


@pytest.mark.parametrize("method", ["choice", "expected"])
def test_judge_failures_are_nulls_not_zeros(method: str) -> None:
    spec = JudgeSpec(rubric="r", method=method)
    items = [(record("BOOM"), DIALOGUE), (record("subway"), DIALOGUE)]
    failed, ok = judge_records(FakeJudge(), spec, items)[0]
    assert failed.score is None and failed.passed is None
    assert failed.detail.startswith("judge failed")
    assert ok.score is not None and ok.score > 0.8


def test_a_backend_that_raises_fails_every_record_of_the_batch() -> None:
    class Broken(FakeJudge):
        def generate(self, requests: list[GenRequest]) -> list[GenResult]:
            raise RuntimeError("CUDA out of memory")

    verdicts, _ = judge_records(Broken(), SPEC, [(record("a"), DIALOGUE), (record("b"), None)])
    assert all(v.failed_to_score and "out of memory" in v.detail for v in verdicts)


def test_off_scale_output_is_a_failure() -> None:
    class Chatty(FakeJudge):
        def generate(self, requests: list[GenRequest]) -> list[GenResult]:
            return [GenResult("I'd say 4/5", True, "I'd say 4/5") for _ in requests]

    (verdict,), _ = judge_records(Chatty(), SPEC, [(record("a"), DIALOGUE)])
    assert verdict.failed_to_score and "not on the scale" in verdict.detail


REAL_CASES = [
    (
        [
            "Hello, I am looking for a two-bedroom apartment to rent near the subway.",
            "Sure. What is your monthly budget?",
            "At most 3000 yuan per month, and I want to move in next month.",
        ],
        "The customer wants to rent a two-bedroom apartment near the subway, with a budget of "
        "at most 3000 yuan per month, moving in next month.",
    ),
    (
        [
            "We want to buy a three-bedroom house with a garden in a quiet neighbourhood.",
            "What price range are you considering?",
            "Up to 4.5 million, and we need a good school nearby for our kids.",
        ],
        "The customer wants to buy a three-bedroom house with a garden in a quiet neighbourhood, "
        "up to 4.5 million, with a good school nearby.",
    ),
]


@pytest.mark.slow
def test_real_model_judge_scores_an_off_topic_answer_lower() -> None:
    """SmolLM2-135M is a weak judge; the expected score still separates a faithful summary from
    an off-topic one (constrained choice picks "1" for both: argmax is too coarse at this size)."""
    from dialc_runtime.models import get_backend

    backend = get_backend({"backend": "transformers", "path": "builtin:smollm2-135m-instruct"})
    spec = JudgeSpec.from_params(
        {"rubric": "Does the answer state the customer's requirements correctly and completely?",
         "scale": [1, 5], "method": "expected"}
    )  # fmt: skip
    off_topic = "Bananas are yellow fruits that grow in tropical countries."
    ask = [{"role": "user", "content": "Summarise the customer's housing requirements."}]
    items: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for n, (texts, good) in enumerate(REAL_CASES):
        roles = ["customer", "agent", "customer"]
        turns = [{"role": r, "text": t} for r, t in zip(roles, texts, strict=True)]
        dialogue: dict[str, Any] = {"id": f"d{n}", "turns": turns}
        for answer in (good, off_topic):
            items.append(({"id": "x", "messages": ask, "answer": answer, "ok": True}, dialogue))
    verdicts, cost = judge_records(backend, spec, items)
    scores = [v.score for v in verdicts]
    assert all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    for better, worse in zip(scores[::2], scores[1::2], strict=True):
        assert better > worse  # type: ignore[operator]
    assert cost.model_calls == 5 * len(items)

"""(labelled records, dialogues, a Backend) → Verdicts from a model judge: rubric, scale 1..N."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dialc_runtime.errors import StepFailed
from dialc_runtime.models.base import Backend, Constraint, GenRequest, Message, ScoreRequest
from dialc_runtime.quality.verdict import Verdict

MAX_DIALOGUE_CHARS = 4000  # keeps the judge prompt inside a small model's context
MAX_ANSWER_CHARS = 2000


@dataclass(frozen=True)
class JudgeSpec:
    """What a judge dimension asks: rubric, integer scale lo..hi, scoring method, pass mark."""

    rubric: str
    lo: int = 1
    hi: int = 5
    method: str = "expected"  # "expected": E[score] from scale-token probabilities; "choice":
    # constrained decoding of one number (coarse on small models: argmax is nearly constant)
    minimum: float | None = None  # pass mark on the normalised 0..1 score; None = no mark
    max_tokens: int = 4  # a scale number is one or two tokens
    anchors: tuple[str, str] = ("not at all", "perfectly")  # what the ends of the scale mean

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> JudgeSpec:
        scale = params.get("scale", [params.get("lo", 1), params.get("hi", 5)])
        lo, hi = (scale["lo"], scale["hi"]) if isinstance(scale, dict) else scale
        if int(hi) <= int(lo):
            raise ValueError(f"judge scale {lo}..{hi} is empty")
        method = str(params.get("method", "expected"))
        if method not in ("choice", "expected"):
            raise ValueError(f"judge method {method!r} is not 'choice' or 'expected'")
        minimum = params.get("min")
        low, high = params.get("anchors") or cls.anchors
        return cls(
            rubric=str(params.get("rubric", "")),
            lo=int(lo),
            hi=int(hi),
            method=method,
            minimum=None if minimum is None else float(minimum),
            anchors=(str(low), str(high)),
        )

    @property
    def values(self) -> list[int]:
        return list(range(self.lo, self.hi + 1))

    def normalise(self, raw: float) -> float:
        return round((raw - self.lo) / (self.hi - self.lo), 4)

    def verdict(self, raw: float, detail: str, cost: dict[str, int]) -> Verdict:
        score = self.normalise(raw)
        passed = True if self.minimum is None else score >= self.minimum
        return Verdict(score, passed, detail, {"raw": round(raw, 4), "cost": cost})


@dataclass
class Cost:
    """Model usage of one judge run, for ctx.account and the metrics."""

    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    per_record: list[dict[str, int]] = field(default_factory=list)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def instruction_of(record: dict[str, Any]) -> str:
    """The production prompt the labeller answered: its last user message."""
    users = [m.get("content", "") for m in record.get("messages", []) if m.get("role") == "user"]
    return users[-1] if users else ""


def judge_messages(
    spec: JudgeSpec, record: dict[str, Any], dialogue: dict[str, Any] | None
) -> tuple[Message, ...]:
    """The judge prompt: dialogue (unless the instruction quotes it), instruction, answer, then
    the rubric and the anchored scale last, where even a small model attends (tried on SmolLM2)."""
    instruction = instruction_of(record)
    turns = (dialogue or {}).get("turns", [])
    quoted = bool(turns) and str(turns[0].get("text", "")) in instruction
    parts = []
    if turns and not quoted:
        lines = "\n".join(f"{t.get('role', '?')}: {t.get('text', '')}" for t in turns)
        parts.append("Dialogue:\n" + _clip(lines, MAX_DIALOGUE_CHARS))
    parts.append("Instruction: " + _clip(instruction, MAX_DIALOGUE_CHARS + 1000))
    parts.append("Answer: " + _clip(str(record.get("answer") or ""), MAX_ANSWER_CHARS))
    (low, high), rubric = spec.anchors, spec.rubric.strip()
    scale = f"Rate from {spec.lo} ({low}) to {spec.hi} ({high}). Reply with the number only."
    parts.append(f"{rubric} {scale}" if rubric else scale)
    return ({"role": "user", "content": "\n\n".join(parts)},)


def judge_choice(
    backend: Backend, spec: JudgeSpec, prompts: list[tuple[Message, ...]], seeds: list[int]
) -> tuple[list[Verdict], Cost]:
    """One constrained generation per record: the model picks one of the scale's numbers."""
    options = tuple(str(v) for v in spec.values)
    requests = [
        GenRequest(messages=p, constraint=Constraint(kind="choice", options=options),
                   max_tokens=spec.max_tokens, temperature=0.0, seed=s)
        for p, s in zip(prompts, seeds, strict=True)
    ]  # fmt: skip
    try:
        results = backend.generate(requests)
    except StepFailed:  # the server is down or refuses the key: no verdict at all, the step fails
        raise
    except Exception as exc:  # a broken judge is recorded per record, not fatal to the step
        return [Verdict.failure(f"judge error: {exc}") for _ in prompts], Cost(len(prompts))
    lost = [r for r in results if getattr(r, "transport", False)]
    if lost:  # a server error is no verdict: never stored as one (the step fails, a re-run asks again)
        raise StepFailed(f"judge: {len(lost)} of {len(results)} requests got no answer ({lost[0].error}); the "
                         "scores so far are kept, and `dialc run` again asks only for the rest")
    if len(results) != len(requests):
        why = f"judge error: {len(results)} results for {len(requests)} requests"
        return [Verdict.failure(why) for _ in prompts], Cost(len(prompts))
    cost = Cost(len(requests))
    verdicts = []
    for result in results:
        used = {"model_calls": 1, "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens}  # fmt: skip
        cost.prompt_tokens += result.prompt_tokens
        cost.completion_tokens += result.completion_tokens
        cost.per_record.append(used)
        raw = str(result.value if result.value is not None else result.text).strip()
        if not result.ok or raw not in options:
            why = result.error or f"output {result.text[:40]!r} is not on the scale"
            verdicts.append(Verdict.failure(f"judge failed: {why}", cost=used))
        else:
            verdicts.append(spec.verdict(float(raw), f"judged {raw} on {spec.lo}..{spec.hi}", used))
    return verdicts, cost


def expected_score(spec: JudgeSpec, logprobs: list[float]) -> tuple[float, dict[int, float]]:
    """Softmax over the scale values' log-likelihoods → (expected raw score, distribution)."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    probs = {v: w / total for v, w in zip(spec.values, weights, strict=True)}
    return sum(v * p for v, p in probs.items()), probs


def judge_expected(
    backend: Backend, spec: JudgeSpec, prompts: list[tuple[Message, ...]]
) -> tuple[list[Verdict], Cost]:
    """Probability-weighted score: one log-likelihood per scale value, softmax, expectation."""
    values = spec.values
    requests = [ScoreRequest(continuation=str(v), messages=p) for p in prompts for v in values]
    cost = Cost(len(requests))
    try:
        scores = backend.loglikelihood(requests)
    except StepFailed:  # the server is down, refuses the key or cannot score: no verdict, the step fails
        raise
    except Exception as exc:  # recorded as a failure of each record
        return [Verdict.failure(f"judge error: {exc}") for _ in prompts], cost
    scored = int(getattr(backend, "last_scored_tokens", 0))  # tokens read, when the backend says
    cost.prompt_tokens += scored
    verdicts = []
    for i in range(len(prompts)):
        share = scored // len(prompts) if prompts else 0
        used = {"model_calls": len(values), "prompt_tokens": share, "completion_tokens": 0}
        cost.per_record.append(used)
        row = [float(x) for x in scores[i * len(values) : (i + 1) * len(values)]]
        if len(row) != len(values) or not all(math.isfinite(x) for x in row):
            verdicts.append(Verdict.failure(f"judge failed: log-likelihoods {row}", cost=used))
            continue
        raw, probs = expected_score(spec, row)
        best = max(probs, key=lambda v: probs[v])
        detail = f"expected {raw:.2f} on {spec.lo}..{spec.hi} (p({best})={probs[best]:.2f})"
        verdicts.append(spec.verdict(raw, detail, used))
    return verdicts, cost


def judge_records(
    backend: Backend,
    spec: JudgeSpec,
    items: Sequence[tuple[dict[str, Any], dict[str, Any] | None]],
    seeds: list[int] | None = None,
) -> tuple[list[Verdict], Cost]:
    """Judge a batch of (labelled record, its dialogue) pairs with the spec's method."""
    prompts = [judge_messages(spec, record, dialogue) for record, dialogue in items]
    if spec.method == "expected":
        return judge_expected(backend, spec, prompts)
    return judge_choice(backend, spec, prompts, seeds or [0] * len(prompts))

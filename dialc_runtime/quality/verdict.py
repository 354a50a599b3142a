"""One dimension's judgement of one record → the `score.*` record {id, score, passed, detail}."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def not_applicable(verdict: Mapping[str, Any]) -> bool:
    """Whether a stored verdict ({score, passed, …}) says its dimension does not apply to the record."""
    return verdict.get("score") is None and verdict.get("passed") is not None


@dataclass(frozen=True, slots=True)
class Verdict:
    """score in 0..1; passed None + score None = the check itself failed (not a zero).

    score None with passed True/False means "not applicable" (e.g. grounding a choice label):
    the aggregate skips it and it is not counted as a failure.
    """

    score: float | None
    passed: bool | None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. duplicate_of, cost

    @classmethod
    def failure(cls, detail: str, **extra: Any) -> Verdict:
        """The dimension could not be assessed (judge error, missing input)."""
        return cls(None, None, detail, dict(extra))

    @classmethod
    def not_applicable(cls, detail: str) -> Verdict:
        return cls(None, True, f"n/a: {detail}")

    @classmethod
    def threshold(cls, score: float, minimum: float, detail: str = "") -> Verdict:
        """Pass when score >= minimum; the score is clamped to 0..1 and rounded (stable output)."""
        score = round(min(1.0, max(0.0, score)), 4)
        return cls(score, score >= minimum, detail)

    @classmethod
    def check(cls, ok: bool, detail: str = "") -> Verdict:
        """A yes/no rule: 1.0 and passed, or 0.0 and failed."""
        return cls(1.0 if ok else 0.0, ok, detail)

    @property
    def failed_to_score(self) -> bool:
        return self.score is None and self.passed is None

    def record(self, record_id: str) -> dict[str, Any]:
        """The record a score step emits."""
        out: dict[str, Any] = {
            "id": record_id,
            "score": self.score,
            "passed": self.passed,
            "detail": self.detail,
        }
        out.update(self.extra)
        return out

"""The backend contract: a list of requests in, a list of results out, in the same order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class Constraint:
    """What the output must look like; validated again after decoding, whatever the backend."""

    kind: Literal["text", "json", "regex", "choice"] = "text"
    schema: dict[str, Any] | None = None  # kind == "json": a JSON schema (bounded, extra="forbid")
    pattern: str | None = None  # kind == "regex"
    options: tuple[str, ...] = ()  # kind == "choice"
    max_chars: int | None = None  # kind == "text": bound on free text

    @classmethod
    def from_dict(cls, output: Mapping[str, Any]) -> Constraint:
        """The constraint of a task's output declaration (the plan's and the records' dict form)."""
        return cls(kind=output.get("kind", "text"), schema=output.get("schema"), pattern=output.get("pattern"),
                   options=tuple(output.get("options") or ()), max_chars=output.get("max_chars"))


@dataclass(frozen=True)
class GenRequest:
    """One generation: chat messages (the backend applies the chat template) and decoding settings."""

    messages: tuple[Message, ...]
    constraint: Constraint = field(default_factory=Constraint)
    max_tokens: int = 256  # new tokens at most
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0  # per-request seed: the result must not depend on batch composition


@dataclass
class GenResult:
    """The decoded text, the parsed value when constrained, and whether it passed validation."""

    text: str
    ok: bool  # passed validation against the constraint
    value: Any = None  # parsed JSON / chosen option / matched text
    error: str | None = None  # why it failed validation (truncated, invalid JSON, schema violation …)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1  # decoding attempts used (retries on invalid output)
    trimmed: int = 0  # bounded text at its bound: characters dropped after its last sentence end
    # no answer at all: every attempt failed in transport (connection, HTTP 5xx, timeout, no JSON, no
    # choices); such a result is never stored as a final answer (models.generation)
    transport: bool = False
    throttled: int = 0  # HTTP 429 answers this request waited out (Retry-After) on its way


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch: the requests still in flight were abandoned; `results` holds, in request
    order, those that had finished (None for the others), so the step can keep them before it stops."""

    def __init__(self, results: list[GenResult | None]) -> None:
        super().__init__("interrupted")
        self.results = results


@dataclass(frozen=True)
class ScoreRequest:
    """Log-likelihood of `continuation` given the chat `messages` (or raw `prefix` when messages is empty)."""

    continuation: str
    messages: tuple[Message, ...] = ()
    prefix: str = ""


class Backend(Protocol):
    """Every model backend implements these two batch calls."""

    name: str

    def generate(self, requests: list[GenRequest]) -> list[GenResult]: ...

    def loglikelihood(self, requests: list[ScoreRequest]) -> list[float]: ...

"""Step outcomes → run_results.json (versioned), per-step status rows and spec-located messages."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

RESULTS_FORMAT = 1  # bump when the run_results.json layout changes incompatibly

# ok: ran and finished; cached: reused, zero work; failed: raised (or could not start);
# blocked: stopped at a gate (human review, failed expectation), the gate itself or a step below
# it (`blocked_by` names the gate); skipped: an upstream step failed; pending: would run (dry runs)
Status = Literal["ok", "cached", "failed", "blocked", "skipped", "pending"]
State = Literal["done", "cached", "stale", "pending"]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class StepResult:
    """One step's outcome in a run."""

    id: str
    kind: str
    status: Status
    key: str | None = None  # cache key (None when it could not be computed)
    started: str | None = None  # ISO 8601, UTC
    finished: str | None = None
    seconds: float = 0.0
    records: int = 0
    cache_hit: bool = False
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    span: dict[str, Any] | None = None  # dialc.plan.Span as a dict: file, line, col, …
    internal: bool = False  # failed with an unexpected exception (a bug), not StepFailed
    log: str | None = None  # traceback file, relative to the run dir
    warnings: list[str] = field(default_factory=list)
    estimate: dict[str, Any] | None = None  # dry runs: {model_calls, tokens} from estimate()
    blocked_by: str | None = None  # below a gate: the blocked step that stopped it
    # what making the step's output cost when it was made (this run for ok steps, an earlier one for
    # cached steps): seconds, model_calls, prompt_tokens, completion_tokens, finished; None if unknown
    made: dict[str, Any] | None = None

    def location(self) -> str:
        """`file:line:col` of the step in its spec, or the step id when it has no span."""
        if not self.span:
            return self.id
        return f"{self.span['file']}:{self.span['line']}:{self.span['col']}"

    def diagnostic(self) -> str | None:
        """The compiler-style line for a failed or blocked step, else None."""
        if self.status == "failed" and self.internal:
            tail = f" (traceback in {self.log})" if self.log else ""
            where = f'{self.location()}: error: internal error in step "{self.id}"'
            return f"{where}: {self.message}{tail}"
        if self.status == "failed":
            return f'{self.location()}: error: step "{self.id}" failed: {self.message}'
        if self.status == "blocked" and not self.blocked_by:  # a step below a gate: the gate says it
            return f'{self.location()}: warning: step "{self.id}" blocked: {self.message}'
        return None


@dataclass
class StepStatus:
    """`dialc status`: where a step stands without running anything."""

    id: str
    state: State  # done: its latest output is current; cached: an older stored output is
    # current again (reused, no work); stale: ran before with other inputs/params/files/code;
    # pending: never completed
    key: str | None = None
    records: int = 0  # records stored under the current key (a partial count means it resumes)
    last_status: str | None = None  # the step's status in the last run_results.json
    message: str = ""


@dataclass
class RunResults:
    """A whole run: what ran, what was reused, what failed, and the cost."""

    pipeline: str
    spec: str
    run_dir: str
    started: str
    finished: str = ""
    seconds: float = 0.0
    dry_run: bool = False
    selected: list[str] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    format: int = RESULTS_FORMAT

    @property
    def ok(self) -> bool:
        """No step failed or was skipped because of a failure (blocked steps, gates and those below
        them, are not errors)."""
        return not any(s.status in ("failed", "skipped") for s in self.steps)

    def step(self, step_id: str) -> StepResult:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def by_status(self, status: Status) -> list[str]:
        return [s.id for s in self.steps if s.status == status]

    def totals(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for s in self.steps:
            counts[s.status] = counts.get(s.status, 0) + 1
        out: dict[str, Any] = {
            "steps": counts,
            "model_calls": sum(s.model_calls for s in self.steps),
            "prompt_tokens": sum(s.prompt_tokens for s in self.steps),
            "completion_tokens": sum(s.completion_tokens for s in self.steps),
        }
        out["made"] = made_totals(self.steps)
        if self.dry_run:
            est = [s.estimate or {} for s in self.steps]
            out["estimate"] = {
                "model_calls": sum(int(e.get("model_calls", 0)) for e in est),
                "tokens": sum(int(e.get("tokens", 0)) for e in est),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["totals"] = self.totals()
        return data

    def write(self, path: Path) -> None:
        """Write atomically (a reader never sees half a file), with every API key redacted."""
        from dialc_runtime.secrets import redact_value

        text = json.dumps(redact_value(self.to_dict()), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        write_atomic(path, text)


def write_atomic(path: Path, text: str) -> None:
    """Write a text file so that a reader sees the old or the new content, never a mix: a temporary file of
    its own (two writers never share one) in the same folder, then one rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


USAGE = ("seconds", "model_calls", "prompt_tokens", "completion_tokens")


def made_totals(steps: list[StepResult]) -> dict[str, Any]:
    """What the outputs this run used (made now or reused from the cache) cost when they were made."""
    made = [s.made or (asdict(s) if s.status == "ok" else {}) for s in steps if s.status in ("ok", "cached")]
    out: dict[str, Any] = {k: sum(m.get(k) or 0 for m in made) for k in USAGE}
    out["seconds"] = round(out["seconds"], 3)
    out["tokens"] = out["prompt_tokens"] + out["completion_tokens"]
    out["unknown"] = sum(1 for s in steps if s.status == "cached" and not s.made)  # stored before costs were
    return out


def load_results(path: Path) -> RunResults:
    """Read a run_results.json written by this format version."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != RESULTS_FORMAT:
        raise ValueError(
            f"{path}: run results format {data.get('format')}, expected {RESULTS_FORMAT}"
        )
    names = {f.name for f in fields(StepResult)}
    steps = [StepResult(**{k: v for k, v in s.items() if k in names}) for s in data["steps"]]
    keep = {f.name for f in fields(RunResults)} - {"steps"}
    return RunResults(steps=steps, **{k: v for k, v in data.items() if k in keep})

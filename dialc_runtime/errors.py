"""Runtime error types: a step's user-facing failure, selection mistakes, unknown step kinds."""

from __future__ import annotations


class StepFailed(Exception):
    """A step's user-facing failure: reported at the step's spec span, not as a bug."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SelectionError(ValueError):
    """A `--select` / `--recompute` selector that names no step, or names several."""


class UnknownStepKind(LookupError):
    """The registry has no implementation for a step kind."""

    def __init__(self, kind: str, detail: str = "") -> None:
        message = f"no implementation for step kind {kind!r}"
        super().__init__(f"{message} ({detail})" if detail else message)
        self.kind = kind


class DuplicateRecord(Exception):
    """A step emitted one record key twice in an attempt (two records would collapse into one)."""


class RunRefused(Exception):
    """A run that cannot start: the command line says why and exits 2 (no traceback, nothing run)."""


class RunLocked(RunRefused):
    """Another dialc process runs in the same run directory (its PID is in the message)."""


class StoreDamaged(RunRefused):
    """store.sqlite cannot be trusted (corrupt pages, truncated, not a database): `--rebuild-store` helps."""

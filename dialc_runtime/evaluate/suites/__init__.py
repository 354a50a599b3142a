"""Built-in evaluation suites: packaged probe files and the readers that turn them into items."""

from __future__ import annotations

from pathlib import Path


def general_probe_path() -> Path:
    """The packaged general-capability probe (`builtin:general-probe`), a jsonl file."""
    return Path(__file__).resolve().with_name("general_probe.jsonl")

"""Model-authoring steps' shared plumbing: a JSON-constrained request, and batched generation with progress."""

from __future__ import annotations

from typing import Any

from dialc_runtime.models.base import Constraint, GenRequest, GenResult


def json_request(messages: list[dict[str, str]] | tuple[dict[str, str], ...], schema: dict[str, Any],
                 model: dict[str, Any], seed: int) -> GenRequest:
    """A request answered under `schema`, with the model's decoding settings."""
    return GenRequest(messages=tuple(messages), constraint=Constraint(kind="json", schema=schema),
                      max_tokens=int(model.get("max_tokens", 256)),
                      temperature=float(model.get("temperature", 0.7)), seed=seed)


def generate_batched(ctx: Any, model: dict[str, Any], requests: list[GenRequest], what: str) -> list[GenResult]:
    """Results in request order, decoded `batch_size` at a time behind one progress bar."""
    backend = ctx.backend(model)
    batch = int(model.get("batch_size", 8))
    results: list[GenResult] = []
    with ctx.progress(len(requests), what) as bar:
        for start in range(0, len(requests), batch):
            chunk = requests[start:start + batch]
            results.extend(backend.generate(chunk))
            bar.advance(len(chunk))
    return results

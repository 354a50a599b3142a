"""Model-authoring steps' shared plumbing: a JSON-constrained request, and batched generation with progress."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dialc.plan import ModelSpec
from dialc_runtime.models.base import Constraint, GenRequest, GenResult


def json_request(messages: list[dict[str, str]] | tuple[dict[str, str], ...], schema: dict[str, Any],
                 model: ModelSpec, seed: int) -> GenRequest:
    """A request answered under `schema`, with the model's decoding settings (the spec's, defaults included)."""
    return GenRequest(messages=tuple(messages), constraint=Constraint(kind="json", schema=schema),
                      max_tokens=model.max_tokens, temperature=model.temperature, top_p=model.top_p, seed=seed)


def generate_each(ctx: Any, model: ModelSpec, requests: list[GenRequest], what: str,
                  done: int = 0) -> Iterator[tuple[int, GenResult]]:
    """(request index, result) in request order, decoded `batch_size` at a time behind one progress
    bar, each batch's results as soon as it is decoded (so a step can commit them durably); `done`
    counts the work an interrupted earlier attempt finished, shown on the bar as done."""
    backend = ctx.backend(model)
    batch = model.batch_size
    with ctx.progress(done + len(requests), what) as bar:
        bar.advance(done)
        for start in range(0, len(requests), batch):
            chunk = requests[start:start + batch]
            results = backend.generate(chunk)
            bar.advance(len(chunk))
            yield from enumerate(results, start)


def generate_batched(ctx: Any, model: ModelSpec, requests: list[GenRequest], what: str) -> list[GenResult]:
    """Every result, in request order (see generate_each)."""
    return [result for _, result in generate_each(ctx, model, requests, what)]

"""Model-authoring steps' shared plumbing: a JSON-constrained request, and batched generation with progress."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dialc.plan import ModelSpec
from dialc_runtime.errors import StepFailed
from dialc_runtime.models.base import BatchInterrupted, Constraint, GenRequest, GenResult


def json_request(messages: list[dict[str, str]] | tuple[dict[str, str], ...], schema: dict[str, Any],
                 model: ModelSpec, seed: int) -> GenRequest:
    """A request answered under `schema`, with the model's decoding settings (the spec's, defaults included)."""
    return GenRequest(messages=tuple(messages), constraint=Constraint(kind="json", schema=schema),
                      max_tokens=model.max_tokens, temperature=model.temperature, top_p=model.top_p, seed=seed)


def generate_each(ctx: Any, model: ModelSpec, requests: list[GenRequest], what: str,
                  done: int = 0, strict: bool = False) -> Iterator[tuple[int, GenResult]]:
    """(request index, result) in request order, decoded `batch_size` at a time behind one progress
    bar, each batch's results as soon as it is decoded (so a step can commit them durably); `done`
    counts the work an interrupted earlier attempt finished, shown on the bar as done.

    A request that got no answer at all (`result.transport`: connection, HTTP 5xx, timeout …) is never
    yielded, so never stored as a final answer. A batch in which every request failed so stops the step
    at once (the server is down); more than `model.max_failed` of the requests failing fails it at the
    end; fewer are left out of this attempt's output for `ctx.left_out` (the next run asks for them
    again); with `strict`, any request left without an answer fails the step. Either way what was
    answered is kept, and a re-run asks only for the rest. On Ctrl-C the requests that finished are
    yielded before the interrupt goes on."""
    backend = ctx.backend(model)
    failed: list[GenResult] = []
    with ctx.progress(done + len(requests), what) as bar:
        bar.advance(done)
        for start in range(0, len(requests), model.batch_size):
            chunk = requests[start:start + model.batch_size]
            try:
                results = backend.generate(chunk)
            except BatchInterrupted as stop:
                yield from ((start + i, r) for i, r in enumerate(stop.results) if r is not None and not r.transport)
                raise
            bar.advance(len(chunk))
            lost = [r for r in results if r.transport]
            if lost and len(lost) == len(chunk):
                raise StepFailed(f"every request of a batch of {len(chunk)} got no answer ({lost[0].error}): the "
                                 f"server seems down; {start - len(failed)} answers so far are kept, and `dialc run` "
                                 "again asks only for the rest")
            failed += lost
            yield from ((start + i, r) for i, r in enumerate(results) if not r.transport)
    _settle(ctx, model, failed, len(requests), strict)


def _settle(ctx: Any, model: ModelSpec, failed: list[GenResult], total: int, strict: bool) -> None:
    """Fail above `max_failed` (or on any failure when strict); below it, tell the context how many
    answers this output lacks."""
    if not failed:
        return
    share = len(failed) / total
    why = f"{len(failed)} of {total} requests got no answer ({failed[0].error})"
    if strict or share > model.max_failed:
        limit = "this step needs every answer" if strict else (
            f"{share:.0%} is above the model's max_failed = {model.max_failed:g}")
        raise StepFailed(f"{why}: {limit}; the answers are kept, and `dialc run` again asks only for the rest")
    left_out = getattr(ctx, "left_out", None)
    if left_out is not None:
        left_out(len(failed), f"{why}: left out of this output for now; the next `dialc run` asks for them again")


def generate_batched(ctx: Any, model: ModelSpec, requests: list[GenRequest], what: str) -> list[GenResult]:
    """Every result, in request order (see generate_each); a request left without an answer (a server
    error) fails the step, since the caller needs every result."""
    return [result for _, result in generate_each(ctx, model, requests, what, strict=True)]

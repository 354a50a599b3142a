"""Model-authoring steps' shared plumbing: a JSON-constrained request, and batched generation with progress."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from dialc.plan import ModelSpec
from dialc_runtime.errors import StepFailed
from dialc_runtime.models.base import BatchInterrupted, Constraint, GenRequest, GenResult


def json_request(messages: list[dict[str, str]] | tuple[dict[str, str], ...], schema: dict[str, Any],
                 model: ModelSpec, seed: int) -> GenRequest:
    """A request answered under `schema`, with the model's decoding settings (the spec's, defaults included)."""
    return GenRequest(messages=tuple(messages), constraint=Constraint(kind="json", schema=schema),
                      max_tokens=model.max_tokens, temperature=model.temperature, top_p=model.top_p, seed=seed)


CHUNK = 2048  # requests taken at a time from an iterable of requests (a step streams its records)


def _chunks(requests: Iterable[GenRequest], size: int = CHUNK) -> Iterator[list[GenRequest]]:
    it = iter(requests)
    while chunk := list(islice(it, size)):
        yield chunk


def generate_each(ctx: Any, model: ModelSpec, requests: Iterable[GenRequest], what: str,
                  done: int = 0, strict: bool = False, total: int | None = None) -> Iterator[tuple[int, GenResult]]:
    """(request index, result) in request order behind one progress bar, each result as soon as it is
    decoded (so a step can commit them durably); `done` counts the work an interrupted earlier attempt
    finished, shown on the bar as done. A backend that streams (openai) keeps `concurrency` requests in
    flight, a sliding window; the others decode `batch_size` at a time.

    A request that got no answer at all (`result.transport`: connection, HTTP 5xx, timeout …) is never
    yielded, so never stored as a final answer. A window's worth of requests in a row (a whole batch)
    failing so stops the step at once (the server is down); more than `model.max_failed` of the requests
    failing fails it at the end; fewer are left out of this attempt's output for `ctx.left_out` (the next
    run asks for them again); with `strict`, any request left without an answer fails the step. Either way
    what was answered is kept, and a re-run asks only for the rest. On Ctrl-C the requests that finished
    are yielded before the interrupt goes on (then, out of order).

    `requests` may be any iterable (a step streaming its input records), taken CHUNK at a time; `total`
    is then how many it holds (for the progress bar and the failure share)."""
    backend = ctx.backend(model)
    failed: list[GenResult] = []
    count = len(requests) if total is None else total  # type: ignore[arg-type]  # a list when no total
    streams = callable(getattr(getattr(backend, "inner", backend), "generate_stream", None))
    with ctx.progress(done + count, what) as bar:
        bar.advance(done)
        offset = 0
        for chunk in _chunks(requests, max(CHUNK, int(getattr(getattr(backend, "inner", backend), "page", 0)))):
            if streams:
                window = int(getattr(backend, "concurrency", model.batch_size))
                answers = _streamed(backend, chunk, failed, window, bar.advance)
            else:
                answers = _batched(backend, chunk, failed, model.batch_size, bar.advance)
            yield from ((offset + index, result) for index, result in answers)
            offset += len(chunk)
    _settle(ctx, model, failed, max(count, offset), strict)


def _streamed(backend: Any, requests: list[GenRequest], failed: list[GenResult], window: int,
              advance: Callable[[int], None]) -> Iterator[tuple[int, GenResult]]:
    """A streaming backend's answers; a window's worth of transport failures in a row: the server is down."""
    run = 0  # transport failures in a row
    for index, result in backend.generate_stream(requests):
        advance(1)
        if not result.transport:
            run = 0
            yield index, result
            continue
        failed.append(result)
        run += 1
        if run >= min(window, len(requests)):
            raise StepFailed(f"every request of a batch of {run} in flight got no answer ({result.error}): the "
                             "server seems down; "
                             f"{index + 1 - len(failed)} answers so far are kept, and `dialc run` again asks "
                             "only for the rest")


def _batched(backend: Any, requests: list[GenRequest], failed: list[GenResult], size: int,
             advance: Callable[[int], None]) -> Iterator[tuple[int, GenResult]]:
    """A batch backend's answers, `size` at a time; a batch in which every request failed: the server is down."""
    for start in range(0, len(requests), size):
        chunk = requests[start:start + size]
        try:
            results = backend.generate(chunk)
        except BatchInterrupted as stop:
            yield from ((start + i, r) for i, r in enumerate(stop.results) if r is not None and not r.transport)
            raise
        advance(len(chunk))
        lost = [r for r in results if r.transport]
        if lost and len(lost) == len(chunk):
            raise StepFailed(f"every request of a batch of {len(chunk)} got no answer ({lost[0].error}): the "
                             f"server seems down; {start - len(failed)} answers so far are kept, and `dialc run` "
                             "again asks only for the rest")
        failed += lost
        yield from ((start + i, r) for i, r in enumerate(results) if not r.transport)


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

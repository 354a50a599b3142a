"""A CPU-bound fake step kind for tests/test_offload.py: importable by name, as a child process needs it."""

from __future__ import annotations

import os
import signal
import time
from contextlib import nullcontext
from pathlib import Path

from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed

CPU_BOUND = True
VERSION = "1"


def run(ctx: StepContext) -> StepOutput:
    """Each input record re-keyed with the step's salt; `then` says how the step ends after `after` records:
    done, StepFailed, a bug, the process killed, or waiting (`wait` seconds per record) to be interrupted;
    `bar = false`: no progress bar (a child that sends nothing to the run)."""
    (source,) = ctx.step.input_ids
    then, after = ctx.params.get("then", "done"), int(ctx.params.get("after", 10**9))
    emitted = 0
    progress = ctx.progress(ctx.count(source), "copying") if ctx.params.get("bar", True) else nullcontext(_NoBar())
    with progress as bar:
        for key, record in ctx.items(source):
            if emitted == after:
                ctx.flush()
                _end(ctx, then)
            if key not in ctx.done:
                ctx.emit(key, {"v": f"{record['v']}/{ctx.params.get('salt', '')}"})
                emitted += 1
            time.sleep(float(ctx.params.get("wait", 0)))
            bar.advance()
    ctx.warn(f"copied {emitted} records")
    ctx.account(model_calls=0, prompt_tokens=emitted)
    return StepOutput(metrics={"pid": os.getpid(), "emitted": emitted})


class _NoBar:
    def advance(self, n: int = 1) -> None:
        pass


def _end(ctx: StepContext, then: str) -> None:
    if then == "fail":
        raise StepFailed("the data is bad here")
    if then == "bug":
        raise ZeroDivisionError("division by zero in the step")
    if then == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if then == "mark":  # tell the test the records so far are committed (and this process), then go on slowly
        Path(str(ctx.params.get("marker"))).write_text(str(os.getpid()), encoding="utf-8")

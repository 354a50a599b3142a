"""A CPU-bound step run in a child process while other steps run (`dialc run --jobs N`, N > 1).

Steps running at once in threads of one process share one core (Python's GIL); a step that calls no model
and works through many records (a rule or dedup dimension beside a judge) therefore runs in a child process
of its own, on another core. The child opens its own connection to the run's store and writes the records
(one transaction per batch, as in this process); this process keeps the step's bookkeeping (cache key,
completion, lineage), shows the child's progress bars and warnings, and turns the child's end into the same
outcomes as a step run here: ok, StepFailed, an internal error with its traceback, or interrupted (Ctrl-C),
with every record written so far kept. A child that dies without a word (killed) fails the step; the next
run resumes it. A child never outlives the run: on Linux the kernel kills it when the run's process dies
(kill -9 included); elsewhere the closed pipe stops it at its next message.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import os
import signal
import sqlite3
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any

from dialc_runtime.engine.context import BackendPool, StepContext, StepOutput
from dialc_runtime.engine.schedule import model_resources
from dialc_runtime.engine.store import Store
from dialc_runtime.errors import StepFailed

if TYPE_CHECKING:
    from dialc.plan import Plan, Step

OFFLOAD_MIN_RECORDS = 2_000  # below this, a child's start (~0.4 s) may cost more than running beside the others saves
POLL_S = 0.2  # the waiting thread wakes this often, so an interrupt reaches it at once
SEND_EVERY_S = 0.1  # a child's progress is sent at most this often
STOP_WAIT_S = 30.0  # how long an interrupted child may take to commit what it has


class ChildFailed(Exception):
    """An unexpected exception in the child: its type and message, and the child's traceback for the log."""

    def __init__(self, summary: str, trace: str) -> None:
        super().__init__(summary)
        self.summary, self.trace = summary, trace


def offloads(module: ModuleType | Any, step: Step, ctx: StepContext[Any], jobs: int) -> bool:
    """Whether to run this attempt in a child: steps may run at once, the step module says it is CPU-bound,
    the step calls no model, and its inputs hold enough records to repay the child's start."""
    if jobs <= 1 or not getattr(module, "CPU_BOUND", False) or model_resources(step):
        return False
    if not isinstance(getattr(module, "__name__", None), str):
        return False
    return sum(ctx.count(d) for d in step.input_ids) >= OFFLOAD_MIN_RECORDS


@dataclass(frozen=True)
class _Task:
    """What the child needs to rebuild the step's context."""

    module: str
    step: Step
    plan: Plan
    key: str
    seed: int
    input_keys: dict[str, str]
    run_dir: Path
    parent: int  # the run's process id


def run_in_child(module: ModuleType | Any, ctx: StepContext[Any]) -> StepOutput:
    """Run `module.run` for `ctx`'s attempt in a child process; returns its StepOutput with ctx's usage,
    warnings and missing count updated as if it had run here."""
    task = _Task(module.__name__, ctx.step, ctx.plan, ctx.key, ctx.seed, dict(ctx._input_keys), ctx.run_dir,
                 os.getpid())
    spawn = multiprocessing.get_context("spawn")  # no fork: this process has threads (other steps, bars)
    receive, send = spawn.Pipe(duplex=False)
    child = spawn.Process(target=_child_main, args=(task, send), name=f"dialc {ctx.step.id}", daemon=True)
    child.start()
    send.close()
    bars = _Bars(ctx)
    try:
        return _outcome(_wait(child, receive, ctx, bars), ctx)
    except KeyboardInterrupt:  # Ctrl-C here (or the scheduler stopping this step): stop the child cleanly
        _stop(child, receive)
        raise
    finally:
        bars.close()
        receive.close()
        child.join(1.0)
        if child.is_alive():
            child.kill()


def _wait(child: multiprocessing.process.BaseProcess, receive: Connection, ctx: StepContext[Any],
          bars: _Bars) -> tuple[Any, ...]:
    """Relay the child's events until its final message; a child gone without one fails the step."""
    while True:
        if receive.poll(POLL_S):
            try:
                event = receive.recv()
            except EOFError:
                event = None
            if event is None:
                break
            if event[0] in _FINAL:
                return tuple(event)
            _relay(event, ctx, bars)
        elif not child.is_alive() and not receive.poll(0):
            break
    child.join(1.0)
    raise StepFailed(f"the process running this step ended without a result (exit code {child.exitcode}); "
                     "the records it committed are kept, and `dialc run` again resumes the step")


_FINAL = ("result", "failed", "interrupted", "error")


def _relay(event: tuple[Any, ...], ctx: StepContext[Any], bars: _Bars) -> None:
    kind = event[0]
    if kind == "warn":
        ctx.warn(event[1])
    elif kind == "bar":
        bars.open(event[1], event[2], event[3])
    elif kind == "advance":
        bars.advance(event[1], event[2])
    elif kind == "close":
        bars.end(event[1])


def _outcome(final: tuple[Any, ...], ctx: StepContext[Any]) -> StepOutput:
    kind = final[0]
    if kind == "result":
        out, usage, missing = final[1], final[2], final[3]
        ctx.account(usage.model_calls, usage.prompt_tokens, usage.completion_tokens, usage.http_429)
        ctx.missing += missing
        return out  # type: ignore[no-any-return]
    if kind == "failed":
        raise StepFailed(final[1])
    if kind == "interrupted":
        raise KeyboardInterrupt
    _, type_name, message, trace, database = final
    if database:  # a damaged store stops the run, as it does for a step run here
        raise sqlite3.DatabaseError(message)
    raise ChildFailed(f"{type_name}: {message}", trace)


def _stop(child: multiprocessing.process.BaseProcess, receive: Connection) -> None:
    """Ask the child to stop as Ctrl-C does (it commits what it emitted), and wait for it a while."""
    if child.is_alive() and child.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline and (child.is_alive() or receive.poll(0)):
        try:
            if receive.poll(POLL_S) and receive.recv()[0] in _FINAL:
                return
        except (EOFError, OSError):
            return


class _Bars:
    """The child's progress bars, shown through this step's progress factory."""

    def __init__(self, ctx: StepContext[Any]) -> None:
        self.ctx, self.stack = ctx, ExitStack()
        self.open_bars: dict[int, Any] = {}

    def open(self, number: int, total: int | None, description: str) -> None:
        self.open_bars[number] = self.stack.enter_context(self.ctx.progress(total, description))

    def advance(self, number: int, n: int) -> None:
        bar = self.open_bars.get(number)
        if bar is not None:
            bar.advance(n)

    def end(self, number: int) -> None:
        self.open_bars.pop(number, None)

    def close(self) -> None:
        self.stack.close()


# -- the child ------------------------------------------------------------------------------


def _child_main(task: _Task, send: Connection) -> None:
    """Entry point of the child: rebuild the context on a connection of its own, run the step, report."""
    _die_with_parent(task.parent)
    signal.signal(signal.SIGINT, _interrupted_once)
    try:
        store = Store(task.run_dir)
    except BaseException as exc:  # the parent opened it a moment ago: say why this one could not
        send.send(("error", type(exc).__name__, str(exc), traceback.format_exc(), False))
        send.close()
        return
    progress = _ForwardedProgress(send)
    ctx: StepContext[Any] = StepContext(
        step=task.step, plan=task.plan, key=task.key, seed=task.seed, store=store, input_keys=task.input_keys,
        backends=BackendPool(), progress=progress.task, warn=lambda message: send.send(("warn", message)))
    try:
        module = importlib.import_module(task.module)
        out = module.run(ctx) or StepOutput()
        ctx.flush()
        progress.flush()
        send.send(("result", out, ctx.usage, ctx.missing))
    except StepFailed as exc:
        _commit(ctx)
        send.send(("failed", exc.message))
    except KeyboardInterrupt:
        _commit(ctx)
        send.send(("interrupted",))
    except BaseException as exc:  # reported, with the traceback, as a bug of the step (or a damaged store)
        _commit(ctx)
        send.send(("error", type(exc).__name__, str(exc), traceback.format_exc(),
                   isinstance(exc, sqlite3.DatabaseError)))
    finally:
        store.close()
        send.close()


def _die_with_parent(parent: int) -> None:
    """Linux: ask the kernel to kill this process when the run's process dies (PR_SET_PDEATHSIG), so that no
    orphan goes on writing to the store after a kill -9 of dialc."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pipe closing stops the child at its next message
        return
    if os.getppid() != parent:  # the run died before the request took effect
        os._exit(1)


PR_SET_PDEATHSIG = 1


def _interrupted_once(signum: int, frame: FrameType | None) -> None:
    """The first SIGINT stops the step (KeyboardInterrupt); later ones (the terminal's Ctrl-C reaches the
    child and the parent passes it on) do not cut the commit that follows."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _commit(ctx: StepContext[Any]) -> None:
    """Commit what the attempt emitted (kept for the next attempt), unless the store cannot take it."""
    with contextlib.suppress(sqlite3.DatabaseError):
        ctx.flush()


class _ForwardedProgress:
    """A progress factory whose bars are drawn by the parent: opening, advancing (at most every
    SEND_EVERY_S) and closing each bar are sent over the pipe."""

    def __init__(self, send: Connection) -> None:
        self.send, self.bars = send, 0
        self.pending: dict[int, int] = {}
        self.last = time.monotonic()

    @contextmanager
    def task(self, total: int | None, description: str = "") -> Iterator[_ForwardedBar]:
        self.bars += 1
        number = self.bars
        self.send.send(("bar", number, total, description))
        try:
            yield _ForwardedBar(self, number)
        finally:
            self.flush()
            self.send.send(("close", number))

    def advance(self, number: int, n: int) -> None:
        self.pending[number] = self.pending.get(number, 0) + n
        if time.monotonic() - self.last >= SEND_EVERY_S:
            self.flush()

    def flush(self) -> None:
        for number, n in self.pending.items():
            self.send.send(("advance", number, n))
        self.pending.clear()
        self.last = time.monotonic()


class _ForwardedBar:
    def __init__(self, owner: _ForwardedProgress, number: int) -> None:
        self.owner, self.number = owner, number

    def advance(self, n: int = 1) -> None:
        self.owner.advance(self.number, n)

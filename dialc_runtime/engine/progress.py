"""Executor events → a rich progress bar per running step on a TTY, else one plain line per step."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from dialc_runtime.engine.context import ProgressHandle
    from dialc_runtime.engine.results import StepResult

PLAIN_EVERY_S = 30.0  # seconds between progress lines of a long step in plain (CI) mode


class Reporter(Protocol):
    def start(self, steps: int) -> None: ...
    def step_started(self, step_id: str) -> None: ...
    def task(
        self, step_id: str, total: int | None, description: str
    ) -> AbstractContextManager[ProgressHandle]: ...
    def warn(self, step_id: str, message: str) -> None: ...
    def step_finished(self, result: StepResult) -> None: ...
    def stop(self) -> None: ...


def make_reporter(console: Console | None = None, quiet: bool = False) -> Reporter:
    """Bars when the console is a terminal and not quiet; plain lines otherwise (CI, pipes)."""
    console = console or Console()
    if console.is_terminal and not quiet:
        return RichReporter(console)
    return PlainReporter(console, periodic=not quiet)


def summary_line(r: StepResult) -> str:
    parts = [f"{r.status:<7}", r.id]
    if r.status in ("ok", "cached"):
        parts.append(f"{r.records} records")
    if r.model_calls:
        parts.append(f"{r.model_calls} model calls")
    parts.append(f"{r.seconds:.1f}s")
    line = "  ".join(parts)
    return f"{line}  {r.message}" if r.message else line


class _Counter:
    """A plain-mode progress handle: counts, and logs a line at most every PLAIN_EVERY_S."""

    def __init__(self, console: Console | None, label: str, total: int | None) -> None:
        self.console, self.label, self.total = console, label, total
        self.done = 0
        self.t0 = self.last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.console is not None and now - self.last >= PLAIN_EVERY_S:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            of = f"/{self.total}" if self.total else ""
            eta = ""
            if self.total and rate > 0:
                eta = f", eta {(self.total - self.done) / rate:.0f}s"
            line = f"        {self.label}: {self.done}{of} ({rate:.1f}/s{eta})"
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)


class PlainReporter:
    """One line per finished step (and, unless quiet, a progress line now and then)."""

    def __init__(self, console: Console, periodic: bool = True) -> None:
        self.console = console
        self.periodic = periodic

    def start(self, steps: int) -> None:
        pass

    def step_started(self, step_id: str) -> None:
        pass

    @contextmanager
    def task(self, step_id: str, total: int | None, description: str) -> Iterator[_Counter]:
        label = f"{step_id} {description}".strip()
        yield _Counter(self.console if self.periodic else None, label, total)

    def warn(self, step_id: str, message: str) -> None:
        self._line(f"warning: {step_id}: {message}")

    def step_finished(self, result: StepResult) -> None:
        self._line(summary_line(result))

    def stop(self) -> None:
        pass

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


class RateColumn(ProgressColumn):
    """Items per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f}/s", style="progress.data.speed")


class _Bar:
    def __init__(self, progress: Progress, task_id: int) -> None:
        self.progress, self.task_id = progress, task_id

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task_id, n)  # type: ignore[arg-type]


class RichReporter:
    """A live bar per running step: description, bar, done/total, rate, ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.bars: dict[str, int] = {}

    def start(self, steps: int) -> None:
        self.progress.start()

    def step_started(self, step_id: str) -> None:
        self.bars[step_id] = self.progress.add_task(step_id, total=None)  # type: ignore[assignment]

    @contextmanager
    def task(self, step_id: str, total: int | None, description: str) -> Iterator[_Bar]:
        task_id = self.bars.get(step_id)
        if task_id is None:
            task_id = self.bars[step_id] = self.progress.add_task(step_id)  # type: ignore[assignment]
        label = f"{step_id} {description}".strip()
        self.progress.reset(task_id, total=total, description=label)  # type: ignore[arg-type]
        yield _Bar(self.progress, task_id)

    def warn(self, step_id: str, message: str) -> None:
        self.progress.console.print(Text.assemble(("warning", "yellow"), f": {step_id}: {message}"))

    def step_finished(self, result: StepResult) -> None:
        task_id = self.bars.pop(result.id, None)
        if task_id is not None:
            self.progress.remove_task(task_id)  # type: ignore[arg-type]
        style = {"ok": "green", "cached": "dim", "failed": "red", "blocked": "yellow"}
        color = style.get(result.status, "magenta")
        self.progress.console.print(Text(summary_line(result), style=color))

    def stop(self) -> None:
        self.progress.stop()

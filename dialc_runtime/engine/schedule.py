"""Selected steps → run, up to `jobs` at once: a step starts once its inputs have finished and no running
step uses one of its models (steps that share a model never run together; a rule or dedup dimension may
run while a judge does, engine/offload.py then runs it in a child process); of the steps ready, those that
call a model start first."""

from __future__ import annotations

import ctypes
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from dialc.plan import Step
    from dialc_runtime.engine.store import Store

POLL_S = 0.2  # the main thread wakes this often, so Ctrl-C is seen at once
LOCAL_DEVICE = "local-device"  # every in-process model (transformers, training) shares this machine's device


def model_resources(step: Step) -> set[str]:
    """What a step would compete for: each served model (backend, base_url, served name) it calls, and this
    machine's device for any model it runs in-process (two such steps would only share its cores or GPU)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, BaseModel):
            if type(value).__name__ == "ModelSpec":
                found.add(_resource(value.model_dump(mode="json")))
                return
            for name in type(value).model_fields:
                walk(getattr(value, name))
            for item in (value.model_extra or {}).values():  # params of a kind without a typed model
                walk(item)
        elif isinstance(value, dict):
            if {"backend", "path"} <= set(value):  # a model config as a plain dict (ModelSpec.config())
                found.add(_resource(value))
                return
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(step.params)
    return found


def _resource(cfg: dict[str, Any]) -> str:
    if cfg.get("backend") == "openai":
        return f"openai {cfg.get('base_url') or ''} {cfg.get('path') or ''}"
    return LOCAL_DEVICE


def run_steps(steps: list[Step], run: Callable[[Step], Any], jobs: int,
              thread_exit: Callable[[], None] | None = None) -> None:
    """Run every step (given in plan order); with jobs > 1, each in a thread of its own (`thread_exit` is
    called at the end of each). An exception a step lets out (Ctrl-C, a damaged store) interrupts the
    steps still running and is raised here once they have stopped."""
    if jobs <= 1:
        for step in steps:
            run(step)
        return
    Scheduler(steps, run, jobs, thread_exit).run()


class Scheduler:
    """The main thread starts steps and waits; the steps run in worker threads."""

    def __init__(self, steps: list[Step], run: Callable[[Step], Any], jobs: int,
                 thread_exit: Callable[[], None] | None) -> None:
        self.pending = list(steps)
        self.ids = {s.id for s in steps}
        self.resources = {s.id: model_resources(s) for s in steps}
        self.running: dict[str, threading.Thread] = {}
        self.finished: set[str] = set()
        self.jobs, self._run, self._exit = jobs, run, thread_exit
        self._done: queue.SimpleQueue[tuple[str, BaseException | None]] = queue.SimpleQueue()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (self.pending or self.running) and self.error is None:
                self._start_ready()
                if not self.running:
                    raise RuntimeError(f"cannot schedule {self.pending[0].id}: its inputs never finish")
                self._wait()
        except BaseException as exc:  # Ctrl-C in the main thread: stop the steps running
            self.error = self.error or exc
        if self.running:
            self._interrupt_all()
        if self.error is not None:
            raise self.error

    def ready(self, step: Step) -> bool:
        """Its selected inputs have finished and it shares no model with a running step."""
        if any(d in self.ids and d not in self.finished for d in step.input_ids):
            return False
        busy = set().union(*(self.resources[r] for r in self.running))
        return not (self.resources[step.id] & busy)

    def _start_ready(self) -> None:
        """Start what is ready, steps that call a model first (they are the long ones, waiting on a server or a
        device; a CPU-bound step beside them uses the other cores), each group in plan order."""
        for step in sorted(self.pending, key=lambda s: not self.resources[s.id]):
            if len(self.running) >= self.jobs:
                return
            if self.ready(step):
                self.pending.remove(step)
                thread = threading.Thread(target=self._work, args=(step,), name=f"step {step.id}", daemon=True)
                self.running[step.id] = thread
                thread.start()

    def _work(self, step: Step) -> None:
        error: BaseException | None = None
        try:
            self._run(step)
        except BaseException as exc:  # handed to the main thread
            error = exc
        finally:
            try:
                if self._exit is not None:
                    self._exit()
            finally:
                self._done.put((step.id, error))

    def _wait(self) -> None:
        """Wait for a step to end (POLL_S at a time); a thread that died without a word counts as interrupted."""
        try:
            step_id, error = self._done.get(timeout=POLL_S)
        except queue.Empty:
            dead = [step_id for step_id, thread in self.running.items() if not thread.is_alive()]
            while dead:  # a thread that ended has said so first, unless it was stopped in the act
                try:
                    self._ended(*self._done.get_nowait())
                except queue.Empty:
                    break
            for step_id in dead:
                if step_id in self.running:
                    self._ended(step_id, KeyboardInterrupt())
            return
        self._ended(step_id, error)

    def _ended(self, step_id: str, error: BaseException | None) -> None:
        thread = self.running.pop(step_id, None)
        if thread is not None:
            thread.join(POLL_S)
        self.finished.add(step_id)
        if error is not None and self.error is None:
            self.error = error

    def _interrupt_all(self) -> None:
        """Raise KeyboardInterrupt in every running step (as Ctrl-C does in the main thread), then wait for
        each to record its outcome (one blocked in C code gets it when that returns); a second Ctrl-C still
        exits at once (engine/interrupt.py)."""
        for thread in self.running.values():
            _raise_in(thread, KeyboardInterrupt)
        while self.running:
            try:
                step_id, _ = self._done.get(timeout=POLL_S)
            except queue.Empty:
                for step_id, thread in list(self.running.items()):
                    if not thread.is_alive():
                        self.running.pop(step_id)
                continue
            self.running.pop(step_id, None)


def _raise_in(thread: threading.Thread, exc: type[BaseException]) -> None:
    """Raise `exc` in another thread at its next Python instruction."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))


class ThreadStores:
    """The run's Store for the main thread and a connection of its own for every worker thread (SQLite
    connections are not shared between threads; WAL lets them read at once and write one at a time). Stands
    in for a Store: every attribute is the current thread's."""

    def __init__(self, main: Store) -> None:
        self._main = main
        self._main_thread = threading.current_thread()
        self._local = threading.local()

    def current(self) -> Store:
        if threading.current_thread() is self._main_thread:
            return self._main
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = type(self._main)(self._main.run_dir)
        return store

    def release(self) -> None:
        """Close the current worker thread's connection (at the end of its step)."""
        store = getattr(self._local, "store", None)
        if store is not None:
            self._local.store = None
            store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)

"""Plan + run directory → executed steps (cached, resumable), run_results.json; and status."""

from __future__ import annotations

import sqlite3
import threading
import traceback
from contextlib import suppress
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, cast

from dialc.plan import resolve_paths
from dialc_runtime.engine.cache import FileDigests, effective_seed, output_digest, step_key, verify
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.engines import Engine, LocalEngine
from dialc_runtime.engine.interrupt import interrupts
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.lock import ended_cleanly, run_lock
from dialc_runtime.engine.offload import ChildFailed, offloads, run_in_child
from dialc_runtime.engine.outputs import publish_outputs
from dialc_runtime.engine.progress import make_reporter
from dialc_runtime.engine.rebuild import rebuild_store
from dialc_runtime.engine.registry import Registry, StepModule, default_registry, estimator
from dialc_runtime.engine.results import RunResults, StepResult, StepStatus, load_results, now, write_atomic
from dialc_runtime.engine.schedule import ThreadStores, run_steps
from dialc_runtime.engine.selection import select_steps
from dialc_runtime.engine.store import Completed, Store, damaged
from dialc_runtime.errors import SelectionError, StepFailed, UnknownStepKind
from dialc_runtime.secrets import redact, register_plan_keys

if TYPE_CHECKING:
    from rich.console import Console

    from dialc.plan import Plan, Step
    from dialc_runtime.engine.progress import Reporter

_UNUSABLE = ("failed", "blocked", "skipped")  # upstream outcomes that stop a dependent


class Resolver:
    """Step id → cache key and usable output digest, computed from the plan and the store."""

    def __init__(self, plan: Plan, store: Store | None, registry: Registry, check: bool) -> None:
        self.plan, self.store, self.registry, self.check = plan, store, registry, check
        self.steps = {s.id: s for s in plan.steps}
        self.digests: dict[str, str | None] = {}  # None: no usable output in this run
        self.keys: dict[str, str | None] = {}
        self.errors: dict[str, str] = {}  # why a step's key could not be computed
        self.files = FileDigests(plan.spec_dir())
        self._lock = threading.RLock()  # steps running at once (engine/schedule.py) ask at once

    def module(self, step: Step) -> StepModule:
        return self.registry.get(step.kind)

    def key(self, step: Step) -> str | None:
        """The step's cache key, or None while an input has no known output."""
        inputs = [self.output(dep) for dep in step.input_ids]
        if any(d is None for d in inputs):
            return None
        try:
            version = self.module(step).VERSION
        except Exception as exc:  # unknown kind, or its module fails to import
            self.errors[step.id] = f"{type(exc).__name__}: {exc}"
            return None
        seed = effective_seed(step, self.plan)
        key = step_key(step, version, seed, [d for d in inputs if d], self.files(step))
        self.keys[step.id] = key
        return key

    def output(self, step_id: str) -> str | None:
        """Digest of the step's stored output for its current key (verified when `check`)."""
        with self._lock:
            if step_id not in self.digests:
                self.digests[step_id] = self._stored(self.steps[step_id])
            return self.digests[step_id]

    def _stored(self, step: Step) -> str | None:
        key = self.key(step)
        done = self.store.completed(key) if key and self.store else None
        if done is None or self.store is None or key is None:
            return None
        if self.check and not verify(self.store, key):
            self.errors[step.id] = "its stored output was corrupt and has been discarded"
            self.store.purge(key)
            return None
        return done.digest


def execute(
    plan: Plan,
    run_dir: Path,
    *,
    select: list[str] | None = None,
    recompute: list[str] | None = None,
    dry_run: bool = False,
    registry: Registry | None = None,
    console: Console | None = None,
    quiet: bool = False,
    rebuild_store: bool = False,
    engine: Engine | None = None,
    jobs: int = 1,
) -> RunResults:
    """Run the selected steps in plan order, reusing every step whose key is already complete;
    `rebuild_store` first moves a damaged store aside and keeps what verifies (engine/rebuild.py);
    `engine` runs each step (default: in this process; engine/engines.py; the caller closes it);
    `jobs` > 1 runs independent steps that share no model at the same time (engine/schedule.py)."""
    selected = select_steps(plan, select)
    forced = select_steps(plan, recompute) if recompute else set()
    if forced - selected:
        outside = ", ".join(sorted(forced - selected))
        raise SelectionError(f"--recompute names steps that are not selected: {outside}")
    registry = registry or default_registry()
    run_dir = Path(run_dir)
    results = RunResults(
        pipeline=plan.pipeline,
        spec=plan.spec,
        run_dir=str(run_dir),
        started=now(),
        dry_run=dry_run,
        selected=[s.id for s in plan.steps if s.id in selected],
    )
    if dry_run:
        return _dry_run(plan, run_dir, results, forced, registry)
    return _run(plan, run_dir, results, forced, registry, make_reporter(console, quiet), rebuild_store, engine,
                jobs)


def _run(
    plan: Plan,
    run_dir: Path,
    results: RunResults,
    forced: set[str],
    registry: Registry,
    reporter: Reporter,
    rebuild: bool = False,
    engine: Engine | None = None,
    jobs: int = 1,
) -> RunResults:
    """Run the selected steps under the run directory's lock; run_results.json is written even when
    interrupted. A store left by a run that did not end cleanly is checked first (PRAGMA quick_check)."""
    layout = RunLayout(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    register_plan_keys(plan)  # no message of this run can show an API key of the plan's models
    with run_lock(run_dir) as clean, interrupts():
        if rebuild:
            reporter.warn("store", rebuild_store(run_dir).summary())
        write_atomic(layout.plan, plan.to_json())
        t0 = perf_counter()
        with Store(run_dir, check=not clean and not rebuild) as store:
            jobs = jobs if engine is None or isinstance(engine, LocalEngine) else 1
            stores = ThreadStores(store) if jobs > 1 else None  # a connection per step thread
            runner = Runner(plan, cast(Store, stores) if stores else store, registry, reporter, forced, engine, jobs)
            reporter.start(len(results.selected))
            try:
                selected = [step for step in plan.steps if step.id in results.selected]
                run_steps(selected, runner.run_step, jobs, stores.release if stores else None)
            except sqlite3.DatabaseError as exc:  # a page went bad during the run: say so, no traceback
                raise damaged(layout, exc) from None
            finally:
                reporter.stop()
                order = {step_id: i for i, step_id in enumerate(results.selected)}
                results.steps = sorted(runner.results, key=lambda r: order.get(r.id, len(order)))
                results.finished, results.seconds = now(), round(perf_counter() - t0, 3)
                results.write(layout.results)
                publish_outputs(plan, store, registry, runner.resolver, reporter.warn)  # outputs/<name> links
    return results


class Runner:
    """Runs steps against one store (several at once from engine/schedule.py's threads, each through its own
    connection; a CPU-bound one among them in a child process, engine/offload.py), remembering each outcome
    for the dependents."""

    def __init__(
        self, plan: Plan, store: Store, registry: Registry, reporter: Reporter, forced: set[str],
        engine: Engine | None = None, jobs: int = 1,
    ) -> None:
        self.plan, self.store, self.reporter, self.forced, self.jobs = plan, store, reporter, forced, jobs
        self.resolver = Resolver(plan, store, registry, check=True)
        self.engine = engine or LocalEngine()
        self.backends = self.engine.backend_pool()
        self.status: dict[str, str] = {}
        self.results: list[StepResult] = []

    def run_step(self, step: Step) -> StepResult:
        res = StepResult(id=step.id, kind=step.kind, status="skipped", span=_span(step))
        try:
            self._decide(step, res)
        finally:  # an interrupted step is recorded too, then the interrupt goes on
            self.status[step.id] = res.status
            if res.status not in ("ok", "cached"):
                self.resolver.digests[step.id] = None
            res.message, res.warnings = redact(res.message), [redact(w) for w in res.warnings]
            self.results.append(res)
            self.reporter.step_finished(res)
        return res

    def _decide(self, step: Step, res: StepResult) -> None:
        bad = [d for d in step.input_ids if self.status.get(d) in _UNUSABLE]
        if bad:
            _below(res, bad, self.status, {r.id: r for r in self.results})
            return
        for dep in step.input_ids:
            if dep not in self.status and self.resolver.output(dep) is None:
                why = self.resolver.errors.get(dep, "it has no cached output")
                res.status = "failed"
                res.message = (
                    f"input {dep} is not selected and {why}; select it too (e.g. +{step.name})"
                )
                return
        try:
            module = self.resolver.module(step)
        except UnknownStepKind as exc:
            res.status, res.message = "failed", str(exc)
            return
        except Exception as exc:  # the step's module exists but fails to import
            self._internal(step, res, exc)
            return
        key = res.key = self.resolver.key(step)
        assert key is not None  # every input has a digest and the module is known
        if step.id in self.forced:
            self.store.purge(key)
        elif self._reusable(key) and self._reuse(step, key, res):
            return
        self._execute(step, module, key, res)

    def _reusable(self, key: str) -> bool:
        """Complete, and not missing records a server failed to answer (those are asked for again)."""
        done = self.store.completed(key)
        return done is not None and not done.timings.get("missing")

    def _reuse(self, step: Step, key: str, res: StepResult) -> bool:
        """Reuse a complete output after checking its digest; a corrupt one is discarded."""
        done = self.store.completed(key)
        if done is None or not verify(self.store, key):
            res.warnings.append("stored output was corrupt (digest mismatch): recomputed")
            self.reporter.warn(step.id, res.warnings[-1])
            self.store.purge(key)
            return False
        res.status, res.cache_hit = "cached", True
        res.started = res.finished = now()
        res.records, res.metrics = done.records, done.metrics
        made = dict(done.timings)
        res.warnings = list(made.pop("warnings", []))  # what was said when it was made still holds
        res.made = made or None  # what the reused output cost when it was made
        for message in res.warnings:
            self.reporter.warn(step.id, f"{message} (when it was made)")
        self.resolver.digests[step.id] = done.digest
        return True

    def _execute(self, step: Step, module: StepModule, key: str, res: StepResult) -> None:
        self.reporter.step_started(step.id)
        self.store.begin_attempt(key)  # no file of an earlier attempt becomes part of this output
        ctx: StepContext[Any] = StepContext(
            step=resolved(step, self.plan),
            plan=self.plan,
            key=key,
            seed=effective_seed(step, self.plan),
            store=self.store,
            input_keys={d: self.resolver.keys[d] or "" for d in step.input_ids},
            backends=self.backends,
            progress=partial(self.reporter.task, step.id),
            warn=lambda message: self.reporter.warn(step.id, redact(message)),
        )
        res.started, t0 = now(), perf_counter()
        try:
            if offloads(module, step, ctx, self.jobs):
                out = run_in_child(module, ctx)
            else:
                out = self.engine.run(module, ctx)
            ctx.flush()
            res.seconds = round(perf_counter() - t0, 3)
            self.store.publish(key)
            self._finish(step, key, out, res, ctx)
        except StepFailed as exc:
            res.status, res.message = "failed", exc.message
        except KeyboardInterrupt:
            res.status, res.message = "failed", "interrupted (records written so far are kept)"
            raise
        except Exception as exc:
            self._internal(step, res, exc)
        finally:
            _flush_kept(ctx)  # what a failed or interrupted attempt emitted is kept for the next one
            self.store.publish(key)  # a failed attempt's files (a quarantine list) can be read; not complete
            res.finished = now()
            res.seconds = round(perf_counter() - t0, 3)
            res.model_calls = ctx.usage.model_calls
            res.prompt_tokens = ctx.usage.prompt_tokens
            res.completion_tokens = ctx.usage.completion_tokens
            res.warnings += ctx.warnings
            if res.status != "ok":
                res.records = self.store.count(key)

    def _finish(self, step: Step, key: str, out: StepOutput, res: StepResult, ctx: StepContext) -> None:
        if out.status not in ("ok", "blocked"):
            raise ValueError(f"run() returned status {out.status!r}, expected 'ok' or 'blocked'")
        res.metrics, res.message = dict(out.metrics), out.message
        if out.status == "blocked":
            res.status, res.message = "blocked", out.message or "blocked"
            return
        digest, count = output_digest(self.store, key)
        read = sum(self.store.count(self.resolver.keys[d] or "") for d in step.input_ids)
        if count == 0 and read:
            res.warnings.append(f"yielded no records (its inputs hold {read})")
            self.reporter.warn(step.id, res.warnings[-1])
        finished = now()
        usage = ctx.usage
        timings = {"started": res.started, "finished": finished, "seconds": res.seconds,
                   "model_calls": usage.model_calls, "prompt_tokens": usage.prompt_tokens,
                   "completion_tokens": usage.completion_tokens,
                   "warnings": [redact(w) for w in [*res.warnings, *ctx.warnings]]}  # said again when reused
        if ctx.missing:
            timings["missing"] = ctx.missing  # usable now; asked for again at the next run (never reused)
        if usage.http_429:  # the server asked to slow down this many times (each waited out: Retry-After)
            timings["http_429"] = res.metrics["http_429"] = usage.http_429
        res.made = {k: v for k, v in timings.items() if k != "warnings"}
        self.store.mark_completed(
            Completed(key, step.id, digest, count, res.metrics, timings, finished)
        )
        self.store.end_resume(key)
        self.resolver.digests[step.id] = digest
        res.status, res.records = "ok", count

    def _internal(self, step: Step, res: StepResult, exc: BaseException) -> None:
        """An unexpected exception: a bug in the step; keep the traceback in logs/<id>.log. A damaged
        store is no bug of the step: it stops the run with an explanation."""
        if isinstance(exc, sqlite3.DatabaseError):
            res.status, res.message = "failed", f"the store is damaged: {exc}"
            raise exc
        log = self.store.layout.log(step.id)
        log.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(exc, ChildFailed):  # raised in a child process: its own traceback and exception type
            trace, res.message = exc.trace, exc.summary
        else:
            trace, res.message = "".join(traceback.format_exception(exc)), f"{type(exc).__name__}: {exc}"
        log.write_text(trace, encoding="utf-8")
        res.status, res.internal = "failed", True
        res.log = log.relative_to(self.store.run_dir).as_posix()


def _flush_kept(ctx: StepContext[Any]) -> None:
    """Commit what an attempt emitted; a store that cannot take it any more is already being reported."""
    with suppress(sqlite3.DatabaseError):
        ctx.flush()


def _below(res: StepResult, bad: list[str], status: dict[str, str], done: dict[str, StepResult]) -> None:
    """A step whose inputs cannot be used: skipped below a failure, blocked below a gate only."""
    failed = [d for d in bad if status[d] != "blocked"]
    first = (failed or bad)[0]
    res.message = f"upstream {first} {status[first]}"
    if not failed:
        res.status, res.blocked_by = "blocked", done[first].blocked_by or first


def resolved(step: Step, plan: Plan) -> Step:
    """The step as it runs: its spec-relative paths resolved from the working directory."""
    return step.model_copy(update={"params": resolve_paths(step.params, plan.spec_dir())})


def _span(step: Step) -> dict[str, Any] | None:
    return step.span.model_dump() if step.span else None


def _dry_run(
    plan: Plan, run_dir: Path, results: RunResults, forced: set[str], registry: Registry
) -> RunResults:
    """What would run and what is cached, with estimated model usage; writes nothing."""
    store = Store.existing(run_dir, check=not ended_cleanly(run_dir))
    try:
        resolver = Resolver(plan, store, registry, check=False)
        for step_id in forced:
            resolver.digests[step_id] = None
        for step_id in results.selected:
            step = resolver.steps[step_id]
            res = StepResult(id=step.id, kind=step.kind, status="pending", span=_span(step))
            if resolver.output(step_id) is not None and store is not None:
                res.status, res.cache_hit = "cached", True
                res.key = resolver.keys.get(step_id)
                done = store.completed(res.key or "")
                res.records = done.records if done else 0
            else:
                res.key = resolver.keys.get(step_id)
                res.estimate, res.message = _estimate(resolver, step, plan)
            results.steps.append(res)
    finally:
        if store is not None:
            store.close()
    results.finished = now()
    return results


def _estimate(resolver: Resolver, step: Step, plan: Plan) -> tuple[dict[str, Any] | None, str]:
    """The module's own estimate of model calls and tokens, if it has one."""
    try:
        fn = estimator(resolver.module(step))
        return (dict(fn(resolved(step, plan), plan)) if fn else None), "would run"  # it may read files
    except Exception as exc:
        return None, f"would run (no estimate: {type(exc).__name__}: {exc})"


def status(plan: Plan, run_dir: Path, *, registry: Registry | None = None) -> list[StepStatus]:
    """done / cached / stale / pending for every step, without running anything."""
    run_dir = Path(run_dir)
    store = Store.existing(run_dir, check=not ended_cleanly(run_dir))
    last: dict[str, str] = {}  # step id → status in the last run
    results_file = RunLayout(run_dir).results
    if results_file.is_file():
        try:
            previous = load_results(results_file)
            last = {s.id: s.status for s in previous.steps}
        except (ValueError, KeyError, TypeError):
            pass  # an older or damaged results file only loses `last_status`
    resolver = Resolver(plan, store, registry or default_registry(), check=False)
    rows = []
    try:
        for step in plan.steps:
            rows.append(_step_status(step, resolver, store, last.get(step.id)))
    except sqlite3.DatabaseError as exc:  # a damaged page the open did not meet
        raise damaged(RunLayout(run_dir), exc) from None
    finally:
        if store is not None:
            store.close()
    return rows


def _step_status(
    step: Step, resolver: Resolver, store: Store | None, last: str | None
) -> StepStatus:
    found = resolver.output(step.id)
    key = resolver.keys.get(step.id)
    row = StepStatus(id=step.id, state="pending", key=key, last_status=last)
    if store is not None and key is not None:
        row.records = store.count(key)
    if found is not None and store is not None:
        latest = store.latest_completed(step.id)
        # cached: a different output of this step is more recent (say, a change was reverted)
        row.state = "done" if latest is None or latest.key == key else "cached"
    elif store is not None and store.latest_completed(step.id) is not None:
        row.state = "stale"
        row.message = "params, inputs, files or code changed since it last ran"
    if step.id in resolver.errors:
        row.message = resolver.errors[step.id]
    elif found is None and row.records:
        row.message = f"{row.records} records written; the next run resumes"
    return row

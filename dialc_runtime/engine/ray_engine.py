"""`dialc run --engine ray`: record-level steps as shards on Ray actors, one model per actor.

The driver keeps the store, the cache and the lineage. For a step with a `ShardRule` (label, judge
dimensions, paraphrases) it cuts the input into shards (engine/shards.py) and gives each to an actor of
the model's pool; the actor runs the step's own `run(ctx)` over the shard and streams the records back
in batches, which the driver writes to the store (one transaction per batch). Then the step runs once
more on the driver over its whole input: everything is stored, so it only computes its metrics (and
makes whatever the shards did not). Every other model call of the run (evolve, generated tasks) goes
to an actor of the model's pool too, so no model is loaded on the driver.

A model served through `ray.data.llm` instead (`backend = vllm`: vLLM engines; or an openai model named in
`http_data`: its server, through Ray Data's HTTP processor) has no actors: its steps run on the driver and
each call of its backend is a Ray Data job (engine/ray_llm.py).

A worker that dies (its node lost, the process killed) loses nothing: its shard is taken up again, by
another actor, after the last batch whose records reached the driver; records that arrive twice are
written once. An actor that dies is replaced when the cluster has room for it. Ray is imported only
here, and only when a run uses this engine.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dialc.plan import ModelSpec, digest
from dialc_runtime.engine.context import BackendPool, StepContext, StepOutput
from dialc_runtime.engine.registry import StepModule
from dialc_runtime.engine.shards import (
    Shard,
    ShardContext,
    ShardRule,
    ShardTask,
    cut,
    remainder,
    shard_rule,
    shard_size,
)
from dialc_runtime.errors import StepFailed

if TYPE_CHECKING:
    from dialc_runtime.engine.ray_llm import DataBackend

FLUSH_ROWS = 64  # records per message from a worker (the driver commits each message in one transaction)
FLUSH_SECONDS = 0.5  # at most this long between a record's emit on a worker and its message
MAX_ATTEMPTS = 4  # attempts of one shard (its worker died each time) before the step fails
PATIENCE = 120.0  # seconds to wait for a worker when none is left before the step fails
DEPTH = 2  # shards given to an actor at a time: the next one starts the moment one ends

Observer = Callable[[str, int], None]  # (step id, records written so far) after each batch: tests, progress


def connect(address: str | None, **init: Any) -> bool:
    """Start or join a Ray cluster, quietly; False when Ray was already initialised by the caller."""
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False, "logging_level": "warning"}
    if address is None:
        options["include_dashboard"] = False
    ray.init(address=address, **{**options, **init})
    return True


@dataclass
class Summary:
    """What a shard's run reports at its end besides its records."""

    usage: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    missing: int = 0


class ModelWorker:
    """A Ray actor holding one model (loaded once, on first use): runs shards and single backend calls."""

    def __init__(self, model: dict[str, Any], plan_model: dict[str, Any]) -> None:
        self.model = model  # as this actor uses it (its own endpoint, if any)
        self.plan_model = digest(plan_model)  # as the plan names it
        self._backends: dict[str, Any] = {}
        self._static: tuple[str, Any] | None = None

    def ready(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def backend(self, model: ModelSpec | dict[str, Any]) -> Any:
        from dialc_runtime.models import get_backend

        cfg = model.config() if isinstance(model, ModelSpec) else model
        k = digest(cfg)
        if k not in self._backends:
            self._backends[k] = get_backend(self.model if k == self.plan_model else cfg)
        return self._backends[k]

    def generate(self, model: dict[str, Any], requests: list[Any]) -> list[Any]:
        return list(self.backend(model).generate(requests))

    def loglikelihood(self, model: dict[str, Any], requests: list[Any]) -> tuple[list[float], int]:
        backend = self.backend(model)
        scores = backend.loglikelihood(requests)
        return list(scores), int(getattr(backend, "last_scored_tokens", 0))

    def run_shard(self, static: list[Any], shard: Shard, done: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """Run the step over one shard in a thread; yield ("records", [(key, record, base)…]) messages, then
        ("summary", Summary) — or ("failed", message) / ("error", traceback) when the step raised."""
        module, step, plan, key, seed, others = self._resolve(static[0])
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        task = ShardTask(step, plan, key, seed, shard, done, others)
        ctx = ShardContext(task, self.backend, lambda k, r, b: events.put(("record", (k, r, b))))
        threading.Thread(target=_run_step, args=(module, ctx, events), daemon=True).start()
        batch: list[Any] = []
        since = time.monotonic()
        while True:
            try:
                kind, payload = events.get(timeout=FLUSH_SECONDS)
            except queue.Empty:
                kind, payload = "idle", None
            if kind == "record":
                batch.append(payload)
            if batch and (kind != "record" or len(batch) >= FLUSH_ROWS or time.monotonic() - since >= FLUSH_SECONDS):
                yield "records", batch
                batch, since = [], time.monotonic()
            if kind == "end":
                yield "summary", Summary(asdict(ctx.usage), ctx.warnings, ctx.missing)
                return
            if kind in ("failed", "error"):
                yield kind, payload
                return

    def _resolve(self, ref: Any) -> Any:
        """The step's unchanging part (module, step, plan, key, seed, other inputs), fetched once per step."""
        import ray

        if self._static is None or self._static[0] != ref.hex():
            self._static = (ref.hex(), ray.get(ref))
        return self._static[1]


def _run_step(module: StepModule, ctx: ShardContext, events: queue.Queue[tuple[str, Any]]) -> None:
    try:
        module.run(ctx)  # type: ignore[arg-type]  # the StepContext surface, over a shard
        events.put(("end", None))
    except StepFailed as exc:
        events.put(("failed", exc.message))
    except BaseException:
        events.put(("error", traceback.format_exc()))


class Pool:
    """The actors of one model: started, ready, lost (and replaced). `idle` holds a free slot per shard an
    actor may take next (DEPTH per actor)."""

    def __init__(self, ray: Any, model: dict[str, Any], size: int, options: dict[str, Any],
                 endpoints: list[str]) -> None:
        self.ray, self.model, self.options, self.endpoints = ray, model, options, endpoints
        self.remote = ray.remote(ModelWorker)
        self.idle: deque[Any] = deque()
        self.starting: dict[Any, Any] = {}  # ready() ref → actor
        self.nodes: dict[Any, str] = {}  # actor id → the node it runs on
        self.dead: set[Any] = set()  # ids of actors lost
        self.why = ""  # why the last actor that failed to start failed
        self.started = 0
        for _ in range(size):
            self._start()

    def _start(self) -> None:
        model = dict(self.model)
        if self.endpoints:  # each actor its own server (one per node in a cluster, or per port here)
            model["base_url"] = self.endpoints[self.started % len(self.endpoints)]
        actor = self.remote.options(**self.options).remote(model, self.model)
        self.starting[actor.ready.remote()] = actor
        self.started += 1

    def poll(self, timeout: float = 0.0) -> None:
        """Move actors that have started into the idle queue."""
        if not self.starting:
            return
        ready, _ = self.ray.wait(list(self.starting), num_returns=len(self.starting), timeout=timeout)
        for ref in ready:
            actor = self.starting.pop(ref)
            try:
                self.nodes[actor._actor_id] = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:  # it died starting: replace it
                self.why = f" (the last one to fail: {type(exc).__name__}: {str(exc)[:500]})"
                self._start()
                continue
            self.idle.extend([actor] * DEPTH)

    def lost(self, actor: Any) -> None:
        """An actor died (or was abandoned): kill what is left of it and start a replacement (once)."""
        if actor._actor_id in self.dead:
            return
        self.dead.add(actor._actor_id)
        self.idle = deque(a for a in self.idle if a._actor_id != actor._actor_id)
        self.discard(actor)
        self._start()

    def discard(self, actor: Any) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.ray.kill(actor)

    def any(self, patience: float) -> Any:
        """A ready actor for a single call (waits for one to start)."""
        deadline = time.monotonic() + patience
        while not self.idle:
            if not self.starting or time.monotonic() > deadline:
                raise StepFailed(f"no Ray worker could start for model {self.model.get('name')!r} "
                                 f"within {patience:.0f} s{self.why}")
            self.poll(timeout=1.0)
        return self.idle[0]

    def close(self) -> None:
        for actor in {a._actor_id: a for a in [*self.idle, *self.starting.values()]}.values():
            self.discard(actor)
        self.idle.clear()
        self.starting.clear()


@dataclass
class Running:
    """A shard on an actor, and the output keys of it that reached the driver."""

    shard: Shard
    actor: Any
    stored: set[str] = field(default_factory=set)
    summary: Summary | None = None


class RayEngine:
    """The Ray engine (see the module docstring). `workers`: actors per model (default: one per GPU of the
    cluster for a transformers model when it has GPUs, else one per CPU); `endpoints`: model name → base
    URLs, spread over that model's actors (an openai model served by several servers)."""

    def __init__(self, address: str | None = None, workers: int | None = None, *,
                 endpoints: dict[str, list[str]] | None = None, init: dict[str, Any] | None = None,
                 observer: Observer | None = None, patience: float = PATIENCE, per_worker: int = 4,
                 http_data: Iterable[str] = ()) -> None:
        self.address, self.workers = address, workers
        self.endpoints = endpoints or {}
        self.init = init or {}
        self.observer = observer
        self.patience = patience
        self.per_worker = per_worker  # shards per worker and step (more: better balance, more messages)
        self.current: Dispatch | None = None  # the sharded step running now
        self.pools: dict[str, Pool] = {}
        self.http_data = set(http_data)  # openai models (by name) whose generation runs as Ray Data jobs
        self.data_backends: dict[str, DataBackend] = {}
        self.duplicates = 0  # records that reached the driver twice (a retried shard's), written once
        self.retried = 0  # shards taken up again after their worker died
        self._ray: Any = None
        self._owns = False

    # the executor's interface -------------------------------------------------------------------

    def backend_pool(self) -> BackendPool:
        return RemoteBackends(self)

    def run(self, module: StepModule, ctx: StepContext[Any]) -> StepOutput:
        rule = shard_rule(ctx.step)
        if rule is not None and not self.through_data(rule.model.config()):
            self._run_shards(module, rule, ctx)
            ctx.reread_done()  # the step's own pass now finds its shards' records done
        return module.run(ctx) or StepOutput()

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
        self.data_backends.clear()
        if self._owns and self._ray is not None:
            self._ray.shutdown()
        self._ray, self._owns = None, False

    # pools --------------------------------------------------------------------------------------

    def through_data(self, cfg: dict[str, Any]) -> bool:
        """Whether a model's generation runs as Ray Data jobs (ray.data.llm) rather than on actors."""
        backend = cfg.get("backend", "transformers")
        return backend == "vllm" or (backend == "openai" and str(cfg.get("name")) in self.http_data)

    def data_backend(self, cfg: dict[str, Any]) -> DataBackend:
        """The Ray Data backend of a model (engine/ray_llm.py), one per model config."""
        from dialc_runtime.engine.ray_llm import DataBackend, http_route, vllm_route

        k = digest(cfg)
        if k not in self.data_backends:
            resources = self.ray().cluster_resources()
            if cfg.get("backend") == "vllm":
                route = vllm_route(cfg, self.workers or max(1, int(resources.get("GPU", 0))))
                self.data_backends[k] = DataBackend(cfg, route)
            else:
                route = http_route(cfg, self.workers or 1, _auth_header(cfg))
                self.data_backends[k] = DataBackend(cfg, route, fallback=RemoteBackend(self, cfg))
        return self.data_backends[k]

    def ray(self) -> Any:
        if self._ray is None:
            self._owns = connect(self.address, **self.init)
            import ray

            self._ray = ray
        return self._ray

    def pool(self, model: ModelSpec | dict[str, Any]) -> Pool:
        cfg = model.config() if isinstance(model, ModelSpec) else dict(model)
        k = digest(cfg)
        if k not in self.pools:
            ray = self.ray()
            resources = ray.cluster_resources()
            gpus = int(resources.get("GPU", 0))
            gpu = cfg.get("backend", "transformers") == "transformers" and gpus > 0
            size = self.workers or (gpus if gpu else max(1, int(resources.get("CPU", 1))))
            options: dict[str, Any] = {"num_gpus": 1} if gpu else {"num_cpus": 1}
            self.pools[k] = Pool(ray, cfg, size, options, self.endpoints.get(str(cfg.get("name")), []))
        return self.pools[k]

    # sharded steps ------------------------------------------------------------------------------

    def _run_shards(self, module: StepModule, rule: ShardRule, ctx: StepContext[Any]) -> None:
        ray = self.ray()
        pool = self.pool(rule.model)
        sharded = ctx.role(rule.role)
        others = {s: list(ctx.items(s)) for s in ctx.step.input_ids if s not in sharded}
        static = ray.put((module, ctx.step, ctx.plan, ctx.key, ctx.seed, others))
        entries = (rule.entry(ctx.params, s, k, r, ctx.done) for s in sharded for k, r in ctx.items(s))
        estimate = sum(ctx.count(s) for s in sharded)
        size = shard_size(rule.batch, estimate, pool.started, self.per_worker)
        self.current = Dispatch(self, pool, rule, ctx, static, cut(entries, rule.batch, size))
        try:
            self.current.loop(estimate)
        finally:
            self.current = None

    def busy_nodes(self) -> set[str]:
        """The nodes whose actors are running a shard now (tests pick one to kill)."""
        if self.current is None:
            return set()
        nodes = self.current.pool.nodes
        return {nodes[r.actor._actor_id] for r in self.current.running.values() if r.actor._actor_id in nodes}


class Dispatch:
    """One sharded step: shards to idle actors, their messages into the store, lost shards taken up again."""

    def __init__(self, engine: RayEngine, pool: Pool, rule: ShardRule, ctx: StepContext[Any], static: Any,
                 shards: Iterator[Shard]) -> None:
        self.engine, self.pool, self.rule, self.ctx, self.static = engine, pool, rule, ctx, static
        self.ray = engine.ray()
        self.shards = shards
        self.retry: deque[Shard] = deque()
        self.running: dict[int, Running] = {}
        self.events: queue.Queue[tuple[int, str, Any]] = queue.Queue()
        self.written: set[str] = set()
        self.warned: set[str] = set()
        self.exhausted = False
        self.runs = 0

    def loop(self, estimate: int) -> None:
        waited_since: float | None = None
        with self.ctx.progress(estimate, f"{self.ctx.step.name} on Ray") as bar:
            try:
                while True:
                    self.pool.poll()
                    self._dispatch()
                    if not self.running and self.exhausted and not self.retry:
                        return
                    if not self.running:  # work left, but no actor ready
                        waited_since = waited_since or time.monotonic()
                        if not self.pool.starting or time.monotonic() - waited_since > self.engine.patience:
                            raise StepFailed(f"no Ray worker is left to run {self.ctx.step.id}{self.pool.why} "
                                             "(the records written so far are kept; `dialc run` again resumes)")
                        self.pool.poll(timeout=1.0)
                        continue
                    waited_since = None
                    try:
                        run_id, kind, payload = self.events.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    bar.advance(self._handle(run_id, kind, payload))
            finally:
                for run in self.running.values():  # interrupted or failed: stop what is still running
                    self.pool.lost(run.actor)
                self.running.clear()

    def _dispatch(self) -> None:
        while self.pool.idle and (self.retry or not self.exhausted):
            shard = self.retry.popleft() if self.retry else next(self.shards, None)
            if shard is None:
                self.exhausted = True
                return
            actor = self._least_busy()
            done = {k: self.ctx.done[k] for k in shard.outputs() if k in self.ctx.done}
            gen = actor.run_shard.options(num_returns="streaming").remote([self.static], shard, done)
            self.runs += 1
            self.running[self.runs] = Running(shard, actor)
            threading.Thread(target=self._pump, args=(self.runs, gen), daemon=True).start()

    def _least_busy(self) -> Any:
        """Take the free slot of the actor running the fewest shards (so few shards still spread out)."""
        busy: dict[Any, int] = {}
        for run in self.running.values():
            busy[run.actor._actor_id] = busy.get(run.actor._actor_id, 0) + 1
        actor = min(self.pool.idle, key=lambda a: busy.get(a._actor_id, 0))
        self.pool.idle.remove(actor)
        return actor

    def _pump(self, run_id: int, gen: Any) -> None:
        """A shard's messages into the event queue; how its run ended, last."""
        exceptions = self.ray.exceptions
        try:
            for ref in gen:
                kind, payload = self.ray.get(ref)
                self.events.put((run_id, kind, payload))
            self.events.put((run_id, "end", None))
        except exceptions.RayTaskError as exc:
            self.events.put((run_id, "error", str(exc)))
        except exceptions.RayError as exc:  # the actor, its process or its node died
            self.events.put((run_id, "lost", f"{type(exc).__name__}: {exc}"))
        except Exception:
            self.events.put((run_id, "error", traceback.format_exc()))

    def _handle(self, run_id: int, kind: str, payload: Any) -> int:
        """Apply one message; returns how many records it wrote."""
        run = self.running.get(run_id)
        if run is None:  # a run already given up (its actor was replaced)
            return 0
        if kind == "records":
            return self._write(run, payload)
        if kind == "summary":
            run.summary = payload
            self._account(payload)
        elif kind == "failed":
            raise StepFailed(str(payload))
        elif kind == "error":
            raise RuntimeError(f"a Ray worker failed running {self.ctx.step.id}:\n{payload}")
        elif kind == "end" and run.summary is not None:
            del self.running[run_id]
            if run.actor._actor_id not in self.pool.dead:
                self.pool.idle.append(run.actor)
        else:  # lost, or a stream that ended without its summary
            del self.running[run_id]
            self.pool.lost(run.actor)
            self._take_up(run, str(payload or "the worker stopped"))
        return 0

    def _write(self, run: Running, batch: list[tuple[str, Any, Any]]) -> int:
        """One message's records in one transaction; a record already stored is not written again."""
        new = 0
        for key, record, base in batch:
            run.stored.add(key)
            if key in self.written or key in self.ctx.done:
                self.engine.duplicates += 1
                continue
            if base is None:
                self.ctx.emit(key, record)
            else:
                self.ctx.emit(key, record, base=tuple(base))  # type: ignore[call-arg]
            self.written.add(key)
            new += 1
        self.ctx.flush()
        if self.engine.observer is not None:
            self.engine.observer(self.ctx.step.id, len(self.written))
        return new

    def _account(self, summary: Summary) -> None:
        usage = {k: v for k, v in summary.usage.items() if hasattr(self.ctx.usage, k)}
        self.ctx.account(**usage)
        for message in summary.warnings:
            if message not in self.warned:
                self.warned.add(message)
                self.ctx.warn(message)

    def _take_up(self, run: Running, why: str) -> None:
        rest = remainder(run.shard, run.stored, self.ctx.done, self.rule.batch)
        if rest is None:
            return
        if rest.attempt >= MAX_ATTEMPTS:
            raise StepFailed(f"shard {rest.index} of {self.ctx.step.id} lost its worker {rest.attempt} times "
                             f"({why}); the records written so far are kept")
        self.engine.retried += 1
        self.retry.append(rest)


class RemoteBackends(BackendPool):
    """The driver's backends under the Ray engine: every call goes to an actor of the model's pool."""

    def __init__(self, engine: RayEngine) -> None:
        super().__init__()
        self.engine = engine

    def get(self, model: ModelSpec | dict[str, Any]) -> Any:
        cfg = model.config() if isinstance(model, ModelSpec) else dict(model)
        k = digest(cfg)
        if k not in self._loaded:
            through_data = self.engine.through_data(cfg)
            self._loaded[k] = self.engine.data_backend(cfg) if through_data else RemoteBackend(self.engine, cfg)
        return self._loaded[k]


class RemoteBackend:
    """A backend whose calls run on a Ray actor (another actor if one dies); nothing starts until a call."""

    def __init__(self, engine: RayEngine, model: dict[str, Any]) -> None:
        self.engine, self.model = engine, model
        self.name = str(model.get("backend", "backend"))
        self.last_scored_tokens = 0

    def _call(self, method: str, requests: list[Any]) -> Any:
        ray = self.engine.ray()
        pool = self.engine.pool(self.model)
        for _ in range(MAX_ATTEMPTS):
            actor = pool.any(self.engine.patience)
            try:
                return ray.get(getattr(actor, method).remote(self.model, requests))
            except ray.exceptions.RayTaskError as exc:  # the backend raised: as itself
                raise exc.as_instanceof_cause() from None
            except ray.exceptions.RayError:  # the actor died: another one
                pool.lost(actor)
        raise StepFailed(f"model {self.model.get('name')!r}: its Ray workers died {MAX_ATTEMPTS} times")

    def generate(self, requests: list[Any]) -> list[Any]:
        return list(self._call("generate", list(requests))) if requests else []

    def loglikelihood(self, requests: list[Any]) -> list[float]:
        if not requests:
            return []
        scores, self.last_scored_tokens = self._call("loglikelihood", list(requests))
        return list(scores)


def _auth_header(cfg: dict[str, Any]) -> dict[str, str]:
    """The HTTP route's Authorization header: the key of the model's `api_key_env`, read on the driver (it
    travels to the request actors in the processor's config), refused over plain http to another host."""
    from dialc.security import insecure_key_problem
    from dialc_runtime.models.openai_backend import BackendUnavailable, _api_key

    problem = insecure_key_problem(cfg.get("base_url"), cfg.get("api_key_env"), bool(cfg.get("allow_insecure")))
    if problem:
        raise BackendUnavailable(f"refusing to start: {problem}")
    return {"Authorization": f"Bearer {_api_key(cfg.get('api_key_env'))}"}

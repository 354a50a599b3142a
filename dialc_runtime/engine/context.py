"""A running step's view of the world: params, input records, emit(), backends, progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from dialc.plan import ModelSpec, StepParams, digest
from dialc_runtime.engine import refs
from dialc_runtime.engine.batches import Batcher, Done, EmittedKeys
from dialc_runtime.engine.store import Store, record_json
from dialc_runtime.errors import DuplicateRecord

if TYPE_CHECKING:
    from dialc.plan import Plan, Step


@dataclass
class StepOutput:
    """What run(ctx) returns: metrics for the report, and "blocked" to stop the dependents."""

    metrics: dict[str, Any] = field(default_factory=dict)
    status: Literal["ok", "blocked"] = "ok"
    message: str = ""  # why it is blocked (shown to the user), or a note


@dataclass
class Account:
    """Model usage of one step attempt."""

    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_429: int = 0  # "slow down" answers of a server, waited out (models/throttle.py)


class ProgressHandle(Protocol):
    def advance(self, n: int = 1) -> None: ...


ProgressFactory = Callable[[int | None, str], AbstractContextManager[ProgressHandle]]


class BackendPool:
    """Backends shared by every step of a run, loaded on first use, one per model config."""

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}

    def get(self, model: ModelSpec | dict[str, Any]) -> Any:
        model_cfg = model.config() if isinstance(model, ModelSpec) else model
        k = digest(model_cfg)
        if k not in self._loaded:
            from dialc_runtime.models import get_backend  # heavy: only when a step needs a model

            self._loaded[k] = get_backend(model_cfg)
        return self._loaded[k]


class CountingBackend:
    """A backend that books every call and token into the step's account."""

    def __init__(self, inner: Any, account: Callable[..., None]) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "backend")
        self._account = account

    def generate(self, requests: list[Any]) -> list[Any]:
        results = self.inner.generate(requests)
        self._account(
            model_calls=sum(getattr(r, "attempts", 1) for r in results),
            prompt_tokens=sum(getattr(r, "prompt_tokens", 0) for r in results),
            completion_tokens=sum(getattr(r, "completion_tokens", 0) for r in results),
            http_429=sum(getattr(r, "throttled", 0) for r in results),
        )
        return results

    def generate_stream(self, requests: list[Any]) -> Iterator[tuple[int, Any]]:
        """(index, result) pairs of a backend that streams them (openai: a sliding window), each booked."""
        for index, r in self.inner.generate_stream(requests):
            self._account(model_calls=getattr(r, "attempts", 1), prompt_tokens=getattr(r, "prompt_tokens", 0),
                          completion_tokens=getattr(r, "completion_tokens", 0), http_429=getattr(r, "throttled", 0))
            yield index, r

    def loglikelihood(self, requests: list[Any]) -> list[float]:
        scores = self.inner.loglikelihood(requests)
        # backends that tokenise report how many tokens the scoring read (a judge's cost)
        self._account(model_calls=len(requests), prompt_tokens=int(getattr(self.inner, "last_scored_tokens", 0)))
        return scores

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


P = TypeVar("P", bound=StepParams)


class RoleInputs:
    """Inputs read by role, for every step context (the run's, a Ray shard's, the tests' in-memory one):
    each has its `step` and reads an input step's records with `records(step_id)`."""

    step: Step

    def records(self, step_id: str) -> Iterator[Any]:
        raise NotImplementedError

    def items(self, step_id: str) -> Iterator[tuple[str, Any]]:
        raise NotImplementedError

    def keys(self, step_id: str) -> Iterator[str]:
        """An input step's record keys, in key order (what `items` gives, without the records)."""
        return (key for key, _ in self.items(step_id))

    def role(self, name: str) -> list[str]:
        """The ids of the input steps read under a role (`labels`, `dialogues` …), in order."""
        return self.step.role(name)

    def role_records(self, name: str) -> Iterator[Any]:
        """The records of every input step of a role, one step after the other, each in key order."""
        for step_id in self.step.role(name):
            yield from self.records(step_id)


class StepContext(RoleInputs, Generic[P]):
    """Everything run(ctx) may use (docs/contracts.md, "Step implementations").

    A step module annotates `run(ctx: StepContext[LabelParams])`: `ctx.params` is then its kind's
    typed params model, and its inputs are read by role (`ctx.role_records("labels")`)."""

    def __init__(
        self,
        *,
        step: Step,
        plan: Plan,
        key: str,
        seed: int,
        store: Store,
        input_keys: dict[str, str],
        backends: BackendPool,
        progress: ProgressFactory,
        warn: Callable[[str], None],
    ) -> None:
        self.step = step
        self.plan = plan
        self.params: P = step.params  # type: ignore[assignment]  # the compiler built it for this kind
        self.key = key  # this step's cache key
        self.seed = seed  # derive per-record seeds from this and the record key
        self.run_dir: Path = store.run_dir
        self.usage = Account()
        self.warnings: list[str] = []
        self.missing = 0  # records left out for now (left_out): the step runs again next time
        self._store = store
        self._input_keys = input_keys
        self._backends = backends
        self._progress = progress
        self._warn = warn
        self._emitted = EmittedKeys()
        self._batch = Batcher(store, key, step.id)
        self._refers = False  # whether this attempt's refs (input id → key) are recorded
        # records already written by an interrupted earlier attempt (keys in memory; records read on demand)
        self.done: Done = Done(store, key)

    # reading inputs ------------------------------------------------------------------------

    def _input_key(self, step_id: str) -> str:
        if step_id not in self._input_keys:
            inputs = ", ".join(self.step.input_ids) or "none"
            raise KeyError(f"step {self.step.id} does not read {step_id} (its inputs: {inputs})")
        return self._input_keys[step_id]

    def records(self, step_id: str) -> Iterator[Any]:
        """An input step's records, in key order."""
        for _, record in self._store.records(self._input_key(step_id)):
            yield record

    def input_step(self, step_id: str) -> Step:
        """An input step of the plan (its kind, name and typed params)."""
        self._input_key(step_id)
        return self.plan.step(step_id)

    def items(self, step_id: str) -> Iterator[tuple[str, Any]]:
        """An input step's (key, record) pairs, in key order."""
        return self._store.records(self._input_key(step_id))

    def keys(self, step_id: str) -> Iterator[str]:
        """An input step's record keys, in key order; its records are not read."""
        return self._store.keys(self._input_key(step_id))

    def count(self, step_id: str) -> int:
        """How many records an input step has (for progress totals)."""
        return self._store.count(self._input_key(step_id))

    def input_dir(self, step_id: str) -> Path:
        """An input step's file artifacts."""
        return self._store.artifact_dir(self._input_key(step_id))

    # writing output ------------------------------------------------------------------------

    @property
    def out_dir(self) -> Path:
        """Where this attempt writes its file artifacts (part of its output digest): empty when the attempt
        starts, moved into place (`final_dir`) when it ends; name paths in messages by `final_dir`."""
        path = self._store.layout.attempt_dir(self.key)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def final_dir(self) -> Path:
        """Where out_dir's files are once the attempt ends: the path to show in messages and metrics."""
        return self._store.artifact_dir(self.key)

    @property
    def resume_dir(self) -> Path:
        """State kept across attempts of this step to resume from (checkpoints), not part of the output;
        removed once the step completes."""
        path = self._store.layout.resume_dir(self.key)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def emit(self, key: str, record: Any, base: tuple[str, str] | None = None) -> None:
        """Add one finished record to the output; it is committed durably with its batch (engine/batches.py),
        at the latest when run() ends. `base = (input step id, key)`: the record extends that input record,
        and `record` holds only its own fields (stored as a reference; read back whole)."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"record keys are non-empty strings, got {key!r}")
        if base is not None:
            record = self._derived(base, record)
        data = record_json(record)
        if not self._emitted.add(key):
            raise DuplicateRecord(f"step {self.step.id} emitted record key {key!r} twice")
        self._batch.add(key, data, key in self.done)

    def _derived(self, base: tuple[str, str], fields: Any) -> dict[str, Any]:
        input_id, base_key = base
        self._input_key(input_id)  # an input of this step, or KeyError
        if not isinstance(fields, dict):
            raise TypeError(f"a record with a base is a dict of its own fields, got {type(fields).__name__}")
        if not self._refers:
            self._store.set_refs(self.key, dict(self._input_keys))
            self._refers = True
        return refs.derived(input_id, base_key, fields)

    def flush(self) -> None:
        """Commit the records emitted so far (the engine calls it when run() ends)."""
        self._batch.flush()

    def reread_done(self) -> None:
        """Commit, then re-read which records this attempt has stored: the Ray engine writes a step's records
        from its workers, then runs the step here, which finds them done (engine/ray_engine.py)."""
        self.flush()
        self.done = Done(self._store, self.key)
        self._emitted = EmittedKeys()  # a new pass: it may emit a done key again (replacing it), as on resume

    def lookup(self, step_id: str, keys: list[str]) -> dict[str, Any]:
        """Records of an input step by key (those that exist): random access, one query per page of keys."""
        return self._store.records_by_key(self._input_key(step_id), keys)

    # models, progress, messages ------------------------------------------------------------

    def backend(self, model: ModelSpec | dict[str, Any]) -> CountingBackend:
        """The shared backend for a model; its calls and tokens are booked automatically."""
        return CountingBackend(self._backends.get(model), self.account)

    def account(
        self, model_calls: int = 0, prompt_tokens: int = 0, completion_tokens: int = 0, http_429: int = 0
    ) -> None:
        """Book model usage not made through ctx.backend() (backend calls are already counted)."""
        self.usage.model_calls += model_calls
        self.usage.prompt_tokens += prompt_tokens
        self.usage.completion_tokens += completion_tokens
        self.usage.http_429 += http_429

    def progress(
        self, total: int | None, description: str = ""
    ) -> AbstractContextManager[ProgressHandle]:
        """A progress bar: `with ctx.progress(n, "labelling") as bar: bar.advance()`."""
        return self._progress(total, description)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self._warn(message)

    def left_out(self, count: int, message: str) -> None:
        """`count` records are missing from this output for a passing reason (a server error): the output
        is usable, but the step is not reused as complete; the next run asks again for those only."""
        self.missing += count
        self.warn(message)

"""A record-level step's input → shards of work for other processes, and the context a shard runs in.

Which kinds shard, on which role, and what each input record asks of the model is a `ShardRule`. A
shard ends only where the step itself would start a new model batch (its pending requests counted in
input order, cut at a multiple of the model's batch size), so a shard decodes exactly the batches the
local engine decodes: the same records even on a backend whose numerics depend on the batch (padded
batches on a GPU). A shard whose worker died is taken up again after its last complete batch
(`remainder`), for the same reason.

`ShardContext` is the StepContext surface a step's own `run(ctx)` sees on a worker: `items()` and
`role_records()` yield the shard only (the step's other roles whole), `done` holds what is already stored
of the shard's outputs, and `emit()` hands records to a sink (the worker streams them to the driver,
which writes them to the store). It needs no Ray.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dialc.plan import ExpressionsParams, LabelParams, ModelSpec, Plan, ScoreParams, Step, StepParams
from dialc_runtime.engine.context import Account, CountingBackend, RoleInputs
from dialc_runtime.errors import DuplicateRecord

Record = tuple[str, Any]  # (key, record)


@dataclass(frozen=True)
class Entry:
    """One input record of the sharded role, with the output keys it yields and the requests it makes."""

    step_id: str
    key: str
    record: Any
    outputs: tuple[str, ...]
    units: int  # model requests it still needs (its outputs not yet stored)


@dataclass
class Shard:
    """A run of entries whose requests fill whole model batches (except, perhaps, the last shard)."""

    index: int
    entries: list[Entry]
    attempt: int = 0

    @property
    def units(self) -> int:
        return sum(e.units for e in self.entries)

    def outputs(self) -> Iterator[str]:
        for entry in self.entries:
            yield from entry.outputs


@dataclass(frozen=True)
class ShardRule:
    """How one kind shards: the role split into shards, the model it asks, each input's output keys."""

    role: str
    model: ModelSpec
    outputs: Callable[[Any, str, Any], tuple[str, ...]]  # (params, input key, input record) → output keys
    batch: int  # requests the step decodes together

    def entry(self, params: Any, step_id: str, key: str, record: Any, done: Mapping[str, Any]) -> Entry:
        outputs = self.outputs(params, key, record)
        return Entry(step_id, key, record, outputs, sum(1 for k in outputs if k not in done))


def _label_outputs(params: LabelParams, key: str, record: Any) -> tuple[str, ...]:
    from dialc_runtime.quality.best_of import candidate_id

    n = int(getattr(params, "candidates", 1))
    return tuple(candidate_id(key, k, n) for k in range(n))


def _judge_outputs(params: ScoreParams, key: str, record: Any) -> tuple[str, ...]:
    """A judge asks the model only for labels that are valid; the others get a `skipped` verdict."""
    return (str(record["id"]),) if record.get("ok", True) else ()


def _paraphrase_outputs(params: ExpressionsParams, key: str, record: Any) -> tuple[str, ...]:
    from dialc_runtime.steps.expressions import _key as paraphrase_key

    if params.paraphrase is None or record.get("filtered") or record.get("kind") == "paraphrase":
        return ()
    return tuple(paraphrase_key(record, i) for i in range(params.paraphrase.n))


def shard_rule(step: Step) -> ShardRule | None:
    """The rule of a step the engine may shard: label, a judge dimension, paraphrases; else None (the
    step runs whole on the driver; its model calls may still go to workers)."""
    params: StepParams = step.params
    if isinstance(params, LabelParams):
        return ShardRule("prompts", params.model, _label_outputs, params.model.batch_size)  # type: ignore[arg-type]
    if isinstance(params, ScoreParams) and params.dimension.kind == "judge":
        model = params.dimension.model
        return ShardRule("labels", model, _judge_outputs, model.batch_size or 8)  # type: ignore[arg-type]
    if isinstance(params, ExpressionsParams) and params.paraphrase is not None:
        model = params.paraphrase.model
        return ShardRule("tasks", model, _paraphrase_outputs, model.batch_size)  # type: ignore[arg-type]
    return None


def shard_size(batch: int, pending: int, workers: int, per_worker: int = 4, most: int = 64) -> int:
    """Requests per shard: about `per_worker` shards per worker, whole batches, at most `most` batches."""
    batches = math.ceil(pending / max(1, workers * per_worker * batch))
    return batch * max(1, min(most, batches))


def cut(entries: Iterable[Entry], batch: int, size: int) -> Iterator[Shard]:
    """Entries with work → shards of at least `size` requests, each ending where a model batch ends."""
    current: list[Entry] = []
    units, index = 0, 0
    for entry in entries:
        if not entry.units:
            continue  # nothing to ask: the step's own final pass writes whatever else it yields
        current.append(entry)
        units += entry.units
        if units >= size and units % batch == 0:
            yield Shard(index, current)
            current, units, index = [], 0, index + 1
    if current:
        yield Shard(index, current)


def remainder(shard: Shard, stored: set[str], done: Mapping[str, Any], batch: int) -> Shard | None:
    """What is left of a shard whose worker died: the entries after its last batch whose outputs are all
    stored (so the retry decodes the same batches); None when nothing is left."""
    units, start = 0, 0
    for i, entry in enumerate(shard.entries):
        if not all(k in stored or k in done for k in entry.outputs):
            break
        units += entry.units
        if units % batch == 0:
            start = i + 1
    rest = shard.entries[start:]
    return Shard(shard.index, rest, shard.attempt + 1) if rest else None


@dataclass
class ShardTask:
    """What a worker needs to run a step over one shard (picklable)."""

    step: Step
    plan: Plan
    key: str
    seed: int
    shard: Shard
    done: dict[str, Any]  # stored outputs of the shard's entries
    others: dict[str, list[Record]] = field(default_factory=dict)  # the step's other inputs, whole


Sink = Callable[[str, Any, "tuple[str, str] | None"], None]


class ShardContext(RoleInputs):
    """The StepContext surface on a worker, over one shard (see the module docstring)."""

    def __init__(self, task: ShardTask, backend: Callable[[Any], Any], sink: Sink) -> None:
        self.step, self.plan, self.key, self.seed = task.step, task.plan, task.key, task.seed
        self.params: Any = task.step.params
        self.done: dict[str, Any] = dict(task.done)
        self.usage = Account()
        self.warnings: list[str] = []
        self.missing = 0
        self._backend, self._sink = backend, sink
        self._inputs: dict[str, list[Record]] = {s: [] for s in task.step.input_ids}
        for entry in task.shard.entries:
            self._inputs[entry.step_id].append((entry.key, entry.record))
        self._inputs.update(task.others)
        self._emitted: set[str] = set()

    def _input(self, step_id: str) -> list[Record]:
        if step_id not in self._inputs:
            inputs = ", ".join(self.step.input_ids) or "none"
            raise KeyError(f"step {self.step.id} does not read {step_id} (its inputs: {inputs})")
        return self._inputs[step_id]

    def items(self, step_id: str) -> Iterator[Record]:
        return iter(self._input(step_id))

    def records(self, step_id: str) -> Iterator[Any]:
        return (record for _, record in self._input(step_id))

    def count(self, step_id: str) -> int:
        return len(self._input(step_id))

    def lookup(self, step_id: str, keys: list[str]) -> dict[str, Any]:
        wanted = set(keys)
        return {k: r for k, r in self._input(step_id) if k in wanted}

    def input_step(self, step_id: str) -> Step:
        self._input(step_id)
        return self.plan.step(step_id)

    def input_dir(self, step_id: str) -> Path:
        raise NotImplementedError("a step that reads its inputs' files runs on the driver, not in a shard")

    @property
    def out_dir(self) -> Path:
        raise NotImplementedError("a step that writes files runs on the driver, not in a shard")

    final_dir = resume_dir = out_dir

    def emit(self, key: str, record: Any, base: tuple[str, str] | None = None) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"record keys are non-empty strings, got {key!r}")
        if key in self._emitted:
            raise DuplicateRecord(f"step {self.step.id} emitted record key {key!r} twice")
        self._emitted.add(key)
        self._sink(key, record, base)

    def flush(self) -> None:
        """Records go to the sink as they are emitted: nothing waits here."""

    def backend(self, model: ModelSpec | dict[str, Any]) -> CountingBackend:
        return CountingBackend(self._backend(model), self.account)

    def account(self, model_calls: int = 0, prompt_tokens: int = 0, completion_tokens: int = 0,
                http_429: int = 0) -> None:
        self.usage.model_calls += model_calls
        self.usage.prompt_tokens += prompt_tokens
        self.usage.completion_tokens += completion_tokens
        if hasattr(self.usage, "http_429"):
            self.usage.http_429 += http_429

    @contextmanager
    def progress(self, total: int | None, description: str = "") -> Iterator[Any]:
        yield SimpleNamespace(advance=lambda n=1: None)  # the driver shows progress as records arrive

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def left_out(self, count: int, message: str) -> None:
        """Requests a server did not answer: the driver's final pass asks for them again."""
        self.missing += count

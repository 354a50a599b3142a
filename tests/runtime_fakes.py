"""A fake step registry and plan builder → executor tests that run in milliseconds, no models."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # when run as a script by the kill -9 test
    sys.path.insert(0, str(ROOT))

from pydantic import ValidationError  # noqa: E402

from dialc.plan import OpaqueParams, Plan, Span, Step, StepKind, StepParams, fingerprint, params_class  # noqa: E402
from dialc_runtime.engine.context import RoleInputs, StepContext, StepOutput  # noqa: E402
from dialc_runtime.engine.registry import DictRegistry  # noqa: E402
from dialc_runtime.errors import StepFailed  # noqa: E402

SPEC = "specs/fake.dial"


def h(*parts: Any) -> str:
    """A short stable hash: the fake steps' deterministic "work"."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16]


class FakeRegistry(DictRegistry):
    """Fake step kinds with per-step run counters and knobs that are not part of any cache key."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()  # step id → times run() was called
        self.delay = float(os.environ.get("FAKE_DELAY", "0"))  # seconds per generated record
        self.crash_after: dict[str, int] = {}  # step id → raise after this many new records
        kinds: dict[str, Callable[[StepContext], StepOutput]] = {
            "gen": self._gen,
            "map": _map,
            "join": _join,
            "files": _files,
            "fail": _fail,
            "boom": _boom,
            "block": _block,
            "llm": _llm,
        }
        super().__init__({k: self._module(k, fn) for k, fn in kinds.items()})

    def _module(self, kind: str, fn: Callable[[StepContext], StepOutput]) -> Any:
        def run(ctx: StepContext) -> StepOutput:
            self.calls[ctx.step.id] += 1
            return fn(ctx)

        def estimate(step: Step, plan: Plan) -> dict[str, int]:
            n = int(step.params.get("n", 1))
            return {"model_calls": n, "tokens": 10 * n}

        return SimpleNamespace(VERSION="1", run=run, estimate=estimate)

    def _gen(self, ctx: StepContext) -> StepOutput:
        """n records keyed 00000…; skips those already written; slow/crashing on request."""
        n, new = int(ctx.params.get("n")), 0
        with ctx.progress(n, "generating") as bar:
            for i in range(n):
                key = f"{i:05d}"
                if key not in ctx.done:
                    if new == self.crash_after.get(ctx.step.id, -1):
                        raise RuntimeError(f"simulated crash after {new} records")
                    time.sleep(self.delay)
                    ctx.emit(key, {"i": i, "v": h(ctx.seed, key, ctx.params.get("salt", ""))})
                    new += 1
                bar.advance()
        return StepOutput(metrics={"emitted": new, "resumed": len(ctx.done)})


def _map(ctx: StepContext) -> StepOutput:
    """Each input record re-hashed with `salt` (the `note` param is ignored on purpose)."""
    (src,) = ctx.step.input_ids
    for key, rec in ctx.items(src):
        if key not in ctx.done:
            ctx.emit(key, {**rec, "v": h(rec["v"], ctx.params.get("salt", ""))})
    return StepOutput(metrics={"n": ctx.count(src)})


def _join(ctx: StepContext) -> StepOutput:
    """Records of the first input, each with every input's value for the same key."""
    first, *rest = ctx.step.input_ids
    others = [dict(ctx.items(s)) for s in rest]
    for key, rec in ctx.items(first):
        ctx.emit(key, {"v": [rec["v"]] + [o.get(key, {}).get("v") for o in others]})
    return StepOutput()


def _files(ctx: StepContext) -> StepOutput:
    """Writes out.txt from its input and the listed files (params.files), one record per file."""
    lines = [rec["v"] for s in ctx.step.input_ids for rec in ctx.records(s)]
    (ctx.out_dir / "out.txt").write_text("\n".join(lines), encoding="utf-8")
    for name in ctx.params.get("files", []):
        ctx.emit(name, {"text": Path(name).read_text(encoding="utf-8")})
    return StepOutput(metrics={"lines": len(lines)})


def _fail(ctx: StepContext) -> StepOutput:
    raise StepFailed(ctx.params.get("message", "bad data"))


def _boom(ctx: StepContext) -> StepOutput:
    return StepOutput(metrics={"x": 1 / 0})


def _block(ctx: StepContext) -> StepOutput:
    return StepOutput(status="blocked", message=ctx.params.get("message", "waiting for review"))


def _llm(ctx: StepContext) -> StepOutput:
    """One backend call per input record, batched."""
    (src,) = ctx.step.input_ids
    model = ctx.backend(ctx.params.get("model"))
    recs = list(ctx.items(src))
    for (key, _), out in zip(recs, model.generate([rec["v"] for _, rec in recs]), strict=True):
        ctx.emit(key, {"answer": out.text})
    return StepOutput()


# the role an input of each kind is read under, for plans whose steps are of the real kinds
ROLE_OF_INPUT = {"ingest": "dialogues", "tasks": "tasks", "evolve": "tasks", "review": "tasks",
                 "expressions": "expressions", "sample": "prompts", "label": "labels", "score": "scores",
                 "filter": "records", "finetune": "adapter"}


def typed_params(kind: str, params: dict[str, Any]) -> StepParams:
    """The kind's typed params when they are complete, else kept as given (a fake implementation of a
    real kind reads what it likes; the real ones get complete params from the tests)."""
    try:
        return params_class(kind)(**params)
    except ValidationError:
        return OpaqueParams(**params)


def roles(kind: str, inputs: list[str]) -> dict[str, list[str]]:
    """Inputs by role: real kinds by their inputs' kinds, fake kinds all under "in"."""
    if kind not in {k.value for k in StepKind}:
        return {"in": list(inputs)} if inputs else {}
    by_role: dict[str, list[str]] = {}
    for step_id in inputs:
        by_role.setdefault(ROLE_OF_INPUT.get(step_id.split(".", 1)[0], "in"), []).append(step_id)
    return by_role


def make_plan(steps: list[tuple[str, dict[str, Any], list[str]]], seed: int = 7) -> Plan:
    """Steps as (id, params, inputs) in topological order → a Plan with spans and fingerprints."""
    built: list[Step] = []
    prints: dict[str, str] = {}
    for line, (step_id, params, inputs) in enumerate(steps, start=1):
        kind, name = step_id.split(".", 1)
        typed = typed_params(kind, params)
        fp = fingerprint(kind, name, typed.model_dump(mode="json"), [prints[i] for i in inputs])
        prints[step_id] = fp
        span = Span(file=SPEC, line=line, col=3, end_line=line, end_col=20)
        built.append(Step(id=step_id, kind=kind, name=name, params=typed, inputs=roles(kind, inputs), span=span,
                          fingerprint=fp))
    return Plan(pipeline="fake", spec=SPEC, settings={"seed": seed}, steps=built)


def resume_plan(n: int) -> Plan:
    """The plan of the resume tests: a slow generator and a step that reads it."""
    return make_plan([("gen.slow", {"n": n}, []), ("map.after", {"salt": "s"}, ["gen.slow"])])


def main(argv: list[str]) -> None:
    """`python tests/runtime_fakes.py RUN_DIR N`: run resume_plan(N) (set FAKE_DELAY to slow it)."""
    from dialc_runtime.engine.executor import execute

    execute(resume_plan(int(argv[1])), Path(argv[0]), registry=FakeRegistry(), quiet=True)


if __name__ == "__main__":
    main(sys.argv[1:])


class MemoryContext(RoleInputs):
    """The documented StepContext surface over in-memory input records, for testing one step module.

    `params` are validated into the kind's typed model (as the compiler would build them); inputs
    are {step id: records}, read under the roles the kind declares."""

    def __init__(self, step_id: str, params: dict[str, Any], inputs: dict[str, list[Any]], *,
                 out_dir: Path | None = None, backend: Any = None, done: dict[str, Any] | None = None,
                 locations: dict[str, list[str]] | None = None, seed: int = 7) -> None:
        kind, name = step_id.split(".", 1)
        typed = params_class(kind)(**params)
        self.step = Step(id=step_id, kind=kind, name=name, params=typed, inputs=roles(kind, list(inputs)),
                         locations=locations or {})
        self.params: Any = typed
        self.seed = seed
        self.plan = Plan(pipeline="fake", spec=SPEC, settings={"seed": seed}, steps=[])
        self.done = dict(done or {})
        self.emitted: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.models: list[dict[str, Any]] = []
        self.advanced = 0
        self._inputs, self._backend, self._out_dir = inputs, backend, out_dir

    def records(self, step_id: str) -> Iterator[Any]:
        return iter(self._inputs[step_id])

    def items(self, step_id: str) -> Iterator[tuple[str, Any]]:
        return ((f"{i:06d}", r) for i, r in enumerate(self._inputs[step_id]))

    def count(self, step_id: str) -> int:
        return len(self._inputs[step_id])

    def input_step(self, step_id: str) -> Any:
        kind, name = step_id.split(".", 1)
        return SimpleNamespace(id=step_id, kind=kind, name=name)

    def input_dir(self, step_id: str) -> Path:
        assert self._out_dir is not None
        return self._out_dir.parent / step_id

    @property
    def out_dir(self) -> Path:
        assert self._out_dir is not None, "this test gave the step no out_dir"
        self._out_dir.mkdir(parents=True, exist_ok=True)
        return self._out_dir

    @property
    def final_dir(self) -> Path:
        return self.out_dir  # no staging folder here: files are written where they stay

    @property
    def resume_dir(self) -> Path:
        assert self._out_dir is not None, "this test gave the step no out_dir"
        path = self._out_dir.parent / f"{self._out_dir.name}.resume"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def emit(self, key: str, record: Any, base: tuple[str, str] | None = None) -> None:
        """As StepContext.emit; a record with a `base` is kept whole (the base record plus its own fields)."""
        assert key not in self.emitted, f"{key} emitted twice"
        if base is not None:
            record = {**dict(self.items(base[0]))[base[1]], **record}
        self.emitted[key] = json.loads(json.dumps(record))  # records must be JSON

    def lookup(self, step_id: str, keys: list[str]) -> dict[str, Any]:
        """By key; a score step's records are keyed by their id in a real store, so ids are keys here too."""
        found = {str(r["id"]): r for r in self._inputs[step_id] if isinstance(r, dict) and "id" in r}
        found.update(self.items(step_id))
        return {k: found[k] for k in keys if k in found}

    def flush(self) -> None:
        pass

    def backend(self, model: Any) -> Any:
        self.models.append(model.config() if hasattr(model, "config") else model)
        return self._backend

    @contextmanager
    def progress(self, total: int | None, description: str = "") -> Iterator[Any]:
        yield SimpleNamespace(advance=lambda n=1: setattr(self, "advanced", self.advanced + n))

    def account(self, model_calls: int = 0, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)

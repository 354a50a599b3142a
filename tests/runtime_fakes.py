"""A fake step registry and plan builder → executor tests that run in milliseconds, no models."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # when run as a script by the kill -9 test
    sys.path.insert(0, str(ROOT))

from dialc.plan import Plan, Span, Step, fingerprint  # noqa: E402
from dialc_runtime.engine.context import StepContext, StepOutput  # noqa: E402
from dialc_runtime.errors import StepFailed  # noqa: E402
from dialc_runtime.engine.registry import DictRegistry  # noqa: E402

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
        n, new = int(ctx.params["n"]), 0
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
    (src,) = ctx.step.inputs
    for key, rec in ctx.items(src):
        if key not in ctx.done:
            ctx.emit(key, {**rec, "v": h(rec["v"], ctx.params.get("salt", ""))})
    return StepOutput(metrics={"n": ctx.count(src)})


def _join(ctx: StepContext) -> StepOutput:
    """Records of the first input, each with every input's value for the same key."""
    first, *rest = ctx.step.inputs
    others = [dict(ctx.items(s)) for s in rest]
    for key, rec in ctx.items(first):
        ctx.emit(key, {"v": [rec["v"]] + [o.get(key, {}).get("v") for o in others]})
    return StepOutput()


def _files(ctx: StepContext) -> StepOutput:
    """Writes out.txt from its input and the listed files (params.files), one record per file."""
    lines = [rec["v"] for s in ctx.step.inputs for rec in ctx.records(s)]
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
    (src,) = ctx.step.inputs
    model = ctx.backend(ctx.params["model"])
    recs = list(ctx.items(src))
    for (key, _), out in zip(recs, model.generate([rec["v"] for _, rec in recs]), strict=True):
        ctx.emit(key, {"answer": out.text})
    return StepOutput()


def make_plan(steps: list[tuple[str, dict[str, Any], list[str]]], seed: int = 7) -> Plan:
    """Steps as (id, params, inputs) in topological order → a Plan with spans and fingerprints."""
    built: list[Step] = []
    prints: dict[str, str] = {}
    for line, (step_id, params, inputs) in enumerate(steps, start=1):
        kind, name = step_id.split(".", 1)
        fp = fingerprint(kind, name, params, [prints[i] for i in inputs])
        prints[step_id] = fp
        span = Span(file=SPEC, line=line, col=3, end_line=line, end_col=20)
        built.append(
            Step(
                id=step_id,
                kind=kind,
                name=name,
                params=params,
                inputs=inputs,
                span=span,
                fingerprint=fp,
            )
        )
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

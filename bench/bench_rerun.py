"""A CPU-bound fake pipeline → wall time of a first run, of a no-op re-run, and their ratio.

    python bench/bench_rerun.py [--records 3000] [--rounds 300]

The re-run should cost under 5% of the first run: every step is a cache hit, and the only work
left is computing keys and verifying each stored output's digest.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialc.plan import Plan, Step, fingerprint  # noqa: E402
from dialc_runtime.engine.context import StepContext, StepOutput  # noqa: E402
from dialc_runtime.engine.executor import execute  # noqa: E402
from dialc_runtime.engine.registry import DictRegistry  # noqa: E402


def work(text: str, rounds: int) -> str:
    """`rounds` chained sha256: the stand-in for a model call."""
    digest = text.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:32]


def generate(ctx: StepContext) -> StepOutput:
    for i in range(ctx.params["records"]):
        key = f"{i:06d}"
        if key not in ctx.done:
            ctx.emit(key, {"i": i, "text": work(f"{ctx.seed}:{key}", ctx.params["rounds"])})
    return StepOutput()


def transform(ctx: StepContext) -> StepOutput:
    (src,) = ctx.step.inputs
    for key, rec in ctx.items(src):
        if key not in ctx.done:
            ctx.emit(key, {**rec, ctx.step.name: work(rec["text"], ctx.params["rounds"])})
    return StepOutput()


def build_plan(records: int, rounds: int) -> Plan:
    """gen.prompts → map.labels → {map.score_a, map.score_b}: four steps, `records` each."""
    shape = [
        ("gen", "prompts", []),
        ("map", "labels", ["gen.prompts"]),
        ("map", "score_a", ["map.labels"]),
        ("map", "score_b", ["map.labels"]),
    ]
    steps: list[Step] = []
    prints: dict[str, str] = {}
    for kind, name, inputs in shape:
        params: dict[str, Any] = {"records": records, "rounds": rounds}
        fp = prints[f"{kind}.{name}"] = fingerprint(kind, name, params, [prints[i] for i in inputs])
        steps.append(
            Step(
                id=f"{kind}.{name}",
                kind=kind,
                name=name,
                params=params,
                inputs=inputs,
                fingerprint=fp,
            )
        )
    return Plan(pipeline="bench", spec="bench.dial", settings={"seed": 1}, steps=steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000, help="records per step")
    parser.add_argument("--rounds", type=int, default=300, help="sha256 rounds per record")
    args = parser.parse_args()
    registry = DictRegistry(
        {
            "gen": SimpleNamespace(VERSION="1", run=generate),
            "map": SimpleNamespace(VERSION="1", run=transform),
        }
    )
    plan = build_plan(args.records, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            res = execute(plan, Path(tmp), registry=registry, quiet=True, console=_null_console())
            times.append(time.perf_counter() - t0)
        assert res.by_status("cached") == [s.id for s in plan.steps], "re-run was not a no-op"
    first, again = times
    print(f"steps: {len(plan.steps)}  records: {args.records * len(plan.steps)}")
    print(f"first run:  {first:.3f} s")
    print(f"no-op rerun: {again:.3f} s")
    print(f"ratio:      {again / first:.1%}  (target < 5%)")


def _null_console() -> Any:
    from rich.console import Console

    return Console(file=io.StringIO())  # the step lines are not part of what we measure


if __name__ == "__main__":
    main()

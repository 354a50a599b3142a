"""How a step's run(ctx) is executed: in this process (local, the default) or on a Ray cluster."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dialc_runtime.engine.context import BackendPool, StepContext, StepOutput

if TYPE_CHECKING:
    from dialc.plan import Plan
    from dialc_runtime.engine.registry import StepModule

ENGINES = ("local", "ray")


class Engine(Protocol):
    """Runs one step attempt against the executor's context; the executor keeps store, cache and lineage."""

    def backend_pool(self) -> BackendPool: ...

    def run(self, module: StepModule, ctx: StepContext[Any]) -> StepOutput: ...

    def close(self) -> None: ...


class LocalEngine:
    """Every step in this process, models loaded here (once per run)."""

    def backend_pool(self) -> BackendPool:
        return BackendPool()

    def run(self, module: StepModule, ctx: StepContext[Any]) -> StepOutput:
        return module.run(ctx) or StepOutput()

    def close(self) -> None:
        pass


def make_engine(name: str = "local", address: str | None = None, workers: int | None = None,
                plan: Plan | None = None) -> Engine:
    """`dialc run --engine NAME [--address ADDR] [--workers N]`; the Ray engine imports Ray only here. With
    the plan, a model the engine cannot run is refused first (ValueError, with where the spec declares it)."""
    problem = next(iter(engine_problems(plan, name)), None) if plan is not None else None
    if problem:
        raise ValueError(problem)
    if name == "local":
        if address is not None or workers is not None:
            raise ValueError("--address and --workers are options of --engine ray")
        return LocalEngine()
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError('--engine ray needs Ray: pip install "dialc[ray]"') from None
        from dialc_runtime.engine.ray_engine import RayEngine

        return RayEngine(address, workers)
    raise ValueError(f"unknown engine {name!r} (known: {', '.join(ENGINES)})")


def engine_problems(plan: Plan, name: str) -> Iterator[str]:
    """Models of the plan that engine `name` cannot run: `backend = vllm` needs `--engine ray` and vLLM."""
    from dialc.plan import ModelSpec

    seen: set[str] = set()
    for step in plan.steps:
        for model in _models(step.params, ModelSpec):
            if model.backend != "vllm" or model.name in seen:
                continue
            seen.add(model.name)
            where = _declared_at(plan.spec, model.name)
            if name != "ray":
                yield (f"{where}: model '{model.name}' has backend = vllm, which runs in vLLM engines through "
                       "ray.data.llm: use `dialc run --engine ray` (the local engine does not run vLLM)")
            elif importlib.util.find_spec("vllm") is None:
                yield (f"{where}: model '{model.name}' has backend = vllm, but vLLM is not installed here: "
                       'pip install vllm "ray[data,llm]" (on the driver and on every GPU node of the cluster)')


def _models(value: Any, kind: type) -> Iterator[Any]:
    """Every model spec in a step's parameters (at any depth)."""
    if isinstance(value, kind):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _models(item, kind)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _models(item, kind)
    elif hasattr(type(value), "model_fields"):
        for field in type(value).model_fields:
            yield from _models(getattr(value, field), kind)


def _declared_at(spec: str, name: str) -> str:
    """SPEC:LINE of `model NAME` (the spec itself; SPEC alone when an include declares it)."""
    try:
        text = Path(spec).read_text(encoding="utf-8")
    except OSError:
        return spec
    found = re.search(rf"^[ \t]*model[ \t]+{re.escape(name)}\b", text, re.MULTILINE)
    return f"{spec}:{text.count(chr(10), 0, found.start()) + 1}" if found else spec

"""How a step's run(ctx) is executed: in this process (local, the default) or on a Ray cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from dialc_runtime.engine.context import BackendPool, StepContext, StepOutput

if TYPE_CHECKING:
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


def make_engine(name: str = "local", address: str | None = None, workers: int | None = None) -> Engine:
    """`dialc run --engine NAME [--address ADDR] [--workers N]`; the Ray engine imports Ray only here."""
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

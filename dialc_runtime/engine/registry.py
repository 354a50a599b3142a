"""Step kind → implementation module (`VERSION`, `run(ctx)`, optional `estimate(step, plan)`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from dialc_runtime.errors import UnknownStepKind

if TYPE_CHECKING:
    from dialc.plan import Plan, Step
    from dialc_runtime.engine.context import StepContext, StepOutput


class StepModule(Protocol):
    """What a step implementation provides (docs/contracts.md, "Step implementations")."""

    VERSION: str

    def run(self, ctx: StepContext) -> StepOutput: ...


class Registry(Protocol):
    """Finds the implementation of a step kind; raises UnknownStepKind when there is none."""

    def get(self, kind: str) -> StepModule: ...


class ModuleRegistry:
    """The default: `dialc_runtime.steps.<kind>`, imported on first use so unused kinds cost nothing."""

    def __init__(self, package: str = "dialc_runtime.steps") -> None:
        self.package = package
        self._modules: dict[str, StepModule] = {}

    def get(self, kind: str) -> StepModule:
        if kind not in self._modules:
            name = f"{self.package}.{kind}"
            try:
                module: Any = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:  # the module exists but one of its imports is missing
                    raise
                raise UnknownStepKind(kind, f"no module {name}") from None
            check_module(kind, module)
            self._modules[kind] = module
        return self._modules[kind]


class DictRegistry:
    """An explicit mapping, for tests, benchmarks and embedding dialc in other programs."""

    def __init__(self, modules: Mapping[str, StepModule]) -> None:
        self.modules = dict(modules)

    def get(self, kind: str) -> StepModule:
        if kind not in self.modules:
            known = ", ".join(sorted(self.modules)) or "none"
            raise UnknownStepKind(kind, f"registered kinds: {known}")
        return self.modules[kind]


def check_module(kind: str, module: Any) -> None:
    """A step module must say its VERSION (it is part of every cache key) and define run()."""
    if not isinstance(getattr(module, "VERSION", None), str) or not callable(
        getattr(module, "run", None)
    ):
        raise UnknownStepKind(kind, "module must define VERSION: str and run(ctx)")


def estimator(module: StepModule) -> Callable[[Step, Plan], dict[str, Any]] | None:
    """The module's optional `estimate(step, plan) -> {model_calls, tokens}`."""
    fn = getattr(module, "estimate", None)
    return fn if callable(fn) else None


def default_registry() -> Registry:
    return ModuleRegistry()

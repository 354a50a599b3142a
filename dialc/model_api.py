"""Dataclass instances → dicts, JSON and copies: the slice of pydantic's model API that spans, the AST and the IR use.

Spans, syntax nodes and the IR are plain dataclasses rather than pydantic models: `dialc validate`
builds hundreds of thousands of them on a big spec and must answer at once, and importing pydantic
and building its validators costs more than the whole check of a normal spec. The types stay
declared (mypy checks them); the only builder of these nodes is dialc itself. The plan, the contract
with the runtime, stays pydantic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from typing import Any, Literal, Self

DumpMode = Literal["python", "json"]


class ModelAPI:
    """Mixin for dataclasses: `model_dump`, `model_dump_json` and `model_copy`, as pydantic spells them."""

    __slots__ = ()

    def model_dump(self, *, mode: DumpMode = "python", exclude: Collection[str] | None = None) -> dict[str, Any]:
        """Fields (recursively) as dicts, lists and scalars; `exclude` names top-level fields to leave out."""
        skip = exclude or ()
        return {f.name: dump(getattr(self, f.name), mode)
                for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if f.name not in skip}

    def model_dump_json(self, *, indent: int | None = None, exclude: Collection[str] | None = None) -> str:
        """JSON text like pydantic's: non-ASCII kept, compact without `indent`."""
        separators = (",", ":") if indent is None else (",", ": ")
        return json.dumps(self.model_dump(mode="json", exclude=exclude), indent=indent, ensure_ascii=False,
                          separators=separators)

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A shallow copy with some fields replaced (not re-validated, as in pydantic)."""
        return dataclasses.replace(self, **(update or {}))  # type: ignore[type-var]


def dump(value: Any, mode: DumpMode = "python") -> Any:
    """One value as model_dump writes it: nodes become dicts; in JSON mode tuples and sets become lists."""
    if isinstance(value, ModelAPI):
        return value.model_dump(mode=mode)
    if isinstance(value, list):
        return [dump(v, mode) for v in value]
    if isinstance(value, dict):
        return {k: dump(v, mode) for k, v in value.items()}
    if isinstance(value, tuple | set | frozenset):
        items = [dump(v, mode) for v in value]
        return items if mode == "json" else type(value)(items)
    return value

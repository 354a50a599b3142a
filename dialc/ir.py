"""The resolved spec (IR): declarations with typed field values, references still by name."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dialc import syntax as ast
from dialc.source import Span


class RefIR(BaseModel):
    """A by-name reference to another declaration, with where it was written."""

    model_config = ConfigDict(frozen=True)
    name: str
    span: Span


class EntryIR(BaseModel):
    name: str
    description: str
    weight: float
    span: Span


class DeclIR(BaseModel):
    """One declaration after type checking: fields hold Python values (refs as RefIR)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    kind: str
    name: str
    span: Span
    name_span: Span
    qualifier: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    field_spans: dict[str, Span] = Field(default_factory=dict)
    entries: list[EntryIR] = Field(default_factory=list)
    children: list[DeclIR] = Field(default_factory=list)
    keep: list[ast.Keep] = Field(default_factory=list)
    expects: list[ast.Expect] = Field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.kind}.{self.name}"

    def span_of(self, field: str) -> Span:
        return self.field_spans.get(field, self.span)


class IR(BaseModel):
    """All declarations of a spec (includes merged), in source order."""

    file: str
    spec_dir: str  # directory relative paths in the spec are resolved against
    decls: list[DeclIR] = Field(default_factory=list)

    def _index(self) -> tuple[dict[str, list[DeclIR]], dict[str, list[DeclIR]]]:
        """By kind and by name, rebuilt when declarations were added (lookups are per reference)."""
        cached = self.__dict__.get("_index_cache")
        if cached is None or cached[0] != len(self.decls):
            by_kind: dict[str, list[DeclIR]] = {}
            by_name: dict[str, list[DeclIR]] = {}
            for decl in self.decls:
                by_kind.setdefault(decl.kind, []).append(decl)
                by_name.setdefault(decl.name, []).append(decl)
            cached = (len(self.decls), by_kind, by_name)
            self.__dict__["_index_cache"] = cached
        return cached[1], cached[2]

    def of_kind(self, kind: str) -> list[DeclIR]:
        return list(self._index()[0].get(kind, []))

    def find(self, name: str, kinds: tuple[str, ...] | None = None) -> list[DeclIR]:
        return [d for d in self._index()[1].get(name, []) if kinds is None or d.kind in kinds]

    @property
    def pipeline(self) -> DeclIR | None:
        found = self.of_kind("pipeline")
        return found[0] if found else None

    @property
    def seed(self) -> int:
        pipeline = self.pipeline
        return int(pipeline.fields.get("seed", 0)) if pipeline else 0

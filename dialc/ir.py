"""The resolved spec (IR): declarations with typed field values, references still by name."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dialc import ast
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

    def of_kind(self, kind: str) -> list[DeclIR]:
        return [d for d in self.decls if d.kind == kind]

    def find(self, name: str, kinds: tuple[str, ...] | None = None) -> list[DeclIR]:
        return [d for d in self.decls if d.name == name and (kinds is None or d.kind in kinds)]

    @property
    def pipeline(self) -> DeclIR | None:
        found = self.of_kind("pipeline")
        return found[0] if found else None

    @property
    def seed(self) -> int:
        pipeline = self.pipeline
        return int(pipeline.fields.get("seed", 0)) if pipeline else 0

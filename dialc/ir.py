"""The resolved spec (IR): declarations with typed field values, references still by name."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dialc.model_api import ModelAPI
from dialc.source import Span


@dataclass(frozen=True, slots=True, kw_only=True)
class RefIR(ModelAPI):
    """A by-name reference to another declaration, with where it was written."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteralIR(ModelAPI):
    """A number or string in a keep rule or data test."""

    value: int | float | str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class NameIR(ModelAPI):
    """A dotted name in an expression: a dimension, `score`, a record field or a metric."""

    parts: tuple[str, ...]
    span: Span

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallIR(ModelAPI):
    """`func(arg, …)`: arguments are names or literals (mean(helpful), balance_p(scenario))."""

    func: str
    args: tuple[NameIR | LiteralIR, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class NotIR(ModelAPI):
    operand: ExprIR
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryIR(ModelAPI):
    op: str  # and, or, >=, <=, ==, !=, >, <
    left: ExprIR
    right: ExprIR
    span: Span


ExprIR = LiteralIR | NameIR | CallIR | NotIR | BinaryIR


def expr_nodes(expr: ExprIR) -> Iterator[ExprIR]:
    """Every node of a keep/expect expression, depth first (call arguments are not nodes)."""
    yield expr
    if isinstance(expr, BinaryIR):
        yield from expr_nodes(expr.left)
        yield from expr_nodes(expr.right)
    elif isinstance(expr, NotIR):
        yield from expr_nodes(expr.operand)


def expr_names(expr: ExprIR) -> Iterator[NameIR]:
    """Every name of a keep/expect expression (call arguments excluded)."""
    return (node for node in expr_nodes(expr) if isinstance(node, NameIR))


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleIR(ModelAPI):
    """A keep rule or a data test (`expect`): one expression and where it was written."""

    expr: ExprIR
    span: Span


@dataclass(kw_only=True)
class EntryIR(ModelAPI):
    name: str
    description: str
    weight: float
    span: Span


@dataclass(kw_only=True)
class DeclIR(ModelAPI):
    """One declaration after type checking: fields hold Python values (refs as RefIR)."""

    kind: str
    name: str
    span: Span
    name_span: Span
    qualifier: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    field_spans: dict[str, Span] = field(default_factory=dict)
    entries: list[EntryIR] = field(default_factory=list)
    children: list[DeclIR] = field(default_factory=list)
    keep: list[RuleIR] = field(default_factory=list)
    expects: list[RuleIR] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.kind}.{self.name}"

    def span_of(self, field: str) -> Span:
        return self.field_spans.get(field, self.span)


@dataclass(kw_only=True)
class IR(ModelAPI):
    """All declarations of a spec (includes merged), in source order."""

    file: str
    spec_dir: str  # directory relative paths in the spec are resolved against
    decls: list[DeclIR] = field(default_factory=list)

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

    def seed_of(self, decl: DeclIR) -> int:
        """A declaration's seed: its own `seed`, else the pipeline's."""
        return int(decl.fields.get("seed", self.seed))

    def evaluation_holdout(self, evaluate: DeclIR) -> tuple[float, int] | None:
        """(fraction, seed) of the dialogues an evaluation holds out, or None without a domain part.

        The one definition of the hold-out: checks compare it, the compiler writes it into the
        fine-tune, study and evaluate params, and the runtime only reads those."""
        domain = evaluate.fields.get("domain") or {}
        fraction = domain.get("fraction")
        return (float(fraction), self.seed_of(evaluate)) if fraction is not None else None

    def evaluation_gold(self, evaluate: DeclIR) -> DeclIR | None:
        """The testset an evaluation scores against (`domain = gold(NAME)`), or None."""
        ref = (evaluate.fields.get("domain") or {}).get("gold")
        found = self.find(ref.name, ("testset",)) if isinstance(ref, RefIR) else []
        return found[0] if found else None

    def finetune_holdout(self, finetune: DeclIR) -> tuple[float, int] | None:
        """The hold-out a fine-tune leaves out of training: that of the first evaluation of it with one."""
        for evaluate in self.of_kind("evaluate"):
            model = evaluate.fields.get("model")
            if isinstance(model, RefIR) and model.name == finetune.name:
                holdout = self.evaluation_holdout(evaluate)
                if holdout is not None:
                    return holdout
        return None

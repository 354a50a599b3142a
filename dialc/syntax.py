"""The syntax tree of a .dial file: typed, frozen dataclass nodes, each with the span it was parsed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from dialc.model_api import ModelAPI
from dialc.source import Span


# every node: immutable and hashable (like a frozen pydantic model), built with keywords, compact
@dataclass(frozen=True, slots=True, kw_only=True)
class Node(ModelAPI):
    span: Span


# ---- values -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Str(Node):
    type: Literal["str"] = "str"
    value: str
    long: bool = False  # written as """…""": the formatter keeps it multi-line


@dataclass(frozen=True, slots=True, kw_only=True)
class Num(Node):
    type: Literal["num"] = "num"
    value: int | float
    text: str  # as written, so the formatter keeps 100_000 readable


@dataclass(frozen=True, slots=True, kw_only=True)
class Name(Node):
    type: Literal["name"] = "name"
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Range(Node):
    type: Literal["range"] = "range"
    lo: Num
    hi: Num


@dataclass(frozen=True, slots=True, kw_only=True)
class ListV(Node):
    type: Literal["list"] = "list"
    items: list[Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pair(Node):
    key: str
    key_span: Span
    value: Value


@dataclass(frozen=True, slots=True, kw_only=True)
class DictV(Node):
    type: Literal["dict"] = "dict"
    pairs: list[Pair]


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(Node):
    type: Literal["call"] = "call"
    func: str
    args: list[Value]
    kwargs: list[Pair]


@dataclass(frozen=True, slots=True, kw_only=True)
class Product(Node):
    type: Literal["product"] = "product"
    items: list[Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockV(Node):
    type: Literal["block"] = "block"
    kind: str
    body: list[Member]


Value = Union[Str, Num, Name, Range, ListV, DictV, Call, Product, BlockV]  # noqa: UP007


# ---- expressions (keep / expect) ------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Ref(Node):
    type: Literal["ref"] = "ref"
    parts: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Not(Node):
    type: Literal["not"] = "not"
    operand: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class BinOp(Node):
    type: Literal["binop"] = "binop"
    op: str  # and, or, >=, <=, ==, !=, >, <
    left: Expr
    right: Expr


Expr = Union[Num, Str, Ref, Call, Not, BinOp]  # noqa: UP007


# ---- output schema types --------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class TypeExpr(Node):
    base: str  # int, float, str, bool, enum, list
    options: list[str] = field(default_factory=list)  # enum(a, b)
    item: TypeExpr | None = None  # [str]
    optional: bool = False
    lo: Num | None = None  # [lo..hi]
    hi: Num | None = None
    keywords: dict[str, Num] = field(default_factory=dict)  # (max 40), (min 1)


# ---- members and declarations ---------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Assign(Node):
    member: Literal["assign"] = "assign"
    name: str
    name_span: Span
    value: Value


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry(Node):
    member: Literal["entry"] = "entry"
    name: str
    name_span: Span
    description: Str
    weight: Num | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaField(Node):
    member: Literal["schema_field"] = "schema_field"
    name: str
    name_span: Span
    type: TypeExpr


@dataclass(frozen=True, slots=True, kw_only=True)
class Keep(Node):
    member: Literal["keep"] = "keep"
    expr: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Expect(Node):
    member: Literal["expect"] = "expect"
    expr: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Word(Node):
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Decl(Node):
    member: Literal["decl"] = "decl"
    words: list[Word]  # kind, then name, then qualifiers: `dimension grounded grounding`
    body: list[Member]

    @property
    def kind(self) -> str:
        return self.words[0].text

    @property
    def name(self) -> str | None:
        return self.words[1].text if len(self.words) > 1 else None


Member = Union[Assign, Entry, SchemaField, Keep, Expect, Decl]  # noqa: UP007


@dataclass(frozen=True, slots=True, kw_only=True)
class Include(Node):
    path: Str


@dataclass(frozen=True, slots=True, kw_only=True)
class Comment(Node):
    text: str


@dataclass(kw_only=True)
class Module(ModelAPI):
    """One parsed file: its includes, declarations and comments (kept for the formatter)."""

    file: str
    includes: list[Include] = field(default_factory=list)
    decls: list[Decl] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)

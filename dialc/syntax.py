"""The syntax tree of a .dial file: pydantic nodes, each with the span it was parsed from."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from dialc.source import Span


class Node(BaseModel):
    model_config = ConfigDict(frozen=True)
    span: Span


# ---- values -------------------------------------------------------------------------------
class Str(Node):
    type: Literal["str"] = "str"
    value: str
    long: bool = False  # written as """…""": the formatter keeps it multi-line


class Num(Node):
    type: Literal["num"] = "num"
    value: int | float
    text: str  # as written, so the formatter keeps 100_000 readable


class Name(Node):
    type: Literal["name"] = "name"
    name: str


class Range(Node):
    type: Literal["range"] = "range"
    lo: Num
    hi: Num


class ListV(Node):
    type: Literal["list"] = "list"
    items: list[Value]


class Pair(Node):
    key: str
    key_span: Span
    value: Value


class DictV(Node):
    type: Literal["dict"] = "dict"
    pairs: list[Pair]


class Call(Node):
    type: Literal["call"] = "call"
    func: str
    args: list[Value]
    kwargs: list[Pair]


class Product(Node):
    type: Literal["product"] = "product"
    items: list[Value]


class BlockV(Node):
    type: Literal["block"] = "block"
    kind: str
    body: list[Member]


Value = Union[Str, Num, Name, Range, ListV, DictV, Call, Product, BlockV]  # noqa: UP007


# ---- expressions (keep / expect) ------------------------------------------------------------
class Ref(Node):
    type: Literal["ref"] = "ref"
    parts: list[str]


class Not(Node):
    type: Literal["not"] = "not"
    operand: Expr


class BinOp(Node):
    type: Literal["binop"] = "binop"
    op: str  # and, or, >=, <=, ==, !=, >, <
    left: Expr
    right: Expr


Expr = Union[Num, Str, Ref, Call, Not, BinOp]  # noqa: UP007


# ---- output schema types --------------------------------------------------------------------
class TypeExpr(Node):
    base: str  # int, float, str, bool, enum, list
    options: list[str] = Field(default_factory=list)  # enum(a, b)
    item: TypeExpr | None = None  # [str]
    optional: bool = False
    lo: Num | None = None  # [lo..hi]
    hi: Num | None = None
    keywords: dict[str, Num] = Field(default_factory=dict)  # (max 40), (min 1)


# ---- members and declarations ---------------------------------------------------------------
class Assign(Node):
    member: Literal["assign"] = "assign"
    name: str
    name_span: Span
    value: Value


class Entry(Node):
    member: Literal["entry"] = "entry"
    name: str
    name_span: Span
    description: Str
    weight: Num | None = None


class SchemaField(Node):
    member: Literal["schema_field"] = "schema_field"
    name: str
    name_span: Span
    type: TypeExpr


class Keep(Node):
    member: Literal["keep"] = "keep"
    expr: Expr


class Expect(Node):
    member: Literal["expect"] = "expect"
    expr: Expr


class Word(Node):
    text: str


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


class Include(Node):
    path: Str


class Comment(Node):
    text: str


class Module(BaseModel):
    """One parsed file: its includes, declarations and comments (kept for the formatter)."""

    file: str
    includes: list[Include] = Field(default_factory=list)
    decls: list[Decl] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)


for _model in (ListV, Pair, DictV, Call, Product, BlockV, Not, BinOp, TypeExpr, Decl):
    _model.model_rebuild()

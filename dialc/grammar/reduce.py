"""Grammar rules → LALR reduce callbacks that build the caller's nodes directly: Lark's shapes and positions, no tree.

Lark's parser calls one callback per reduced rule with the rule's raw children (the tokens and the
values of its sub-rules). By default those callbacks build a lark.Tree, filter out anonymous tokens,
splice `_rule` helpers, inline single-child `?rule`s and propagate positions; a Transformer then walks
the tree again. On a 10,000-task spec that is most of `dialc validate`'s time, so the front end installs
these callbacks instead: the same filtering, splicing, inlining and positions (including Lark's
"container" extent of an inlined `?rule`, e.g. a parenthesized expression), handed straight to a builder
method `rule_name(extent, items)`. tests/test_parser_sync.py checks that both routes build equal ASTs.

A value on the parser's stack is either a Token or a triple (value, first, last): what a rule built,
and the (line, column) of its first character and just past its last (None for an empty rule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Pos = tuple[int, int]  # (line, column), 1-based, as Lark counts them
Extent = tuple[Pos | None, Pos | None]  # where a rule's text starts and ends; (None, None) when it is empty
Method = Callable[[Extent, list[Any]], Any]
Built = tuple[Any, Pos | None, Pos | None]  # what a rule built, and where its text starts and ends


def install(lark: Any, token_type: Any, method_for: Callable[[str], Method | None]) -> None:
    """Replace the parser's tree-building callbacks with direct calls to `method_for(rule name)`.

    Every rule that is not inlined or spliced needs a method: a grammar edit that adds one fails here,
    at the first parse, rather than building something the front end does not know."""
    lalr = lark.parser.parser.parser  # ParsingFrontend → LALR_Parser → _Parser (the standalone's layout)
    lalr.callbacks = {rule: _callback(rule, token_type, method_for) for rule in lark.rules}


def _callback(rule: Any, token_type: Any, method_for: Callable[[str], Method | None]) -> Callable[[list[Any]], Any]:
    name = rule.alias or rule.origin.name
    keep = [(i, not sym.is_term and sym.name.startswith("_")) for i, sym in enumerate(rule.expansion)
            if not (sym.is_term and sym.filter_out)]
    inline = bool(rule.options.expand1) and not rule.alias
    if inline and len(rule.expansion) == 1 and len(keep) == 1 and not keep[0][1]:
        return _first_child  # `?rule: child`: the child itself, own and container positions unchanged
    if name.startswith("_"):
        return lambda children: _splice(children, keep, token_type)
    always_inlined = inline and len(keep) == 1 and not keep[0][1]  # e.g. `?operand: "(" expr ")"`
    method = method_for(name)
    if method is None and not always_inlined:
        raise LookupError(f"no builder method for grammar rule {name!r}")
    return lambda children: _build(children, keep, inline, method, token_type)


def _first_child(children: list[Any]) -> Any:
    return children[0]


def _splice(children: list[Any], keep: list[tuple[int, bool]], token_type: Any) -> Built:
    """A `_rule` or a `*`/`+` helper: its items, spliced into the rule that uses it."""
    return _items(children, keep, token_type), _first(children, token_type), _last(children, token_type)


def _build(children: list[Any], keep: list[tuple[int, bool]], inline: bool, method: Method | None,
           token_type: Any) -> Any:
    first, last = _first(children, token_type), _last(children, token_type)
    items = _items(children, keep, token_type)
    if inline and len(items) == 1:  # a `?rule` with one child left: the child, with this rule's extent
        only = items[0]
        return only if type(only) is token_type else (only, first, last)
    assert method is not None  # checked in _callback: only always-inlined rules have none
    return method((first, last), items), first, last


def _items(children: list[Any], keep: list[tuple[int, bool]], token_type: Any) -> list[Any]:
    items: list[Any] | None = None
    for index, spliced in keep:
        child = children[index]
        if spliced:
            if items is None:
                items = child[0]  # reuse a left-recursive helper's list: no copying, linear time
            else:
                items += child[0]
        else:
            value = child if type(child) is token_type else child[0]
            if items is None:
                items = [value]
            else:
                items.append(value)
    return [] if items is None else items


def _first(children: list[Any], token_type: Any) -> Pos | None:
    for child in children:
        if type(child) is token_type:
            return child.line, child.column
        if child[1] is not None:
            return child[1]  # type: ignore[no-any-return]
    return None


def _last(children: list[Any], token_type: Any) -> Pos | None:
    for child in reversed(children):
        if type(child) is token_type:
            return child.end_line, child.end_column
        if child[2] is not None:
            return child[2]  # type: ignore[no-any-return]
    return None

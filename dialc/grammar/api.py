"""The standalone parser module → Lark's classes by name (Token, Tree, Transformer, the errors) for the front end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialc.grammar import runtime

if TYPE_CHECKING:  # the standalone module is a copy of Lark's runtime: the same classes and signatures
    from lark import Lark, Token, Transformer, Tree, v_args
    from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
    from lark.tree import Meta
else:
    _module = runtime()
    Lark, Token, Transformer, Tree, v_args, Meta = (_module.Lark, _module.Token, _module.Transformer, _module.Tree,
                                                    _module.v_args, _module.Meta)
    LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken = (
        _module.LarkError, _module.UnexpectedCharacters, _module.UnexpectedEOF, _module.UnexpectedInput,
        _module.UnexpectedToken)

__all__ = ["Lark", "LarkError", "Meta", "Token", "Transformer", "Tree", "UnexpectedCharacters", "UnexpectedEOF",
           "UnexpectedInput", "UnexpectedToken", "v_args"]

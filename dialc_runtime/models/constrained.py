"""Constraint → llguidance grammar and matcher; a batch of matchers → one boolean token mask."""

from __future__ import annotations

import json
from typing import Any

import llguidance
import llguidance.hf
import torch
from llguidance.torch import allocate_token_bitmask, fill_next_token_bitmask_par

from dialc_runtime.models.base import Constraint

# JSON is emitted in json.dumps' default style: it tokenises the way models write JSON, and with
# flexible whitespace a weak model can pad an object with blanks until max_tokens runs out.
JSON_OPTIONS: Any = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}


class GrammarError(ValueError):
    """A constraint llguidance cannot compile (bad regex, unsupported schema …)."""


def grammar_for(constraint: Constraint) -> str | None:
    """The llguidance grammar for a constraint, or None when decoding is unconstrained."""
    if constraint.kind == "json":
        if not constraint.schema:
            raise GrammarError("json constraint without a schema")
        return llguidance.LLMatcher.grammar_from_json_schema(constraint.schema, overrides=JSON_OPTIONS)
    if constraint.kind == "regex":
        if not constraint.pattern:
            raise GrammarError("regex constraint without a pattern")
        return llguidance.LLMatcher.grammar_from_regex(constraint.pattern)
    if constraint.kind == "choice":
        if not constraint.options:
            raise GrammarError("choice constraint without options")
        # Lark string literals take JSON escapes, so json.dumps quotes any option safely.
        alternatives = " | ".join(json.dumps(option) for option in constraint.options)
        return llguidance.LLMatcher.grammar_from_lark(f"start: {alternatives}")
    if constraint.max_chars is not None:
        return llguidance.LLMatcher.grammar_from_lark(f"start: /(?s:.{{0,{int(constraint.max_chars)}}})/")
    return None


class MaskBuilder:
    """Builds matchers for one tokenizer and computes a batch's token masks in parallel."""

    def __init__(self, hf_tokenizer: Any, vocab_size: int) -> None:
        # The bridge serialises the Rust tokenizer (~0.5 s): build once per loaded model.
        self.tokenizer = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=vocab_size)
        self.vocab_size = vocab_size
        self.executor = llguidance.LLExecutor()
        self._shifts = torch.arange(32, dtype=torch.int32)

    def matcher(self, constraint: Constraint) -> llguidance.LLMatcher | None:
        """A fresh matcher for the constraint (None = unconstrained); GrammarError if invalid."""
        grammar = grammar_for(constraint)
        if grammar is None:
            return None
        matcher = llguidance.LLMatcher(self.tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise GrammarError(matcher.get_error())
        return matcher

    def allowed(self, matchers: list[llguidance.LLMatcher | None]) -> torch.Tensor | None:
        """(batch, vocab) bool: the tokens each row may take next; None if no row is constrained."""
        rows = [(m, i) for i, m in enumerate(matchers) if m is not None]
        if not rows:
            return None
        bitmask = allocate_token_bitmask(len(matchers), self.vocab_size)  # -1 = all allowed
        fill_next_token_bitmask_par(self.executor, rows, bitmask)
        bits = (bitmask.unsqueeze(-1) >> self._shifts) & 1  # (batch, words, 32), LSB first
        return bits.reshape(len(matchers), -1)[:, : self.vocab_size].bool()

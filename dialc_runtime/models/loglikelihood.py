"""A causal LM + (context ids, continuation ids) pairs → summed log-probabilities: the one HF scorer.

Used by the transformers backend (judges, ScoreRequests) and by evaluation (multiple-choice
options, lm-evaluation-harness style); each tokenises its own way and hands over token ids.
Sequences are left-padded with explicit position ids, so a score does not depend on the batch it
is computed in, and only the continuation's logits are computed. Single-token continuations of
one context (a judge's 1..5 scale, option letters) share one forward pass.
"""

from __future__ import annotations

from typing import Any

import torch

from dialc_runtime.models.decoding import left_pad, positions

Pair = tuple[list[int], list[int]]  # (context token ids, continuation token ids)


def loglikelihoods(model: Any, pairs: list[Pair], pad_id: int, batch_size: int = 8,
                   max_len: int | None = None) -> list[float]:
    """log P(continuation | context) per pair, in order. Contexts must not be empty (the first
    continuation token needs something to be predicted from); with `max_len`, context + continuation
    keep their last max_len + 1 tokens, as lm-evaluation-harness does."""
    if max_len is not None:
        pairs = [truncate(pair, max_len) for pair in pairs]
    if any(not context and cont for context, cont in pairs):
        raise ValueError("a continuation needs a non-empty context to be scored")
    out = [0.0] * len(pairs)
    rest = _score_shared_contexts(model, pairs, pad_id, batch_size, out)
    order = sorted(rest, key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        for i, value in zip(chunk, _score_batch(model, [pairs[i] for i in chunk], pad_id), strict=True):
            out[i] = value
    return out


def truncate(pair: Pair, max_len: int) -> Pair:
    """The pair cut on the left to max_len + 1 tokens (the last one is only ever predicted)."""
    context, cont = pair
    seq = (context + cont)[-(max_len + 1) :]
    n = min(len(cont), len(seq) - 1)
    return seq[: len(seq) - n], seq[len(seq) - n :]


def _score_shared_contexts(model: Any, pairs: list[Pair], pad_id: int, batch_size: int, out: list[float]) -> list[int]:
    """Score groups of single-token continuations of one context with one pass each; returns the
    indices still to score one by one."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (context, cont) in enumerate(pairs):
        if len(cont) == 1:
            groups.setdefault(tuple(context), []).append(i)
    shared = [(ctx, idx) for ctx, idx in groups.items() if len(idx) > 1]
    for start in range(0, len(shared), batch_size):
        chunk = shared[start : start + batch_size]
        logprobs = _next_token_logprobs(model, [list(ctx) for ctx, _ in chunk], pad_id)
        for row, (_, indices) in enumerate(chunk):
            for i in indices:
                out[i] = float(logprobs[row, pairs[i][1][0]])
    done = {i for _, idx in shared for i in idx}
    return [i for i in range(len(pairs)) if i not in done]


@torch.inference_mode()
def _next_token_logprobs(model: Any, contexts: list[list[int]], pad_id: int) -> torch.Tensor:
    """(batch, vocab) log-probabilities of the token after each context."""
    ids, attn = left_pad(contexts, pad_id, model.device)
    logits = model(input_ids=ids, attention_mask=attn, position_ids=positions(attn), logits_to_keep=1).logits
    return torch.log_softmax(logits[:, -1].float(), dim=-1)


@torch.inference_mode()
def _score_batch(model: Any, pairs: list[Pair], pad_id: int) -> list[float]:
    # Left padding puts every continuation at the end, so only the last positions'
    # logits are computed (a full (batch, length, vocab) tensor would be large).
    keep = max(len(cont) for _, cont in pairs) + 1
    ids, attn = left_pad([ctx + cont for ctx, cont in pairs], pad_id, model.device)
    logits = model(input_ids=ids, attention_mask=attn, position_ids=positions(attn), logits_to_keep=keep).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    out = []
    for b, (_, cont) in enumerate(pairs):
        if not cont:
            out.append(0.0)
            continue
        first = keep - 1 - len(cont)  # position whose logits predict the first cont token
        picked = logprobs[b, first : first + len(cont)].gather(-1, torch.tensor(cont, device=logprobs.device)[:, None])
        out.append(float(picked.sum()))
    return out

"""A causal LM + (context ids, continuation ids) pairs → summed log-probabilities: the one HF scorer.

Used by the transformers backend (judges, ScoreRequests) and by evaluation (multiple-choice
options, lm-evaluation-harness style); each tokenises its own way and hands over token ids.
Sequences are left-padded with explicit position ids, so a score does not depend on the batch it
is computed in, and only the continuation's logits are computed. Single-token continuations of
one context (a judge's 1..5 scale, option letters) share one forward pass; `prefix_loglikelihoods`
runs each context once and scores all its continuations from its key/value cache.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

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


Group = tuple[list[int], list[list[int]]]  # (context token ids, its continuations' token ids)
TOKEN_BUDGET = 4096  # padded tokens per forward pass of `prefix_loglikelihoods` (batches of short items grow)


def prefix_loglikelihoods(model: Any, groups: list[Group], pad_id: int, max_batch: int = 64,
                          max_len: int | None = None, token_budget: int = TOKEN_BUDGET) -> list[list[float]]:
    """log P(continuation | context) for every continuation of every group: each context runs once and its
    continuations reuse its key/value cache (a shared prompt prefix), contexts of similar length are
    batched up to `token_budget` padded tokens. Same values as `loglikelihoods` on the flattened pairs (up
    to float rounding); a group that `max_len` would truncate is scored through `loglikelihoods`."""
    out: list[list[float]] = [[0.0] * len(conts) for _, conts in groups]
    long = [g for g, (ctx, conts) in enumerate(groups)
            if max_len is not None and len(ctx) + max((len(c) for c in conts), default=0) > max_len + 1]
    for g in long:
        out[g] = loglikelihoods(model, [(groups[g][0], c) for c in groups[g][1]], pad_id, max_batch, max_len)
    if any(not ctx for ctx, conts in groups if conts):
        raise ValueError("a continuation needs a non-empty context to be scored")
    skip = set(long)
    order = sorted((g for g in range(len(groups)) if g not in skip and groups[g][1]),
                   key=lambda g: len(groups[g][0]))
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and stop - start < max_batch and (
                (stop + 1 - start) * (len(groups[order[stop]][0]) + 1) <= token_budget):
            stop += 1
        chunk = order[start:stop]
        for g, values in zip(chunk, _score_prefix_batch(model, [groups[g] for g in chunk], pad_id), strict=True):
            out[g] = values
        start = stop
    return out


@torch.inference_mode()
def _score_prefix_batch(model: Any, groups: list[Group], pad_id: int) -> list[list[float]]:
    """One pass over the contexts (cache kept), one over every continuation's tokens after its first."""
    ids, attn = left_pad([ctx for ctx, _ in groups], pad_id, model.device)
    cache = DynamicCache(config=model.config)
    first = model(input_ids=ids, attention_mask=attn, position_ids=positions(attn), cache=cache, logits_to_keep=1)
    head = torch.log_softmax(first.logits[:, -1].float(), dim=-1)  # (groups, vocab): each first token
    rows = [g for g, (_, conts) in enumerate(groups) for _ in conts]
    conts = [cont for _, group in groups for cont in group]
    values = [float(head[g, cont[0]]) if cont else 0.0 for g, cont in zip(rows, conts, strict=True)]
    width = max(len(cont) for cont in conts) - 1  # tokens fed after the context: all but each last one
    if width > 0:
        index = torch.tensor(rows, device=ids.device)
        cache.reorder_cache(index)  # type: ignore[arg-type]  # one cache row per continuation
        tail = torch.full((len(conts), width), pad_id, dtype=torch.long)
        tail_mask = torch.zeros((len(conts), width), dtype=torch.long)
        for r, cont in enumerate(conts):
            if len(cont) > 1:
                tail[r, : len(cont) - 1] = torch.tensor(cont[:-1], dtype=torch.long)
                tail_mask[r, : len(cont) - 1] = 1
        tail, tail_mask = tail.to(ids.device), tail_mask.to(ids.device)
        mask = torch.cat([attn.index_select(0, index), tail_mask], dim=1)
        pos = attn.sum(-1).index_select(0, index)[:, None] + torch.arange(width, device=ids.device)[None, :]
        logits = model(input_ids=tail, attention_mask=mask, position_ids=pos, cache=cache).logits
        real = logits[tail_mask.bool()]  # (real tokens, vocab), row by row: padding never reaches log_softmax
        targets = torch.tensor([t for cont in conts for t in cont[1:]], device=ids.device)
        picked = torch.log_softmax(real.float(), dim=-1).gather(-1, targets[:, None])[:, 0]
        sums = torch.split(picked, [max(len(cont) - 1, 0) for cont in conts])
        for r, part in enumerate(sums):
            values[r] += float(part.sum())
    flat = iter(values)
    return [[next(flat) for _ in group] for _, group in groups]

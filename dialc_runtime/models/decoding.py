"""Prompt ids + per-row matchers → generated token ids: a batch decoded together with a KV cache.

One forward pass per step for the whole batch; each row's grammar mask is applied to its logits
before sampling, and each row samples from its own seeded generator, so a row's output does not
depend on which other rows share the batch. Finished rows leave the batch (and the KV cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import llguidance
import torch
from transformers import DynamicCache

from dialc_runtime.models.constrained import MaskBuilder


@dataclass
class Row:
    """One sequence to decode."""

    prompt_ids: list[int]
    matcher: llguidance.LLMatcher | None  # None = unconstrained
    max_tokens: int  # new tokens at most
    temperature: float  # 0 = greedy
    top_p: float
    seed: int
    fast_forward: bool = True  # feed grammar-forced tokens without sampling them


@dataclass
class Decoded:
    """What one row produced and why it stopped."""

    tokens: list[int] = field(default_factory=list)  # generated ids, a final EOS included
    finish: str = "length"  # "stop": EOS or grammar complete; "length": max_tokens; "error"
    complete: bool = False  # the output is whole: stopped, or its grammar accepts it as it is
    error: str | None = None


def left_pad(seqs: list[list[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), padded on the left so every row ends at the last column."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, seq in enumerate(seqs):
        if seq:
            ids[i, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[i, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 at each row's first real token (left padding)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


@torch.inference_mode()
def decode_batch(model: Any, rows: list[Row], masks: MaskBuilder, eos_ids: set[int], pad_id: int) -> list[Decoded]:
    """Decode all rows together; results in the order of `rows`."""
    device = model.device
    generators = [torch.Generator().manual_seed(r.seed % 2**63) for r in rows]
    out = [Decoded() for _ in rows]
    ids, attn = left_pad([r.prompt_ids for r in rows], pad_id, device)
    pos = positions(attn)
    cache = DynamicCache(config=model.config)
    step = model(input_ids=ids, attention_mask=attn, position_ids=pos, cache=cache, logits_to_keep=1)
    logits, next_pos = step.logits[:, -1], pos[:, -1] + 1
    live = list(range(len(rows)))  # row index of each batch position in the cache
    while live:
        allowed = masks.allowed([rows[i].matcher for i in live])
        tokens = choose(
            logits.float().cpu(),
            [rows[i] for i in live],
            [generators[i] for i in live],
            allowed,
        )
        feeds = [advance(rows[i], out[i], tokens[j], eos_ids) for j, i in enumerate(live)]
        keep = [j for j, feed in enumerate(feeds) if feed is not None]
        if not keep:
            break
        if len(keep) < len(live):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            attn, next_pos = attn[index], next_pos[index]
        live = [live[j] for j in keep]
        logits, attn, next_pos = forward_step(model, cache, [feeds[j] or [] for j in keep], attn, next_pos, pad_id)
    return out


def forward_step(
    model: Any,
    cache: DynamicCache,
    feeds: list[list[int]],
    attn: torch.Tensor,
    next_pos: torch.Tensor,
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Feed each row its new tokens (1 + fast-forwarded ones) in one pass; (logits, attn, pos).

    Feeds are right-aligned, padded on the left with masked-out slots, so every row's last token
    is in the last column and only that column's logits are computed.
    """
    device, width = attn.device, max(len(f) for f in feeds)
    ids = torch.full((len(feeds), width), pad_id, dtype=torch.long)
    new = torch.zeros((len(feeds), width), dtype=attn.dtype)
    for b, feed in enumerate(feeds):
        ids[b, width - len(feed) :] = torch.tensor(feed, dtype=torch.long)
        new[b, width - len(feed) :] = 1
    count = new.sum(dim=1).to(device)
    attn = torch.cat([attn, new.to(device)], dim=1)
    offsets = torch.arange(width, device=device)[None, :] - (width - count)[:, None]
    step_pos = (next_pos[:, None] + offsets).clamp(min=0)  # padding slots: any valid position
    out = model(
        input_ids=ids.to(device),
        attention_mask=attn,
        position_ids=step_pos,
        cache=cache,
        logits_to_keep=1,
    )
    return out.logits[:, -1], attn, next_pos + count


def choose(
    logits: torch.Tensor,
    rows: list[Row],
    generators: list[torch.Generator],
    allowed: torch.Tensor | None,
) -> list[int]:
    """One next token per row: masked, then greedy (temperature 0) or top-p sampled."""
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    tokens = []
    for j, row in enumerate(rows):
        if row.temperature <= 0:
            tokens.append(int(logits[j].argmax()))
        else:
            tokens.append(sample(logits[j], row.temperature, row.top_p, generators[j]))
    return tokens


def sample(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> int:
    """Sample one token id from `logits` (1-D) with temperature and nucleus (top-p) filtering."""
    probs = torch.softmax(logits / temperature, dim=-1)
    order = None
    if top_p < 1.0:
        probs, order = probs.sort(descending=True)
        # keep the smallest prefix whose mass reaches top_p (always at least the top token)
        probs[probs.cumsum(0) - probs >= top_p] = 0.0
    # Inverse CDF with one uniform draw: far cheaper than torch.multinomial on a large vocabulary,
    # and never lands on a zero-probability (masked) token.
    cdf = probs.cumsum(0)
    u = torch.rand((), generator=gen) * cdf[-1]
    index = int(torch.searchsorted(cdf, u, right=True))
    if index >= len(cdf):  # u rounded up to the total mass: take the last possible token
        index = int(probs.nonzero()[-1])
    return index if order is None else int(order[index])


def advance(row: Row, out: Decoded, token: int, eos_ids: set[int]) -> list[int] | None:
    """Record the sampled token and any tokens the grammar forces after it.

    Returns the tokens to feed the model next, or None when the row is finished.
    """
    out.tokens.append(token)
    matcher = row.matcher
    if matcher is not None and not matcher.consume_token(token):
        out.finish, out.error = "error", f"grammar rejected a token: {matcher.get_error()}"
        return None
    if finished(row, out, eos_ids):
        return None
    feed = [token]
    if matcher is not None and row.fast_forward:
        # Tokens the grammar forces (JSON keys, punctuation) skip sampling: one forward pass
        # feeds them all, instead of one pass each.
        forced = matcher.compute_ff_tokens()[: row.max_tokens - len(out.tokens)]
        if forced:
            if not matcher.consume_tokens(forced):
                out.finish, out.error = "error", f"grammar rejected its own tokens: {forced}"
                return None
            out.tokens.extend(forced)
            feed.extend(forced)
            if finished(row, out, eos_ids):
                return None
    return feed


def finished(row: Row, out: Decoded, eos_ids: set[int]) -> bool:
    """Whether the row is done after its latest token; sets `finish` and `complete` if so."""
    matcher = row.matcher
    if out.tokens[-1] in eos_ids or (matcher is not None and matcher.is_stopped()):
        out.finish, out.complete = "stop", True
        return True
    if len(out.tokens) >= row.max_tokens:
        out.finish = "length"
        out.complete = matcher is None or matcher.is_accepting()
        return True
    return False

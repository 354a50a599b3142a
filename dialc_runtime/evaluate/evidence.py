"""Results too small to mean anything → warnings, said in the terminal (ctx.warn) and in the report.

The thresholds are rules of thumb, not statistics: below them a figure may still be right, but it
cannot carry a conclusion, and the user is told so beside it.
"""

from __future__ import annotations

import math
from typing import Any

MIN_TRAIN_EXAMPLES = 50  # fewer training examples: a fine-tune learns the handful, not the domain
MIN_EVAL_ITEMS = 30  # fewer evaluation items: the 95% interval is too wide to conclude anything
MIN_TIER_RECORDS = 20  # fewer records per study tier: the tiers' scores are noise


def warmup_steps(warmup: float, total: int) -> int:
    """The warm-up length the trainer uses: a fraction of all steps if < 1, else a step count."""
    return math.ceil(warmup * total) if warmup < 1 else int(warmup)


def training_warnings(examples: int, steps: int, warmup: float) -> list[str]:
    """A fine-tune on a handful of examples, or one that never left its learning-rate warm-up."""
    out = []
    if examples < MIN_TRAIN_EXAMPLES:
        out.append(f"fine-tuned on {examples} examples, fewer than {MIN_TRAIN_EXAMPLES}: too few for the "
                   "adapter to mean much (raise sample.count)")
    ramp = warmup_steps(warmup, steps)
    if steps and ramp >= steps:
        out.append(f"{steps} optimizer step(s), not more than the {ramp} warm-up step(s): the learning rate "
                   "never reached its peak (lower warmup, or train longer)")
    return out


def small_n(n: Any) -> bool:
    return isinstance(n, int) and n < MIN_EVAL_ITEMS


def row_warning(row: dict[str, Any]) -> str | None:
    """One before/after row measured on too few items, with the interval that shows it."""
    n = row.get("n")
    if not small_n(n):
        return None
    ci = row.get("delta_ci")
    interval = f", 95% CI of the change {ci[0]:+.1f} … {ci[1]:+.1f} points" if ci else ""
    return (f"{row.get('suite')}: n = {n} items, fewer than {MIN_EVAL_ITEMS}{interval}: too few to conclude "
            "anything from this before/after figure")


def evaluation_warnings(rows: list[dict[str, Any]]) -> list[str]:
    return [w for w in map(row_warning, rows) if w]


def tier_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """Study tiers trained on a few records each."""
    small = [r for r in rows if int(r.get("records") or 0) < MIN_TIER_RECORDS]
    if not small:
        return []
    sizes = ", ".join(f"tier {r.get('tier')}: {r.get('records')}" for r in small)
    return [f"study tiers of fewer than {MIN_TIER_RECORDS} records ({sizes}): the quality ⇄ score "
            "correlation rests on noise (raise sample.count)"]

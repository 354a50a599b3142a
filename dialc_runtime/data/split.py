"""Dialogue id, fraction, seed → train/hold-out decision, stable across runs and machines."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dialc.plan import Holdout

_SCALE = float(1 << 64)


def holdout_point(dialogue_id: str, seed: int) -> float:
    """A dialogue's fixed position in [0, 1): sha256 of seed and id (Python's hash() is salted)."""
    raw = hashlib.sha256(f"{seed}\x00{dialogue_id}".encode()).digest()
    return int.from_bytes(raw[:8], "big") / _SCALE


def is_holdout(dialogue_id: str, fraction: float, seed: int) -> bool:
    """True when the dialogue belongs to the hold-out set of size ≈ `fraction`.

    Growing `fraction` only moves dialogues from train to hold-out, never back.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"hold-out fraction must be in [0, 1], got {fraction}")
    return holdout_point(dialogue_id, seed) < fraction


def held_out(record: dict[str, Any], holdout: Holdout | None) -> bool:
    """Whether a record's dialogue is in the plan's hold-out (never, when the plan declares none)."""
    return holdout is not None and is_holdout(str(record["dialogue_id"]), holdout.fraction, holdout.seed)

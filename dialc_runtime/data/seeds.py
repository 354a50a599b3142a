"""(step seed, record key …) → an independent integer seed, so results never depend on run order."""

from __future__ import annotations

import hashlib
import random


def derive(seed: int, *parts: object) -> int:
    """A 31-bit seed from the step seed and any identifying parts (stable across processes)."""
    text = "\x00".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


def rng(seed: int, *parts: object) -> random.Random:
    """A private random stream for one decision."""
    return random.Random(derive(seed, *parts))

"""(seed, record key / attempt …) → an independent integer seed, so results never depend on run order.

The one seed derivation of the runtime: every seed is bits of sha256 over the seed and the parts
that identify the decision (Python's hash() is salted per process, so it is never used).
"""

from __future__ import annotations

import hashlib
import random

SERVER_BITS = 31  # OpenAI-compatible servers take non-negative 32-bit seeds
TORCH_BITS = 63  # torch.Generator.manual_seed takes a 64-bit seed


def derive(seed: int, *parts: object) -> int:
    """A 31-bit seed from the step seed and any identifying parts (stable across processes)."""
    text = "\x00".join([str(seed), *map(str, parts)])
    return int.from_bytes(_digest(text)[:4], "big") & 0x7FFFFFFF


def rng(seed: int, *parts: object) -> random.Random:
    """A private random stream for one decision."""
    return random.Random(derive(seed, *parts))


def record_seed(seed: int, key: object, bits: int = 32) -> int:
    """The request seed of one record (or one attempt): the top `bits` bits of sha256("seed:key")."""
    return int.from_bytes(_digest(f"{seed}:{key}"), "big") >> (256 - bits)


def attempt_seed(seed: int, attempt: int, bits: int = SERVER_BITS) -> int:
    """The seed of decoding attempt `attempt` of a request: its own seed first, then fresh ones that
    do not collide with other requests' seeds (a retry must not repeat the failed output)."""
    return seed if attempt == 0 else record_seed(seed, attempt, bits)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()

"""EmittedKeys: a step attempt's emitted keys, held compactly while they come in order, refuse a repeat."""

from __future__ import annotations

import random

from dialc_runtime.engine.batches import EmittedKeys


def test_keys_in_order_are_accepted_and_a_later_repeat_is_refused() -> None:
    keys = EmittedKeys()
    assert all(keys.add(f"{i:06d}") for i in range(10_000))  # more than one joined chunk
    assert keys.add("000017") is False  # out of order: every earlier key is still known
    assert keys.add("000000") is False and keys.add("009999") is False
    assert keys.add("000017x") is True and keys.add("000017x") is False
    assert keys.add("010000") is True


def test_a_shuffled_emission_refuses_exactly_the_repeats() -> None:
    rng = random.Random(3)
    order = [f"k{i}" for i in range(3000)] * 2
    rng.shuffle(order)
    keys, seen = EmittedKeys(), set()
    for key in order:
        assert keys.add(key) is (key not in seen)
        seen.add(key)


def test_a_key_holding_the_separator_is_kept_whole() -> None:
    keys = EmittedKeys()
    assert keys.add("a") and keys.add("b\0c")
    assert keys.add("b") is True and keys.add("c") is True  # not mistaken for the halves of "b\0c"
    assert keys.add("b\0c") is False and keys.add("a") is False

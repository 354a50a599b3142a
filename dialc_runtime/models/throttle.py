"""Request pacing for one server: rpm / tpm token buckets, and a shared pause after an HTTP 429 (Retry-After)."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

RETRY_AFTER_CAP = 60.0  # seconds: the longest one 429 makes us wait, whatever the server says
NO_RETRY_AFTER = 1.0  # seconds: the first wait after a 429 without a Retry-After header (doubling)
JITTER = 0.1  # up to this share of a wait is added at random, so waiting clients do not return in step


class Bucket:
    """A token bucket: refills at `per_minute / 60` units a second up to `capacity`; a take larger than the
    capacity waits for a full bucket and leaves it in debt, so the long-run rate holds for any size."""

    def __init__(self, per_minute: float, capacity: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, capacity)
        self.level, self.stamp = self.capacity, now

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, units: float, now: float) -> float:
        """Seconds until `units` may be taken (0: now)."""
        self._refill(now)
        need = min(units, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, units: float, now: float) -> None:
        self._refill(now)
        self.level -= units

    def give(self, units: float) -> None:
        """Return units taken on an estimate that proved too high (or take more, when negative)."""
        self.level = min(self.capacity, self.level + units)


@dataclass
class ThrottleStats:
    """What pacing cost: 429 answers received, and seconds requests waited before going (for a limit or
    the pause after a 429; summed over requests, so more than the wall time when several wait at once)."""

    responses_429: int = 0
    waited_s: float = 0.0


class Throttle:
    """What every request to one server waits for before it is sent: the rpm bucket (one request at a time:
    requests are spread evenly), the tpm bucket (one second's tokens at most in a burst) and a pause
    that a 429 sets for every request, not only the one that got it."""

    def __init__(self, rpm: int | None, tpm: int | None, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.clock = clock
        now = clock()
        self.requests = Bucket(rpm, 1, now) if rpm else None
        self.tokens = Bucket(tpm, tpm / 60.0, now) if tpm else None
        self.paused_until = 0.0
        self.stats = ThrottleStats()
        self._lock = threading.Lock()
        self._rng = rng or random.Random()

    def delay(self, tokens: int) -> float:
        """Seconds to wait before a request of `tokens` (estimated) may go; 0: it is booked and may go now."""
        with self._lock:
            now = self.clock()
            wait = max(self.paused_until - now,
                       self.requests.wait(1, now) if self.requests else 0.0,
                       self.tokens.wait(tokens, now) if self.tokens else 0.0)
            if wait > 0:
                return wait
            if self.requests:
                self.requests.take(1, now)
            if self.tokens:
                self.tokens.take(tokens, now)
            return 0.0

    def acquire(self, tokens: int, cancel: threading.Event) -> bool:
        """Wait (interruptibly) until a request of `tokens` may go; False when cancelled meanwhile."""
        while (wait := self.delay(tokens)) > 0:
            with self._lock:
                self.stats.waited_s += wait
            if cancel.wait(wait):
                return False
        return not cancel.is_set()

    def used(self, estimated: int, actual: int | None) -> None:
        """Correct the tpm bucket once the server reports what a request really used."""
        if self.tokens is not None and actual is not None:
            with self._lock:
                self.tokens.give(estimated - actual)

    def backoff(self, retry_after: float | None, throttled_before: int) -> float:
        """After a 429: pause every request for the server's Retry-After (or 1, 2, 4 … s without one),
        capped at RETRY_AFTER_CAP, plus up to JITTER of it at random; returns the pause."""
        base = retry_after if retry_after is not None else NO_RETRY_AFTER * 2**min(throttled_before, 6)
        pause = min(RETRY_AFTER_CAP, base)
        with self._lock:
            pause += pause * JITTER * self._rng.random()
            self.paused_until = max(self.paused_until, self.clock() + pause)
            self.stats.responses_429 += 1
        return pause


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header as seconds from now: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def estimate_tokens(texts: list[str], max_tokens: int) -> int:
    """A request's tokens before the server says: about 4 characters a token of prompt, plus max_tokens."""
    return sum(len(t) for t in texts) // 4 + 1 + max(0, max_tokens)

"""Spec patterns × text → match or no match, under a time limit: a regular expression never hangs a step.

Patterns from a spec (`rule regex { pattern = … }`, `output = regex(…)`, a schema's `pattern`) are matched
with the `regex` package, which has Python's syntax and Unicode classes but avoids the usual catastrophic
backtracking (`(a+)+$` on 35 characters took minutes with `re`), and under a per-match time limit for what
it cannot bound. A match that runs out of time raises RegexTimeout: callers count the record as failing the
check, with that reason. After TIMEOUTS_BEFORE_GIVING_UP timeouts a pattern fails at once for the rest of
the process, so a step over many records stays bounded too. `dialc validate` warns on the pattern shapes
that may be slow (dialc.regex_bounds).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import regex

MATCH_SECONDS = 1.0  # time limit of one match
TIMEOUTS_BEFORE_GIVING_UP = 3
_timeouts: dict[tuple[str, int], int] = {}


class RegexTimeout(Exception):
    """A match that did not finish within MATCH_SECONDS (or a pattern that already timed out repeatedly)."""

    def __init__(self, pattern: str) -> None:
        super().__init__(f"/{pattern}/ did not finish matching within {MATCH_SECONDS:g} s "
                         "(a pattern with nested repetition or backreferences? see `dialc validate`)")
        self.pattern = pattern


@lru_cache(maxsize=256)
def compiled(pattern: str, flags: int = 0) -> Any:
    """The compiled pattern (regex.error when `regex` cannot compile it)."""
    return regex.compile(pattern, flags | regex.VERSION0)


def search(pattern: str, text: str, flags: int = 0) -> bool:
    """Whether the pattern occurs in `text` (RegexTimeout past the limit)."""
    return _run(pattern, flags, "search", text)


def fullmatch(pattern: str, text: str, flags: int = 0) -> bool:
    """Whether the whole of `text` matches the pattern (RegexTimeout past the limit)."""
    return _run(pattern, flags, "fullmatch", text)


def _run(pattern: str, flags: int, how: str, text: str) -> bool:
    if _timeouts.get((pattern, flags), 0) >= TIMEOUTS_BEFORE_GIVING_UP:
        raise RegexTimeout(pattern)
    method = getattr(compiled(pattern, flags), how)
    try:
        return method(text, timeout=MATCH_SECONDS) is not None
    except TimeoutError:
        _timeouts[(pattern, flags)] = _timeouts.get((pattern, flags), 0) + 1
        raise RegexTimeout(pattern) from None

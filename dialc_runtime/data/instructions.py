"""A model-written task instruction (an evolution or a paraphrase) → why it is unusable, or None."""

from __future__ import annotations

import re
from typing import Any

from dialc_runtime.data.similarity import is_near_copy

COPY_THRESHOLD = 0.9  # an instruction this similar to its parent (or any known task) adds nothing
MIN_WORDS = 5  # spaced text: shorter instructions are too vague to label ("Detailed Instructions")
MIN_CHARS = 12  # unspaced (CJK) text: the same bound in characters
# asks for information no dialogue holds → unanswerable from the dialogue
OUTSIDE_WORLD = re.compile(r"\b(internet|online search|browse|latest (market )?data|look up|website|google)\b"
                           r"|上网|搜索|最新数据", re.I)


def too_short(text: str) -> bool:
    """Fewer than MIN_WORDS words, or (one unspaced run, as in Chinese) fewer than MIN_CHARS characters."""
    words = text.split()
    return len(words) < MIN_WORDS and (len(words) > 1 or len(text) < MIN_CHARS)


def failure_reason(task: dict[str, Any], known: list[str]) -> str | None:
    """Why an instruction is unusable (empty, too short, a copy, unanswerable), or None when it is fine."""
    text = task["instruction"]
    if task.get("error") or not text:
        return f"empty: {task.get('error') or 'no instruction produced'}"
    if too_short(text):
        return "empty: too short to be a task"
    copy = is_near_copy(text, known, COPY_THRESHOLD)
    if copy is not None:
        return f"copied: near-duplicate of {copy[:60]!r}"
    if OUTSIDE_WORLD.search(text):
        return "unanswerable: needs information outside the dialogue"
    return None

"""(labelled record, its dialogue) → Verdict: does the label stay inside what the dialogue says?"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dialc.schema import inapplicable_to
from dialc_runtime.quality.numbers import extract_numbers, number_in, parse_number
from dialc_runtime.quality.text import content_text, content_units, dialogue_text, normalise, tokens
from dialc_runtime.quality.verdict import Verdict

_SUFFIXES = ("ing", "ed", "es", "ly", "s")
COPY_RUN = 8  # words (CJK: characters) in a row found verbatim in the dialogue count as copied
MAX_COPIED = 0.5  # a free-text answer more than half copied verbatim fails grounding, whatever its overlap


def stem(unit: str) -> str:
    """A crude English stem so "bedrooms" meets "bedroom" and "viewing" meets "view"."""
    for suffix in _SUFFIXES:
        if len(unit) > len(suffix) + 3 and unit.endswith(suffix):
            return unit[: -len(suffix)]
    return unit


def _compact(text: str) -> str:
    return re.sub(r"[\W_]+", "", normalise(text).replace(",", ""))


@dataclass(frozen=True)
class Source:
    """A dialogue prepared once for many lookups: compact text, stemmed units, numbers."""

    compact: str
    units: frozenset[str]
    numbers: frozenset[float]
    runs: frozenset[tuple[str, ...]]  # every COPY_RUN-word sequence of the dialogue

    @classmethod
    @lru_cache(maxsize=256)  # many records share a dialogue
    def of(cls, text: str) -> Source:
        units = frozenset(stem(u) for u in content_units(text))
        words = tokens(text)
        runs = frozenset(tuple(words[i : i + COPY_RUN]) for i in range(len(words) - COPY_RUN + 1))
        return cls(_compact(text), units, frozenset(extract_numbers(text)), runs)

    def copied(self, words: list[str]) -> float:
        """Share of the words that lie in a run of COPY_RUN or more words found verbatim in the source."""
        covered = [False] * len(words)
        for i in range(len(words) - COPY_RUN + 1):
            if tuple(words[i : i + COPY_RUN]) in self.runs:
                covered[i : i + COPY_RUN] = [True] * COPY_RUN
        return sum(covered) / len(words) if words else 0.0

    def has_unit(self, unit: str) -> bool:
        if stem(unit) in self.units:
            return True
        value = parse_number(unit) if unit[:1].isdigit() else None
        return value is not None and number_in(value, self.numbers)


def coverage(text: str, source: Source) -> float | None:
    """Share of the text's content units (words, CJK bigrams, numbers) found in the source."""
    units = content_units(text)
    if not units:
        return None
    return sum(source.has_unit(u) for u in units) / len(units)


def grounded_scalar(value: Any, source: Source, string_min: float = 0.75) -> bool | None:
    """Whether one extracted value appears in the source; None when it cannot be checked."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return number_in(float(value), source.numbers)
    text = str(value).strip()
    if not _compact(text):
        return None
    number = parse_number(text)
    if number is not None:
        return number_in(number, source.numbers)
    if _compact(text) in source.compact:
        return True
    share = coverage(text, source)
    return None if share is None else share >= string_min


def scalar_leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(field path, scalar) for every leaf of a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from scalar_leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from scalar_leaves(item, f"{path}[{i}]")
    else:
        yield path or "value", value


def ground_values(value: Any, source: Source, params: dict[str, Any]) -> Verdict:
    """Structured label: score = share of checkable values found; passing needs all of them."""
    checked, missing = 0, []
    for path, leaf in scalar_leaves(value):
        verdict = grounded_scalar(leaf, source, float(params.get("string_min", 0.75)))
        if verdict is None:
            continue
        checked += 1
        if not verdict:
            missing.append(f"{path}={leaf!r}")
    if not checked:
        return Verdict(1.0, True, "no values to check")
    score = (checked - len(missing)) / checked
    detail = f"ungrounded: {', '.join(missing)}" if missing else f"all {checked} values grounded"
    return Verdict.threshold(score, float(params.get("min_values", 1.0)), detail)


def ground_text(text: str, source: Source, params: dict[str, Any]) -> Verdict:
    """Free-text label: share of its content words present in the dialogue, at least `min` — discounted
    by the share copied verbatim (runs of COPY_RUN+ words), so a copy of the dialogue is no summary."""
    share = coverage(text, source)
    if share is None:
        return Verdict.not_applicable("no content words")
    minimum = float(params.get("min", 0.3))
    copied = source.copied(tokens(text))
    verdict = Verdict.threshold(share * (1.0 - copied), minimum)
    passed = bool(verdict.passed) and copied <= MAX_COPIED
    relation = ">=" if verdict.passed else "<"
    if not copied:
        return Verdict(verdict.score, passed, f"overlap {share:.2f} {relation} {minimum}")
    detail = (f"overlap {share:.2f}, {copied:.0%} copied verbatim (runs of {COPY_RUN}+ words): "
              f"{verdict.score:.2f} {relation} {minimum}" + ("" if copied <= MAX_COPIED else
                                                              f"; more than {MAX_COPIED:.0%} copied"))
    return Verdict(verdict.score, passed, detail)


def copied_share(text: str, dialogue: dict[str, Any]) -> float:
    """Share of a text's words copied verbatim from a dialogue (in runs of COPY_RUN or more words)."""
    return Source.of(dialogue_text(dialogue)).copied(tokens(text))


def score_grounding(
    record: dict[str, Any], dialogue: dict[str, Any] | None, params: dict[str, Any]
) -> Verdict:
    """Dispatch on the label's output kind; a missing dialogue is a failure, not a zero."""
    if dialogue is None:
        return Verdict.failure(f"dialogue {record.get('dialogue_id')!r} not found")
    kind = (record.get("output") or {}).get("kind", "text")
    if kind in inapplicable_to("grounding"):
        return Verdict.not_applicable(f"{kind} output")
    source = Source.of(dialogue_text(dialogue))
    value = record.get("value")
    if kind == "json" or isinstance(value, dict | list):
        return ground_values(value, source, params)
    return ground_text(content_text(record), source, params)

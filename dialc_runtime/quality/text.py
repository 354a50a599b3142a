"""Text → tokens, scripts and content units: script-aware primitives shared by quality checks."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

# Scripts whose characters are words on their own (no spaces between words): one token per char.
_CHAR_SCRIPTS = ("han", "kana")
_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x3040, 0x30FF, "kana"),  # hiragana + katakana
    (0x3400, 0x4DBF, "han"),  # CJK extension A
    (0x4E00, 0x9FFF, "han"),  # CJK unified ideographs
    (0xF900, 0xFAFF, "han"),  # CJK compatibility ideographs
    (0x20000, 0x2FA1F, "han"),  # CJK extensions B… and compatibility supplement
    (0xAC00, 0xD7AF, "hangul"),
    (0x1100, 0x11FF, "hangul"),
    (0x0370, 0x03FF, "greek"),
    (0x0400, 0x052F, "cyrillic"),
    (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"),
    (0x0900, 0x097F, "devanagari"),
    (0x0E00, 0x0E7F, "thai"),
)
_CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A token: one CJK/kana character, or a run of other word characters (digits keep . and , inside).
_TOKEN = re.compile(rf"[{_CJK_CLASS}]|\d+(?:[.,]\d+)*|[^\W\d_{_CJK_CLASS}]+(?:['’][^\W\d_]+)*")

# Language code → the script its text is written in (the primary subtag decides: "zh-Hans" → zh).
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "zh": ("han",), "ja": ("kana", "han"), "ko": ("hangul",), "ru": ("cyrillic",),
    "uk": ("cyrillic",), "bg": ("cyrillic",), "el": ("greek",), "he": ("hebrew",),
    "ar": ("arabic",), "fa": ("arabic",), "ur": ("arabic",), "hi": ("devanagari",),
    "mr": ("devanagari",), "th": ("thai",),
}  # fmt: skip
LATIN_DEFAULT = ("latin",)  # en, fr, de, es, … : every language not listed above

_STOPWORDS = (
    "a an the and or but if of to in on at by for with from as is are was were be been being it "
    "its this that these those i you he she we they me him her us them my your our their his "
    "do does did have has had not no yes so than then there here what which who whom how when "
    "where why can could will would should may might must shall just also very please ok okay "
    "的 了 是 在 和 与 及 或 吗 呢 吧 啊 我 你 他 她 们 这 那 有 就 都 也 很 要 会 个 不"
)
STOPWORDS = frozenset(_STOPWORDS.split())


def normalise(text: str) -> str:
    """NFKC (full-width → half-width), case-folded: the form every comparison works on."""
    return unicodedata.normalize("NFKC", text).casefold()


def script_of(char: str) -> str | None:
    """The writing system of one letter-like character, or None for digits, punctuation, spaces."""
    code = ord(char)
    for lo, hi, name in _RANGES:
        if lo <= code <= hi:
            return name
    if char.isalpha():
        return "latin" if code < 0x0250 or 0x1E00 <= code <= 0x1EFF else "other"
    return None


def tokens(text: str) -> list[str]:
    """Whitespace words for spaced scripts, single characters for CJK; punctuation dropped."""
    return _TOKEN.findall(normalise(text))


def is_cjk_token(token: str) -> bool:
    return len(token) == 1 and script_of(token) in _CHAR_SCRIPTS


def script_shares(text: str) -> dict[str, float]:
    """Share of word tokens per script (a CJK character and a spaced word weigh one each)."""
    counts: dict[str, int] = {}
    for tok in tokens(text):
        script = next((s for s in map(script_of, tok) if s is not None), None)
        if script is not None:
            counts[script] = counts.get(script, 0) + 1
    total = sum(counts.values())
    return {s: c / total for s, c in counts.items()} if total else {}


def language_scripts(language: str) -> tuple[str, ...]:
    """The scripts a language code is written in (unknown codes are taken as Latin-script)."""
    primary = language.replace("_", "-").split("-")[0].lower()
    return LANGUAGE_SCRIPTS.get(primary, LATIN_DEFAULT)


def is_cjk_text(text: str) -> bool:
    """Mostly CJK characters: shingle and compare by character rather than by word."""
    if text.isascii():  # no CJK character in it (the common case, decided without counting scripts)
        return False
    shares = script_shares(text)
    return sum(shares.get(s, 0.0) for s in _CHAR_SCRIPTS) > 0.5


def content_units(text: str) -> list[str]:
    """Meaning-bearing units: non-stopword words, and character bigrams inside CJK runs."""
    units: list[str] = []
    run: list[str] = []
    for tok in [*tokens(text), ""]:
        if tok and is_cjk_token(tok):
            run.append(tok)
            continue
        units.extend(_cjk_units(run))
        run = []
        if tok and tok not in STOPWORDS:
            units.append(tok.replace(",", ""))
    return units


def _cjk_units(run: list[str]) -> list[str]:
    chars = [c for c in run if c not in STOPWORDS] if len(run) == 1 else run
    if len(chars) < 2:
        return chars
    return [a + b for a, b in zip(chars, chars[1:], strict=False)]


def ngrams(items: list[str], n: int) -> list[tuple[str, ...]]:
    """Contiguous n-grams; a sequence shorter than n yields itself as the only n-gram."""
    if len(items) < n:
        return [tuple(items)] if items else []
    return [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]


def string_leaves(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (keys excluded: they are schema, not content)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from string_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from string_leaves(item)


def content_text(record: Mapping[str, Any]) -> str:
    """The words a label says: string values of a structured answer, else the raw answer text."""
    value = record.get("value")
    if isinstance(value, dict | list):
        return "\n".join(string_leaves(value))
    answer = record.get("answer")
    if isinstance(answer, str):
        return answer
    return "" if value is None else str(value)


def dialogue_text(dialogue: dict[str, Any]) -> str:
    """The dialogue's turns as one text, a turn per line."""
    return "\n".join(str(t.get("text", "")) for t in dialogue.get("turns", []))


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

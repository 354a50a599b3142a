"""Text → the numbers it mentions, normalised ("2,800", "2.8k", "4.5 million", "三千五", "3万")."""

from __future__ import annotations

import re
from collections.abc import Collection

from dialc_runtime.quality.text import normalise

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}  # fmt: skip
_CN_SMALL = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_SUFFIX = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9,
           "billion": 1e9, "hundred": 1e2, "w": 1e4}  # fmt: skip
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
_WORDS = {w: i for i, w in enumerate(_UNITS.split())}
_WORDS.update({w: 10 * i for i, w in enumerate(_TENS.split(), start=2)})
_WORD_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}

_ARABIC = r"(?:\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_CN = "[" + "".join([*_CN_DIGITS, *_CN_SMALL, *_CN_BIG]) + "]"
_TAIL = (
    rf"(?:\s*(?P<suffix>{'|'.join(sorted(_SUFFIX, key=len, reverse=True))})(?![a-z]))?"
    r"(?P<pct>\s*%)?"
)
_EXPR = re.compile(rf"(?P<num>(?:{_ARABIC}|{_CN})+){_TAIL}")
_PLAIN = re.compile(rf"(?P<num>{_ARABIC}){_TAIL}")
_WORD_RUN = re.compile(
    r"\b(?:(?:" + "|".join([*_WORDS, *_WORD_SCALES]) + r")(?:[\s-]+(?:and[\s-]+)?|\b))+"
)


def parse_cn(text: str) -> float | None:
    """A Chinese (or mixed "2万5") numeral: 三千五 → 3500, 两万五 → 25000, 1.2亿 → 120000000."""
    total, section, number = 0.0, 0.0, 0.0
    prev_unit: float | None = None  # unit just before the current digit: 三千五 means 3500
    prev_digit = ""  # the digit token just before, for 二零二四 (digit after digit)
    for tok in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+|.", text):
        if tok in _CN_SMALL:
            section += (number or (0 if prev_digit else 1)) * _CN_SMALL[tok]
            number, prev_unit, prev_digit = 0.0, _CN_SMALL[tok], ""
        elif tok in _CN_BIG:
            section += number  # 亿 scales everything before it (万亿); 万 only its own section
            big = _CN_BIG[tok]
            total = (total + section) * big if tok == "亿" else total + section * big
            section, number, prev_unit, prev_digit = 0.0, 0.0, _CN_BIG[tok], ""
        elif tok in _CN_DIGITS and prev_digit in _CN_DIGITS and prev_digit:
            number, prev_digit = number * 10 + _CN_DIGITS[tok], tok  # 二零二四 → 2024
        elif prev_digit:
            return None  # "2800一个月": an Arabic number run into a Chinese digit is two numbers
        elif tok in _CN_DIGITS or tok[0].isdigit() or tok[0] == ".":
            value = _CN_DIGITS[tok] if tok in _CN_DIGITS else float(tok.replace(",", ""))
            prev_unit = None if value == 0 else prev_unit
            number, prev_digit = float(value), tok
        else:
            return None
    if number and prev_unit is not None and prev_unit >= 100:
        number *= prev_unit / 10  # the colloquial trailing digit: 三千五, 两万五
    return total + section + number


def parse_words(text: str) -> float | None:
    """English number words: "two" → 2, "twenty-five" → 25, "three hundred thousand" → 300000."""
    total, current, found = 0, 0, False
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in _WORDS:
            current, found = current + _WORDS[word], True
        elif word == "hundred":
            current, found = max(current, 1) * 100, True
        elif word in _WORD_SCALES:
            total, current, found = total + max(current, 1) * _WORD_SCALES[word], 0, True
        elif word != "and":
            return None
    return float(total + current) if found else None


def extract_numbers(text: str) -> set[float]:
    """Every number the text mentions, both as written and with its multiplier applied."""
    text = normalise(text)
    found: set[float] = set()
    for pattern in (_EXPR, _PLAIN):  # _PLAIN: Arabic numbers alone, when a mixed run is ambiguous
        for match in pattern.finditer(text):
            base = parse_cn(match.group("num"))
            if base is None:
                continue
            found.add(base)
            if match.group("suffix"):
                found.add(base * _SUFFIX[match.group("suffix")])
            if match.group("pct"):
                found.add(base / 100)
    for match in _WORD_RUN.finditer(text):
        value = parse_words(match.group(0))
        if value is not None:
            found.add(value)
    return found


def parse_number(text: str) -> float | None:
    """The value of a string that is only a number ("2.8k", "三千", "4,500", "two"), else None."""
    text = normalise(text).strip()
    match = _EXPR.fullmatch(text)
    if match is not None:
        values = extract_numbers(text)
        return max(values) if values else None
    return parse_words(text)


def number_in(value: float, numbers: Collection[float]) -> bool:
    """Equal up to float noise to one of the numbers."""
    return any(abs(value - n) <= 1e-9 * max(1.0, abs(value)) for n in numbers)

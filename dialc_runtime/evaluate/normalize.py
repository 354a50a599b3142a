"""Extracted values → comparable forms: numbers with units (万/亿/千, k/m/bn, currency), case- and width-folded text.

Gold references hold plain values (3000000, "Riverside", "rent"); a model writes "300万", "3m",
"¥3,000,000" or "riverside district". `same_value` decides whether a prediction states the
reference's value; every rule is here, so the README can say exactly what counts as a match.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

CURRENCY = "$€£¥￥₩₹"
CURRENCY_WORDS = ("rmb", "cny", "usd", "eur", "gbp", "hkd", "dollars", "dollar", "yuan", "元", "块", "圆")
SUFFIX = {"k": 1e3, "thousand": 1e3, "千": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "w": 1e4, "万": 1e4,
          "bn": 1e9, "b": 1e9, "billion": 1e9, "亿": 1e8}
NUMBER = re.compile(r"^([-+]?\d+(?:\.\d+)?)\s*(" + "|".join(sorted(map(re.escape, SUFFIX), key=len, reverse=True))
                    + r")?$")
CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
             "九": 9}
CN_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_BIG = {"万": 10_000, "亿": 100_000_000}
TRUE_WORDS = {"true", "yes", "y", "是", "对", "已解决", "resolved"}
FALSE_WORDS = {"false", "no", "n", "否", "不", "未解决", "unresolved"}
CONTAINMENT = 0.5  # a text matches when one contains the other and the shorter has ≥ half the tokens
TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+")


def fold(text: str) -> str:
    """NFKC (full-width → ASCII), case-folded, whitespace collapsed, outer punctuation stripped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split()).strip(" .,;:!?。，；：！？\"'“”‘’()（）")


def parse_number(value: Any) -> float | None:
    """A number from a value: 3000, "3,000", "3k", "1.2m", "300万", "3.5亿", "¥4,500", "4500元", "三百万"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = fold(value).replace(",", "").replace("_", "")
    for word in CURRENCY_WORDS:
        text = text.removesuffix(word).removeprefix(word).strip()
    text = text.strip(CURRENCY).strip()
    text = text.removesuffix("/month").removesuffix("per month").removesuffix("a month").strip()
    match = NUMBER.match(text)
    if match:
        return float(match.group(1)) * SUFFIX.get(match.group(2) or "", 1.0)
    return chinese_number(text)


def chinese_number(text: str) -> float | None:
    """Chinese numerals, also mixed with digits: 四千五 → 4500, 三百二十万 → 3200000, 2.5万 is handled above."""
    if not text or any(c not in CN_DIGITS and c not in CN_UNITS and c not in CN_BIG for c in text):
        return None
    total, section, digit = 0, 0, 0
    last_unit, literal = 1, False  # literal: a 零 came after the last unit, so a trailing digit is ones
    for char in text:
        if char in CN_DIGITS:
            digit, literal = CN_DIGITS[char], literal or char in "零〇"
        elif char in CN_UNITS:
            section += (digit or 1) * CN_UNITS[char]
            last_unit, digit, literal = CN_UNITS[char], 0, False
        else:
            total += (section + digit) * CN_BIG[char]
            section, digit, last_unit, literal = 0, 0, CN_BIG[char], False
    if digit and last_unit >= 100 and not literal:  # 四千五 = 4500, 两万五 = 25000: one unit below the last
        digit *= last_unit // 10
    return float(total + section + digit)


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = fold(str(value)) if value is not None else ""
    return True if text in TRUE_WORDS else False if text in FALSE_WORDS else None


def is_empty(value: Any) -> bool:
    """None, "", "null", "none", "n/a", "unknown", "未知", "无": the model says nothing."""
    return value is None or (isinstance(value, str) and fold(value) in ("", "null", "none", "n/a", "na",
                                                                          "unknown", "not mentioned", "未知", "无"))


def same_value(pred: Any, gold: Any) -> bool:
    """Whether a predicted value states the gold value (gold is not None)."""
    if is_empty(pred):
        return False
    if isinstance(gold, bool):
        return parse_bool(pred) is gold
    if isinstance(gold, int | float):
        number = parse_number(pred)
        return number is not None and abs(number - float(gold)) <= 1e-6 * max(1.0, abs(float(gold)))
    if isinstance(gold, list):
        return isinstance(pred, list) and sorted(map(_text, pred)) == sorted(map(_text, gold))
    return same_text(_text(pred), _text(gold))


def same_text(pred: str, gold: str) -> bool:
    """Equal after folding, or one contains the other as whole tokens and the shorter has at least half
    the tokens of the longer ("Riverside" ~ "Riverside district", "滨江" ~ "滨江区")."""
    a, b = fold(pred), fold(gold)
    if a == b:
        return True
    ta, tb = TOKEN.findall(a), TOKEN.findall(b)
    short, long = (ta, tb) if len(ta) <= len(tb) else (tb, ta)
    if not short or len(short) < CONTAINMENT * len(long):
        return False
    return any(long[i:i + len(short)] == short for i in range(len(long) - len(short) + 1))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)

"""Text → text with personal data masked (e-mails, phone numbers, ID and card numbers) and counts."""

from __future__ import annotations

import re
from collections import Counter

# Order matters: longer, more specific patterns first so a phone inside an ID is not half-masked.
# Every pattern is linear in the text: bounded repeats, and the e-mail pattern starts only where a run of
# address characters starts (the lookbehind), so a long word is scanned once, not from each of its characters
# (a leftmost match starts at the run's start anyway, so what is masked is unchanged).
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PATTERNS: dict[str, re.Pattern[str]] = {
    "email": EMAIL,
    "id_number": re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])"),
    "card": re.compile(r"(?<!\d)(?:\d{4}[ -]){3}\d{4}(?!\d)"),
    "phone": re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?"
                        r"\d{3,4}[\s.-]\d{4}(?:[\s.-]\d{3,4})?(?!\d)"
                        r"|(?<!\d)1[3-9]\d{9}(?!\d)"),
}
MASKS = {"email": "[EMAIL]", "id_number": "[ID]", "card": "[CARD]", "phone": "[PHONE]"}


# two bare numbers that the phone pattern takes but that read as a range or a pair of years: "8000-9000",
# "2023 2024" (a phone number written that way, with no country or area code, is left alone: a price range in
# a dialogue is far more common than a local number of round hundreds)
_PAIR = re.compile(r"(\d{3,4})[\s.-](\d{4})")


def _number_pair(found: str) -> bool:
    pair = _PAIR.fullmatch(found)
    if pair is None:
        return False
    low, high = int(pair[1]), int(pair[2])
    years = 1900 <= low <= 2099 and 1900 <= high <= 2099
    return years or (low < high and low % 100 == 0 and high % 100 == 0)


def scrub(text: str) -> tuple[str, Counter[str]]:
    """Mask every match; return the new text and how many of each kind were masked."""
    counts: Counter[str] = Counter()
    for kind, pattern in PATTERNS.items():
        def mask(found: re.Match[str], kind: str = kind) -> str:
            if kind == "phone" and _number_pair(found[0]):
                return found[0]
            counts[kind] += 1
            return MASKS[kind]

        text = pattern.sub(mask, text)
    return text, counts

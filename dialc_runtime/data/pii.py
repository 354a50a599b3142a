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


def scrub(text: str) -> tuple[str, Counter[str]]:
    """Mask every match; return the new text and how many of each kind were masked."""
    counts: Counter[str] = Counter()
    for kind, pattern in PATTERNS.items():
        text, n = pattern.subn(MASKS[kind], text)
        if n:
            counts[kind] += n
    return text, counts

"""(labelled record, rule params) → Verdict: cheap deterministic rules (schema, length, PII …)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dialc.schema import LANGUAGE_AXIS, inapplicable_to, is_language_code
from dialc_runtime import regexes
from dialc_runtime.data.pii import EMAIL
from dialc_runtime.models.validation import check_output
from dialc_runtime.quality.text import (
    content_text,
    language_scripts,
    ngrams,
    normalise,
    script_shares,
    tokens,
)
from dialc_runtime.quality.verdict import Verdict

Rule = Callable[[dict[str, Any], dict[str, Any]], Verdict]


def rule_schema(record: dict[str, Any], params: dict[str, Any]) -> Verdict:
    """The parsed value satisfies the task's output constraint (type, bounds, fields)."""
    constraint = record.get("output") or {"kind": "text"}
    if record.get("value") is None and constraint.get("kind") != "json":
        value: Any = record.get("answer")
    else:
        value = record.get("value")
    if value is None and not record.get("ok", True):
        return Verdict.check(False, f"no parsed value: {record.get('error') or 'label failed'}")
    errors = check_output(value, constraint)
    return Verdict.check(not errors, "; ".join(errors) or "valid")


def count_tokens(text: str, tokenizer: Any = None) -> int:
    """Words (one per CJK character) or, when given a tokenizer with encode(), its token count."""
    if tokenizer is not None:
        return len(tokenizer.encode(text, add_special_tokens=False))
    return len(tokens(text))


def rule_length(record: dict[str, Any], params: dict[str, Any]) -> Verdict:
    """Answer length within [min, max] tokens."""
    tokenizer = params.get("tokenizer")  # the score step loads a path into an object
    tokenizer = tokenizer if hasattr(tokenizer, "encode") else None
    n = count_tokens(str(record.get("answer") or ""), tokenizer)
    lo, hi = params.get("min"), params.get("max")
    if lo is not None and n < lo:
        return Verdict.check(False, f"{n} tokens, fewer than {lo}")
    if hi is not None and n > hi:
        return Verdict.check(False, f"{n} tokens, more than {hi}")
    return Verdict.check(True, f"{n} tokens")


def rule_language(record: dict[str, Any], params: dict[str, Any]) -> Verdict:
    """The answer's words are mostly in the requested language's script (score = that share)."""
    kind = (record.get("output") or {}).get("kind", "text")
    if kind in inapplicable_to("rule", "language"):
        return Verdict.not_applicable(f"{kind} output")
    language = params.get("language") or (record.get("expression") or {}).get(LANGUAGE_AXIS)
    if not language:
        return Verdict.not_applicable(f"no {LANGUAGE_AXIS} axis value")
    if not is_language_code(str(language)):  # `validate` refuses these; a plan made by hand may not
        return Verdict.failure(f"{language!r} is not an ISO 639-1 language code (en, zh, zh-Hans …)")
    shares = script_shares(content_text(record))
    if not shares:
        return Verdict.not_applicable("no words to check")
    share = sum(shares.get(s, 0.0) for s in language_scripts(str(language)))
    dominant = max(shares, key=lambda s: shares[s])
    detail = f"{share:.0%} of words in {language}'s script" + (
        "" if share >= 0.5 else f", mostly {dominant}"
    )
    return Verdict.threshold(share, float(params.get("min", 0.5)), detail)


def repetition_ratio(text: str, n: int = 3) -> float:
    """Share of n-grams that repeat an earlier one: 0 for fresh text, near 1 for a loop."""
    grams = ngrams(tokens(text), n)
    if len(grams) < 2:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def rule_repetition(record: dict[str, Any], params: dict[str, Any]) -> Verdict:
    """Repeated n-gram ratio at most `max` (a degenerate, looping answer fails)."""
    n = int(params.get("n", 3))
    limit = float(params.get("max", 0.3))
    ratio = repetition_ratio(content_text(record), n)
    detail = f"{ratio:.0%} of {n}-grams repeated" + ("" if ratio <= limit else f" > {limit:.0%}")
    return Verdict(round(1.0 - ratio, 4), ratio <= limit, detail)


_PII: dict[str, re.Pattern[str]] = {  # specific before general: a card number contains a "phone"
    "email": EMAIL,  # linear: see dialc_runtime.data.pii
    "cn_id": re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])"),
    "card": re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"),
    "ssn": re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
    "cn_mobile": re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)"),
    "phone": re.compile(
        r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{3,4})[\s.-]\d{3,4}[\s.-]\d{3,4}(?!\d)"
    ),
}
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _valid_cn_id(text: str) -> bool:
    total = sum(int(d) * w for d, w in zip(text[:17], _CN_ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == text[17].upper()


def _valid_card(text: str) -> bool:
    digits = [int(d) for d in re.sub(r"\D", "", text)][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def find_pii(text: str, kinds: list[str] | None = None) -> list[tuple[str, str]]:
    """(kind, masked match) for each e-mail, phone number, ID or card number found."""
    found: list[tuple[str, str]] = []
    for kind, pattern in _PII.items():
        if kinds and kind not in kinds:
            continue
        for match in pattern.finditer(text):
            hit = match.group(0)
            if (kind == "cn_id" and not _valid_cn_id(hit)) or (
                kind == "card" and not _valid_card(hit)
            ):
                continue
            if any(hit in prev or prev in hit for _, prev in found):
                continue  # a mobile number is also a phone number: report it once
            found.append((kind, hit))
    return [(kind, _mask(hit)) for kind, hit in found]


def _mask(hit: str) -> str:
    return hit[:2] + "…" + hit[-2:] if len(hit) > 6 else "…"


def rule_pii(record: dict[str, Any], params: dict[str, Any]) -> Verdict:
    """No phone numbers, e-mail addresses, ID or card numbers in the answer."""
    found = find_pii(str(record.get("answer") or ""), params.get("kinds"))
    detail = ", ".join(f"{kind} {masked}" for kind, masked in found)
    return Verdict.check(not found, f"personal data: {detail}" if found else "no personal data")


REFUSALS = (
    "as an ai", "as a language model", "as an artificial intelligence", "i'm just an ai",
    "i cannot help", "i can't help", "i cannot assist", "i can't assist", "i am unable to",
    "i'm unable to", "i cannot provide", "i can't provide", "i'm sorry, but i can",
    "i am sorry, but i can", "i apologize, but i can", "i do not have access",
    "i don't have access", "i cannot fulfill", "i can't fulfill", "i won't be able to",
    "作为一个人工智能", "作为人工智能", "作为一个ai", "作为ai", "作为一个语言模型", "作为语言模型",
    "我无法回答", "我无法提供", "我无法帮助", "我不能回答", "我不能提供", "我无法协助",
    "抱歉,我不能", "抱歉,我无法", "对不起,我不能", "对不起,我无法",
)  # fmt: skip


def _plain(text: str) -> str:
    """Case, width, curly apostrophes and spacing after commas do not matter to a phrase match."""
    return re.sub(r",\s+", ",", normalise(text).replace("’", "'"))


def rule_refusal(record: dict[str, Any], params: dict[str, Any]) -> Verdict:
    """No refusal or assistant boilerplate ("As an AI language model", "我无法回答")."""
    text = _plain(str(record.get("answer") or ""))
    hits = [
        p
        for p in [*REFUSALS, *params.get("phrases", [])]
        if re.search(rf"(?<![a-z]){re.escape(_plain(p))}(?![a-z])", text)  # "as an ai", not "aim"
    ]
    return Verdict.check(not hits, f"refusal/boilerplate: {hits[0]!r}" if hits else "no refusal")


def rule_regex(record: dict[str, Any], params: dict[str, Any]) -> Verdict:
    """A custom pattern that must (or, with must_match false, must not) occur in the answer."""
    pattern = str(params.get("pattern", ""))
    must = params.get("must", "match") == "match" and params.get("must_match", True) is not False
    try:
        found = regexes.search(pattern, str(record.get("answer") or ""), re.MULTILINE)
    except regexes.RegexTimeout as exc:  # counted as failing the check, with the reason
        return Verdict.check(False, str(exc))
    return Verdict.check(found == must, f"{'matches' if found else 'does not match'} /{pattern}/")


RULES: dict[str, Rule] = {
    "schema": rule_schema,
    "length": rule_length,
    "language": rule_language,
    "repetition": rule_repetition,
    "pii": rule_pii,
    "refusal": rule_refusal,
    "regex": rule_regex,
}


def rule_name(params: dict[str, Any]) -> Any:
    """The compiler names the rule `check` (`rule` is accepted too)."""
    return params.get("check", params.get("rule"))


def score_rule(record: dict[str, Any], params: dict[str, Any]) -> Verdict:
    """Apply the dimension's rule (`params["check"]`) to one labelled record."""
    name = rule_name(params)
    if name not in RULES:
        return Verdict.failure(f"unknown rule {name!r} (known: {', '.join(RULES)})")
    return RULES[name](record, params)

"""A regular expression from a spec → why its matching time may not be bounded (None: it is), for `validate`.

dialc matches spec patterns with the `regex` package under a time limit (dialc_runtime.regexes), which keeps
the usual backtracking blow-ups such as `(a+)+$` fast, but no backtracking engine can promise linear time for
every pattern: nested repetition and backreferences are the shapes that can still go exponential. `validate`
warns on them (code `unbounded-regex`); at run time each match stops at the limit and counts as no match.
"""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dialc.diagnostics import Diagnostics
    from dialc.source import Span

try:  # Python 3.11+: the parser behind re.compile
    from re import _constants as _sre
    from re import _parser as _parse
except ImportError:  # pragma: no cover - older layout
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _parse  # type: ignore[no-redef]

_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", _sre.MAX_REPEAT)}
_BACKREFS = {_sre.GROUPREF, _sre.GROUPREF_EXISTS}
MAX_PATTERN_CHARS = 2000  # longer patterns are not analysed (and warned about)


def unbounded_reason(pattern: str) -> str | None:
    """'nested repetition', 'a backreference' … when the pattern may take exponential time; None when safe."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"it is longer than {MAX_PATTERN_CHARS} characters"
    try:
        parsed = _parse.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return None  # an invalid pattern is reported as bad-regex
    return _scan(list(parsed), inside_repeat=False)


def _scan(items: list[tuple[Any, Any]], inside_repeat: bool) -> str | None:
    for op, arg in items:
        if op in _BACKREFS:
            return "it uses a backreference"
        if op in _REPEATS:
            lo, hi, body = arg
            unbounded = hi == _sre.MAXREPEAT or hi > 1000
            if unbounded and inside_repeat:
                return "it nests one unbounded repetition inside another (like (a+)+)"
            # `(,[A-Z]+)*`: each turn starts with a character nothing repeated inside can take, so the
            # turns cannot be split two ways
            separated = unbounded and _separated(list(body))
            if unbounded and _overlapping_branches(list(body)):
                return "it repeats alternatives that can match the same text (like (a|aa)+)"
            found = _scan(list(body), inside_repeat or (unbounded and not separated))
        else:
            found = _scan_children(op, arg, inside_repeat)
        if found:
            return found
    return None


def _separated(body: list[tuple[Any, Any]]) -> bool:
    """The body starts with a literal character that no repetition inside it can match."""
    body = _unwrap(body)
    if not body or body[0][0] is not _sre.LITERAL:
        return False
    first = chr(body[0][1])
    return not any(_may_match(item, first) for item in _repeated_items(body))


def _overlapping_branches(items: list[tuple[Any, Any]]) -> bool:
    """An alternation in `items` (groups opened, nested repetitions not) two of whose branches may start
    with the same character, or with an empty branch: `(a|aa)` is parsed as `a(?:|a)`."""
    for op, arg in items:
        if op is _sre.SUBPATTERN and _overlapping_branches(list(arg[-1])):
            return True
        if op is not _sre.BRANCH:
            continue
        firsts = [_leaves(list(branch))[:1] for branch in arg[1]]
        for i, a in enumerate(firsts):
            for b in firsts[i + 1:]:
                if not a or not b or any(_may_match(a[0], c) and _may_match(b[0], c) for c in _PROBES):
                    return True
    return False


_PROBES = string.printable + "\u00a0é好。"  # characters tried when asking whether two items overlap


def _unwrap(body: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """A body that is one group: the group's items."""
    while len(body) == 1 and body[0][0] is _sre.SUBPATTERN:
        body = list(body[0][1][-1])
    return body


def _repeated_items(items: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every item under a repetition (of any count) within `items`, groups and branches opened."""
    found: list[tuple[Any, Any]] = []
    for op, arg in items:
        if op in _REPEATS:
            found.extend(_leaves(list(arg[2])))
        elif op is _sre.SUBPATTERN:
            found.extend(_repeated_items(list(arg[-1])))
        elif op is _sre.BRANCH:
            for branch in arg[1]:
                found.extend(_repeated_items(list(branch)))
    return found


def _leaves(items: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    out: list[tuple[Any, Any]] = []
    for op, arg in items:
        if op in _REPEATS:
            out.extend(_leaves(list(arg[2])))
        elif op is _sre.SUBPATTERN:
            out.extend(_leaves(list(arg[-1])))
        elif op is _sre.BRANCH:
            for branch in arg[1]:
                out.extend(_leaves(list(branch)))
        else:
            out.append((op, arg))
    return out


_CATEGORIES = {"CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_WORD": r"\w",
               "CATEGORY_NOT_WORD": r"\W", "CATEGORY_SPACE": r"\s", "CATEGORY_NOT_SPACE": r"\S"}


def _may_match(item: tuple[Any, Any], char: str) -> bool:
    """Whether one pattern item may match `char` (True when unsure)."""
    op, arg = item
    if op is _sre.LITERAL:
        return chr(arg) == char
    if op is _sre.NOT_LITERAL:
        return chr(arg) != char
    if op is _sre.ANY:
        return char != "\n"
    if op is _sre.IN:
        negate = any(o is _sre.NEGATE for o, _ in arg)
        hit = any(_in_item(o, a, char) for o, a in arg if o is not _sre.NEGATE)
        return hit != negate
    return op not in (_sre.AT,)


def _in_item(op: Any, arg: Any, char: str) -> bool:
    if op is _sre.LITERAL:
        return chr(arg) == char
    if op is _sre.RANGE:
        return arg[0] <= ord(char) <= arg[1]
    if op is _sre.CATEGORY:
        shape = _CATEGORIES.get(str(arg))
        return shape is None or re.fullmatch(shape, char) is not None
    return True


def _scan_children(op: Any, arg: Any, inside_repeat: bool) -> str | None:
    """Groups, alternations, lookarounds and conditionals: scan what they contain."""
    if op is _sre.SUBPATTERN:
        return _scan(list(arg[-1]), inside_repeat)
    if op is _sre.BRANCH:
        return next((r for r in (_scan(list(b), inside_repeat) for b in arg[1]) if r), None)
    if op in (_sre.ASSERT, _sre.ASSERT_NOT):
        return _scan(list(arg[1]), inside_repeat)
    if op is getattr(_sre, "ATOMIC_GROUP", None):
        return _scan(list(arg), inside_repeat)
    return None


def warn_unbounded(pattern: str, span: Span | None, diags: Diagnostics) -> None:
    """Report `unbounded-regex` at the pattern when its matching time may not be bounded."""
    reason = unbounded_reason(pattern)
    if reason:
        diags.report("unbounded-regex", f"/{pattern[:80]}/ may take exponential time to match: {reason}; "
                     "dialc stops each match after 1 s and counts it as no match", span)

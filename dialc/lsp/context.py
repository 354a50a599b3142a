"""Text before the cursor → where the cursor stands (which block, field, value or string), without parsing.

A spec being typed is mostly invalid, so completion and hover read the text with a small tolerant scanner
instead of the parser: it tracks the blocks, values and strings open at the cursor and the state of the
member being written (`field = value`, `name: type`, `keep when …`), and never fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as default

TOKEN = re.compile(r"""
    (?P<ws>[ \t\f\r\n\ufeff]+)
  | (?P<comment>(?:\#|//)[^\n]*)
  | (?P<long>\"\"\"(?:[^"\\]|\\.|"(?!""))*(?:\"\"\"|\Z))
  | (?P<string>"(?:[^"\\\n]|\\.)*(?:"|(?=\n)|\Z))
  | (?P<number>-?\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[^\W\d]\w*)
  | (?P<op>\.\.|>=|<=|==|!=|[{}\[\]()=:,*?.<>])
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)
_WORD_CHAR = re.compile(r"\w")
MEMBER_FRAMES = ("top", "decl", "value_block")
_CLOSERS = {"}": "{", "]": "[", ")": "("}
_KEYWORDS = ("keep", "when", "expect", "and", "or", "not")


@dataclass
class Frame:
    """A block, bracketed value or member list open at the cursor."""

    kind: str  # top, decl, value_block (lora { … }), dict, list, call, paren
    words: list[str] = default(default_factory=list)  # a decl's header words; a value_block's kind word
    field: str | None = None  # the field this value (or the innermost assignment) belongs to
    func: str | None = None  # a call's name: gold(…), mean(…)
    opener: str = "{"
    # the member being written (member frames), or the position inside a value frame
    state: str = "start"
    member: list[str] = default(default_factory=list)
    expr: str | None = None  # keep / expect while in an expression
    key: str | None = None  # the current key of a dict
    last_name: str | None = None  # the last name read (the word before '(' or '{')

    @property
    def decl_kind(self) -> str | None:
        return self.words[0] if self.kind == "decl" and self.words else None

    @property
    def qualifier(self) -> str | None:
        return self.words[2] if self.kind == "decl" and len(self.words) > 2 else None


@dataclass
class Cursor:
    """Where the cursor is: the frames open around it, the word being typed, and any string or comment."""

    frames: list[Frame]
    prefix: str = ""  # the part of a name before the cursor
    string: str | None = None  # the text of an unclosed string before the cursor (without the quote)
    in_comment: bool = False

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    @property
    def member_frame(self) -> Frame:
        """The innermost block whose members are being written (the decl holding a value being typed)."""
        return next(f for f in reversed(self.frames) if f.kind in MEMBER_FRAMES)

    @property
    def field(self) -> str | None:
        """The field whose value holds the cursor, if any."""
        for frame in reversed(self.frames):
            if frame.kind not in MEMBER_FRAMES:
                if frame.field is not None:
                    return frame.field
                continue
            return frame.member[0] if frame.state in ("value", "done") and frame.member else None
        return None

    @property
    def in_include(self) -> bool:
        """The cursor is in the path of an `include "…"`."""
        frame = self.frame
        return self.string is not None and frame.kind == "top" and frame.member == ["include"]

    @property
    def role(self) -> str:
        """member, header, value, key, type, expr, string, comment or none."""
        if self.in_comment:
            return "comment"
        if self.string is not None:
            return "string"
        frame = self.frame
        if frame.kind != "dict" and frame.kind not in MEMBER_FRAMES and frame.state in ("type", "type_done"):
            return "type" if frame.kind == "list" and frame.state == "type" else "none"
        if frame.kind == "dict":
            return "key" if frame.state == "key" else "value"
        if frame.kind in ("list", "call"):
            return "type" if frame.state == "type" else "value"
        if frame.kind == "paren":
            return "expr"
        return {"start": "member", "done": "member", "type_done": "member", "entry": "member",
                "expr_operand": "member", "header": "header", "value": "value", "type": "type",
                "expr": "expr", "keep_when": "keep_when"}.get(frame.state, "none")


def word_at(text: str, offset: int) -> tuple[int, int]:
    """The [start, end) character range of the name under or just before `offset` (empty when none)."""
    start = offset
    while start > 0 and _WORD_CHAR.match(text[start - 1]):
        start -= 1
    end = offset
    while end < len(text) and _WORD_CHAR.match(text[end]):
        end += 1
    return start, end


def scan(text: str, offset: int) -> Cursor:
    """The cursor context at `offset` in `text` (any text: unbalanced, unterminated, garbage)."""
    before = text[:offset]
    cursor = Cursor(frames=[Frame(kind="top")])
    for match in TOKEN.finditer(before):
        kind, value = match.lastgroup or "other", match.group()
        if kind == "ws":
            continue
        at_end = match.end() == len(before)
        if kind == "comment":
            cursor.in_comment = at_end and "\n" not in value
            continue
        if kind in ("string", "long") and at_end and _unclosed(value, kind):
            cursor.string = value[3:] if kind == "long" else value[1:]
            return cursor
        if kind == "name" and at_end:
            cursor.prefix = value
            return cursor
        _feed(cursor.frames, kind, value)
    return cursor


def _unclosed(value: str, kind: str) -> bool:
    if kind == "long":
        return len(value) < 6 or not value.endswith('"""')
    return len(value) < 2 or not value.endswith('"') or value.endswith('\\"') and not value.endswith('\\\\"')


def _feed(frames: list[Frame], kind: str, value: str) -> None:
    frame = frames[-1]
    if kind == "op" and value in _CLOSERS:
        _close(frames, value)
    elif kind == "op" and value in "{[(":
        _open(frames, value)
    elif frame.kind in MEMBER_FRAMES:
        _member_token(frame, kind, value)
    else:
        _value_token(frame, kind, value)


def _member_token(frame: Frame, kind: str, value: str) -> None:
    """One token of a block's members: `name = value`, `name: type`, headers, entries, keep/expect."""
    state = frame.state
    if kind == "name":
        frame.last_name = value
        if state == "keep_when" and value == "when":
            frame.state = "expr"
        elif state == "header":
            frame.member.append(value)
        elif state == "value":
            frame.state = "done"
        elif state == "type":
            frame.state = "type_done"
        elif state == "expr" or (state == "expr_operand" and value in ("and", "or")):
            frame.state = "expr" if value in ("and", "or", "not") else "expr_operand"
        elif state == "entry" and value == "weight":
            frame.state = "entry_weight"
        else:
            _start_member(frame, value)
        if value in _KEYWORDS:
            frame.last_name = None
    elif kind in ("string", "long", "number"):
        frame.last_name = None
        if state in ("value", "entry_weight") or (state == "header" and frame.member[:1] == ["include"]):
            frame.state = "done"
        elif state == "header" and len(frame.member) == 1:
            frame.state = "entry"
        elif state == "expr":
            frame.state = "expr_operand"
    elif value == "=" and state == "header" and len(frame.member) == 1:
        frame.state = "value"
    elif value == ":" and state == "header" and len(frame.member) == 1:
        frame.state = "type"
    elif value in ("*", "..") and state == "done":
        frame.state = "value"
    elif value in (">=", "<=", "==", "!=", ">", "<", ".") and state == "expr_operand":
        frame.state = "expr"


def _start_member(frame: Frame, word: str) -> None:
    frame.expr = None
    if word == "keep":
        frame.member, frame.state, frame.expr = [word], "keep_when", "keep"
    elif word == "expect":
        frame.member, frame.state, frame.expr = [word], "expr", "expect"
    else:
        frame.member, frame.state = [word], "header"


def _value_token(frame: Frame, kind: str, value: str) -> None:
    """One token inside a dict, list, call or parenthesised expression."""
    if kind == "name":
        frame.last_name = value
        if frame.kind == "dict" and frame.state == "key":
            frame.key = value
            frame.state = "after_key"
        elif frame.state == "type":
            frame.state = "type_done"
        elif frame.state != "type_done":
            frame.state = "after_value"
        return
    frame.last_name = None
    if frame.state in ("type", "type_done"):  # enum(a, b), [lo..hi], (max 40): still inside a type
        frame.state = "type_done"
    elif kind in ("string", "long") and frame.kind == "dict" and frame.state == "key":
        frame.key = value.strip('"')
        frame.state = "after_key"
    elif value == ":" and frame.kind == "dict":
        frame.state = "value"
    elif value == ",":
        frame.state = "key" if frame.kind == "dict" else "value"
    elif value in ("=", "*", "..") or value in (">=", "<=", "==", "!=", ">", "<"):
        frame.state = "value"
    elif kind in ("string", "long", "number"):
        frame.state = "after_value"


def _open(frames: list[Frame], bracket: str) -> None:
    parent = frames[-1]
    name = parent.last_name
    if parent.kind in MEMBER_FRAMES:
        state = parent.state
        current = parent.member[0] if parent.member else None
        if bracket == "{" and state == "header":
            frames.append(Frame(kind="decl", words=list(parent.member)))
            return
        typed = state in ("type", "type_done")
        expr = state in ("expr", "expr_operand")
        if bracket == "{" and state == "done" and name is not None:
            frames.append(Frame(kind="value_block", words=[name], field=current))
        elif bracket == "(" and expr:
            frames.append(Frame(kind="call" if name else "paren", func=name, field=current, opener="(",
                                state="value", expr=parent.expr))
        elif bracket == "(" and state == "done" and name is not None:
            frames.append(Frame(kind="call", func=name, field=current, opener="(", state="value"))
        else:
            kind = {"{": "dict", "[": "list", "(": "paren"}[bracket]
            frames.append(Frame(kind=kind, field=current, opener=bracket,
                                state="type" if typed else ("key" if bracket == "{" else "value")))
        return
    if bracket == "(" and name is not None:
        frames.append(Frame(kind="call", func=name, field=parent.field, opener="(", state="value", expr=parent.expr))
    else:
        kind = {"{": "dict", "[": "list", "(": "paren"}[bracket]
        state = "type" if parent.state in ("type", "type_done") else ("key" if bracket == "{" else "value")
        frames.append(Frame(kind=kind, field=parent.field, opener=bracket, state=state, expr=parent.expr))


def _close(frames: list[Frame], bracket: str) -> None:
    """Pop up to the matching opener (an unmatched closer is ignored, as garbage)."""
    opener = _CLOSERS[bracket]
    depth = next((i for i in range(len(frames) - 1, 0, -1) if frames[i].opener == opener), None)
    if depth is None:
        return
    closed = frames[depth]
    del frames[depth:]
    parent = frames[-1]
    parent.last_name = None
    if parent.kind not in MEMBER_FRAMES:
        parent.state = "type_done" if closed.state in ("type", "type_done") else "after_value"
    elif closed.kind == "decl":
        parent.state, parent.member = "start", []
    elif parent.state in ("type", "type_done"):
        parent.state = "type_done"
    elif parent.state in ("expr", "expr_operand"):
        parent.state = "expr_operand"
    else:
        parent.state = "done"

"""dialc/schema.py (kinds, fields, qualifiers) → the TextMate grammar of editors/vscode, so it cannot drift.

`python -m dialc.textmate` prints the grammar; `--write` rewrites editors/vscode/syntaxes/dial.tmLanguage.json;
a test checks the file is in sync. The token rules follow dialc/grammar/dial.lark (names, numbers, strings,
comments); declaration kinds, dimension qualifiers and field names come from the schema, so a known field
(`category =`) and a user-named one (an expression axis, `tone =`) or a misspelt one are scoped apart.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from dialc.resolve import METHOD_FIELDS
from dialc.schema import DIMENSION_FIELDS, KINDS

GRAMMAR = Path(__file__).resolve().parent.parent / "editors" / "vscode" / "syntaxes" / "dial.tmLanguage.json"

NAME = r"[^\W\d]\w*"  # dial.lark NAME
NUMBER = r"(?<!\w)-?\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?(?!\w)"  # dial.lark NUMBER, not inside a name
MEMBER_KINDS = ("output",)  # declarations that only appear inside another (`task t { output { … } }`)
PRIMITIVE_TYPES = ("int", "float", "str", "bool")
LOGICAL = ("and", "or", "not")
HEADER = {"_1": "storage.type.declaration.dial", "_2": "entity.name.type.dial", "_3": "storage.modifier.dial"}


def declaration_kinds() -> list[str]:
    """Every word that starts a declaration: the schema's kinds and the member declarations."""
    return sorted({*KINDS, *MEMBER_KINDS})


def qualifiers() -> list[str]:
    """The third word of a dimension (`dimension helpful judge { … }`)."""
    return sorted({q for spec in KINDS.values() for q in spec.qualifiers})


def field_names() -> list[str]:
    """Every field some declaration, dimension or fine-tuning method accepts."""
    names = {f for spec in KINDS.values() for f in spec.fields}
    names |= {f for fields in DIMENSION_FIELDS.values() for f in fields}
    return sorted(names | set(METHOD_FIELDS))


def words(names: list[str] | tuple[str, ...]) -> str:
    """An alternation of whole words, longest first (so `tasks` is not read as `task`)."""
    return "(?:" + "|".join(re.escape(n) for n in sorted(names, key=lambda n: (-len(n), n))) + ")"


def _match(regex: str, name: str | None = None, **captures: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"match": regex}
    if name:
        rule["name"] = name
    if captures:
        rule["captures"] = {k.lstrip("_"): {"name": v} for k, v in captures.items()}
    return rule


def _include(*names: str) -> list[dict[str, str]]:
    return [{"include": f"#{n}"} for n in names]


def repository() -> dict[str, Any]:
    """The named rule sets; `values` is what may stand right of `=` (and inside calls, lists and dicts)."""
    qualified = words([k for k, spec in KINDS.items() if spec.qualifiers])  # dimension
    kinds = words([k for k in declaration_kinds() if k not in KINDS or not KINDS[k].qualifiers])
    quals, fields = words(qualifiers()), words(field_names())
    return {
        "comments": {"patterns": [
            _match(r"(//).*$", "comment.line.double-slash.dial", _1="punctuation.definition.comment.dial"),
            _match(r"(#).*$", "comment.line.number-sign.dial", _1="punctuation.definition.comment.dial"),
        ]},
        "strings": {"patterns": [
            {"name": "string.quoted.triple.dial", "begin": '"""', "end": '"""',
             "beginCaptures": {"0": {"name": "punctuation.definition.string.begin.dial"}},
             "endCaptures": {"0": {"name": "punctuation.definition.string.end.dial"}},
             "patterns": _include("string-escapes", "placeholders")},
            {"name": "string.quoted.double.dial", "begin": '"', "end": '(")|$',
             "beginCaptures": {"0": {"name": "punctuation.definition.string.begin.dial"}},
             "endCaptures": {"1": {"name": "punctuation.definition.string.end.dial"}},
             "patterns": _include("string-escapes", "placeholders")},
        ]},
        "string-escapes": {"patterns": [_match(r"\\.", "constant.character.escape.dial")]},
        "placeholders": {"patterns": [
            _match(rf"(\{{)({NAME})(\}})", "variable.other.placeholder.dial",
                   _1="punctuation.definition.placeholder.begin.dial",
                   _3="punctuation.definition.placeholder.end.dial"),
        ]},
        "include": {"patterns": [_match(r"\b(include)\b(?!\s*=)", _1="keyword.control.import.dial")]},
        "declarations": {"patterns": [
            # `task extract {`, `dimension helpful judge {`, `scenarios {`; or a header alone on its line (`{` below)
            _match(rf"\b({qualified})(?:\s+({NAME}))?(?:\s+({quals}))?(?=\s*\{{)", **HEADER),
            _match(rf"^\s*({qualified})(?:\s+({NAME}))?(?:\s+({quals}))?(?=\s*(?:$|//|#))", **HEADER),
            _match(rf"\b({kinds})(?:\s+({NAME}))?(?=\s*\{{)", **HEADER),
            _match(rf"^\s*({kinds})(?:\s+({NAME}))?(?=\s*(?:$|//|#))", **HEADER),
        ]},
        "rules": {"patterns": [
            _match(r"\b(keep)\s+(when)\b", _1="keyword.control.keep.dial", _2="keyword.control.when.dial"),
            _match(r"\b(expect)\b", _1="keyword.control.expect.dial"),
        ]},
        "fields": {"patterns": [
            _match(rf"\b({fields})\s*(=)(?!=)", _1="keyword.other.field.dial", _2="keyword.operator.assignment.dial"),
            _match(rf"\b({NAME})\s*(=)(?!=)", _1="variable.other.property.dial",
                   _2="keyword.operator.assignment.dial"),
        ]},
        "schema-fields": {"patterns": [{
            "begin": rf"\b({NAME})\s*(:)",
            "beginCaptures": {"1": {"name": "variable.other.field.dial"},
                              "2": {"name": "punctuation.separator.key-value.dial"}},
            "end": rf"(?=\}}|//|#|\b{NAME}\s*:)|$",
            "patterns": _include("comments", "types"),
        }]},
        "types": {"patterns": [
            {"begin": r"\b(enum)\s*(\()", "end": r"\)",
             "beginCaptures": {"1": {"name": "support.type.primitive.dial"},
                               "2": {"name": "punctuation.section.parens.begin.dial"}},
             "endCaptures": {"0": {"name": "punctuation.section.parens.end.dial"}},
             "patterns": [*_include("comments"), _match(NAME, "variable.other.enummember.dial"),
                          _match(",", "punctuation.separator.comma.dial")]},
            _match(rf"\b{words(PRIMITIVE_TYPES)}\b", "support.type.primitive.dial"),
            _match(rf"\b({NAME})(?=\s+-?\d)", _1="keyword.other.bound.dial"),  # (max 40)
            _match(NUMBER, "constant.numeric.dial"),
            _match(r"\.\.", "keyword.operator.range.dial"),
            _match(r"\?", "keyword.operator.optional.dial"),
            *_include("punctuation"),
            _match(NAME, "support.type.dial"),
        ]},
        "entries": {"patterns": [
            _match(rf"\b({NAME})(?=\s+\")", _1="entity.name.type.scenario.dial"),  # rental "Renting" weight 3
            _match(r"\b(weight)(?=\s+-?\d)", _1="keyword.other.weight.dial"),
        ]},
        "calls": {"patterns": [{
            "begin": rf"\b(?!{words(LOGICAL)}\b)({NAME})\s*(\()", "end": r"\)",
            "beginCaptures": {"1": {"name": "support.function.dial"},
                              "2": {"name": "punctuation.section.parens.begin.dial"}},
            "endCaptures": {"0": {"name": "punctuation.section.parens.end.dial"}},
            "patterns": [
                _match(rf"\b({NAME})\s*(=)(?!=)", _1="variable.parameter.dial", _2="keyword.operator.assignment.dial"),
                *_include("values"),
            ],
        }]},
        "dicts": {"patterns": [{
            "begin": r"(?<=[=,\[(:])\s*(\{)", "end": r"\}",
            "beginCaptures": {"1": {"name": "punctuation.section.braces.begin.dial"}},
            "endCaptures": {"0": {"name": "punctuation.section.braces.end.dial"}},
            "patterns": [
                *_include("comments"),
                _match(rf"\b({NAME})\s*(:)", _1="support.type.property-name.dial",
                       _2="punctuation.separator.key-value.dial"),
                {"match": r'("(?:[^"\\\n]|\\.)*")\s*(:)',
                 "captures": {"1": {"name": "support.type.property-name.dial string.quoted.double.dial"},
                              "2": {"name": "punctuation.separator.key-value.dial"}}},
                *_include("values"),
            ],
        }]},
        "operators": {"patterns": [
            _match(rf"\b{words(LOGICAL)}\b", "keyword.operator.logical.dial"),
            _match(r">=|<=|==|!=|>|<", "keyword.operator.comparison.dial"),
            _match(r"\.\.", "keyword.operator.range.dial"),
            _match(r"\*", "keyword.operator.product.dial"),
            _match(r"\?", "keyword.operator.optional.dial"),
            _match(r"=", "keyword.operator.assignment.dial"),
            _match(r"\.", "punctuation.accessor.dial"),
        ]},
        "punctuation": {"patterns": [
            _match(r"\{", "punctuation.section.block.begin.dial"),
            _match(r"\}", "punctuation.section.block.end.dial"),
            _match(r"\[", "punctuation.section.brackets.begin.dial"),
            _match(r"\]", "punctuation.section.brackets.end.dial"),
            _match(r"\(", "punctuation.section.parens.begin.dial"),
            _match(r"\)", "punctuation.section.parens.end.dial"),
            _match(",", "punctuation.separator.comma.dial"),
            _match(":", "punctuation.separator.key-value.dial"),
        ]},
        "constants": {"patterns": [
            _match(NUMBER, "constant.numeric.dial"),
            _match(r"\b(?:true|false)\b", "constant.language.boolean.dial"),
        ]},
        "names": {"patterns": [_match(NAME, "variable.other.dial")]},
        "values": {"patterns": _include("comments", "strings", "calls", "dicts", "constants", "operators",
                                        "punctuation", "names")},
    }


def grammar() -> dict[str, Any]:
    """The whole grammar. Order matters where two rules match at one position: the first listed wins."""
    top = _include("comments", "strings", "include", "rules", "declarations", "calls", "dicts", "fields",
                   "schema-fields", "entries", "constants", "operators", "punctuation", "names")
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "dial",
        "scopeName": "source.dial",
        "fileTypes": ["dial"],
        "comment": "Generated by `python -m dialc.textmate --write` from dialc/schema.py: do not edit by hand.",
        "patterns": top,
        "repository": repository(),
    }


def render() -> str:
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


def write(path: Path = GRAMMAR) -> bool:
    """Rewrite the grammar file; True when it changed."""
    text = render()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str]) -> None:
    if "--write" in argv:
        print(f"{GRAMMAR} " + ("updated" if write() else "already up to date"))
    else:
        sys.stdout.write(render())


if __name__ == "__main__":
    main(sys.argv[1:])

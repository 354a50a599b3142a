"""dialc/schema.py → Markdown for hover and completion: each kind and field with its type, bounds, default, meaning."""

from __future__ import annotations

from typing import Any

from dialc.resolve import METHOD_FIELDS
from dialc.schema import DIMENSION_FIELDS, KINDS, FieldSpec

TYPE_WORDS = {
    "int": "integer", "float": "number", "weight": "number ≥ 0", "str": "string", "bool": "true | false",
    "word": "a name", "regex": "regular expression (string)", "ref": "the name of a declaration",
    "refs": "a list of declaration names", "names": "a list of names", "weights": "{value: weight, …}",
    "strings": "{name: \"text\", …}", "range": "an integer range lo..hi", "product": "names joined by *",
    "model_method": "lora | full | lora { … }", "source_field": "\"field\" or field(\"field\")",
    "domain": "gold(TESTSET) | holdout(FRACTION) | [both]", "suites": "[suite(\"…\"), …]",
    "output": "output constraint", "roles": "[role, …] or {role: [labels]}",
}
MEMBER_DOCS = {
    "include": "`include \"path.dial\"`: read another spec file (relative to this one) before this one's declarations",
    "keep": "`keep when EXPR`: the keep rule; records for which the expression is false are filtered out "
            "(names: `score`, the dimensions, record fields, expression axes)",
    "expect": "`expect EXPR`: a data test over the filtered set; a failed test stops the run at a gate "
              "(metrics: kept_rate, kept, mean(DIM), pass_rate(DIM), balance_p(KEY) …)",
    "output": "`output { name: type … }`: the task's JSON output schema (int, float, str, bool, enum(a, b), [type]; "
              "`?` nullable; `[lo..hi]` and `(max N)` bounds)",
}
EXPRESSION_NAMES = {  # what a keep rule or data test may name besides the dimensions (README: "Data tests")
    "score": "the weighted mean of the record's dimension scores (0..1; dimensions that do not apply left out)",
    "kept_rate": "share of all labelled records kept (0..1)", "rejected_rate": "share of all labelled records rejected",
    "kept": "number of kept records", "rejected": "number of rejected records", "records": "number of labelled records",
    "duplicate_rate": "share of all labelled records a dimension found to copy an earlier one",
    "distinct_1": "distinct words / words over the kept answers",
    "distinct_2": "distinct word pairs / pairs over the kept answers",
    "mean": "`mean(DIM)` or `mean(score)`: the mean score over the kept records the dimension applies to",
    "pass_rate": "`pass_rate(DIM)`: the share of the kept records (it applies to) that pass the dimension",
    "balance_p": "`balance_p(KEY)`: chi-square p-value that the kept records keep the input's distribution over KEY",
    "category": "the record's task category", "scenario": "the record's scenario", "task_id": "the record's task",
    "dialogue_id": "the record's dialogue",
}
OUTPUT_TYPES = {
    "int": "integer; bound it with `[lo..hi]`", "float": "number; bound it with `[lo..hi]`",
    "str": "string; bound it with `(max N)`", "bool": "true or false", "enum": "one of the listed names: `enum(a, b)`",
}


def show(value: Any) -> str:
    """A default value as it would be written in a spec."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        if len(value) == 2 and all(isinstance(v, int) for v in value):
            return f"{value[0]}..{value[1]}"
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def bounds(spec: FieldSpec) -> str | None:
    """`0..1`, `≥ 1`, `≤ 10`, or None."""
    if spec.lo is not None and spec.hi is not None:
        return f"{show(spec.lo)}..{show(spec.hi)}"
    if spec.lo is not None:
        return f"≥ {show(spec.lo)}"
    if spec.hi is not None:
        return f"≤ {show(spec.hi)}"
    return None


def type_text(spec: FieldSpec) -> str:
    if spec.options and spec.type in ("choice", "names"):
        words = " | ".join(spec.options)
        return words if spec.type == "choice" else f"[{words}, …]"
    if spec.type in ("ref", "refs", "product") and spec.ref_kinds:
        what = " or ".join(spec.ref_kinds)
        return {"ref": f"the name of a {what}", "refs": f"a list of {what} names",
                "product": f"{' * '.join(spec.ref_kinds)} names joined by *"}[spec.type]
    return TYPE_WORDS.get(spec.type, spec.type)


def field_markdown(name: str, spec: FieldSpec, owner: str) -> str:
    """One field: `name` · type · required/default · bounds, then its meaning."""
    facts = [f"**{name}** ({owner}) · {type_text(spec)}"]
    if spec.required:
        facts.append("required")
    elif spec.default is not None:
        facts.append(f"default `{show(spec.default)}`")
    span = bounds(spec)
    if span:
        facts.append(f"range {span}")
    return " · ".join(facts) + "\n\n" + spec.doc


def fields_of(kind: str, qualifier: str | None = None) -> dict[str, FieldSpec]:
    """The fields a declaration (a dimension: of its qualifier; `lora`/`full`: method blocks) takes."""
    if kind == "dimension":
        return DIMENSION_FIELDS.get(qualifier or "", {})
    if kind in ("lora", "full"):
        return METHOD_FIELDS
    spec = KINDS.get(kind)
    return spec.fields if spec else {}


def kind_markdown(kind: str, qualifier: str | None = None) -> str | None:
    """A declaration kind (or a dimension kind): what it is, its form and its fields."""
    if kind == "dimension" and qualifier in DIMENSION_FIELDS:
        head = f"**dimension … {qualifier}**: a quality dimension scored by a {qualifier}"
    elif kind in KINDS:
        spec = KINDS[kind]
        form = f"{kind} NAME {{ … }}" if spec.named else f"{kind} {{ … }}"
        if spec.qualifiers:
            form = f"{kind} NAME {'|'.join(spec.qualifiers)} {{ … }}"
        head = f"**{kind}**: {spec.doc}\n\n`{form}`" + (" (declared once)" if spec.singleton else "")
    elif kind in MEMBER_DOCS:
        return MEMBER_DOCS[kind]
    else:
        return None
    fields = fields_of(kind, qualifier)
    lines = [f"* `{name}`{' (required)' if f.required else ''}: {f.doc}" for name, f in fields.items()]
    return head + ("\n\nFields:\n" + "\n".join(lines) if lines else "")

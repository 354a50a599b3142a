"""dialc fmt: idempotent, keeps meaning and comments; layout rules; `fmt --check` exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dialc import syntax as ast
from dialc.checks import run_checks
from dialc.cli import app
from dialc.compiler import compile_plan
from dialc.diagnostics import Diagnostics
from dialc.formatter import format_module
from dialc.frontend import display_path, load_modules, parse_file, parse_text
from dialc.plan import Plan
from dialc.resolve import resolve
from dialc.source import Source

ROOT = Path(__file__).resolve().parent.parent


def _parses(path: Path) -> bool:
    diags = Diagnostics()
    return parse_file(path, diags) is not None and not diags.has_errors()


SPECS = sorted(ROOT.glob("specs/**/*.dial"))
TEST_SPECS = sorted(p for p in ROOT.glob("tests/**/*.dial") if _parses(p))
ALL_SPECS = [pytest.param(p, id=p.relative_to(ROOT).as_posix()) for p in SPECS + TEST_SPECS]


def parse(text: str, name: str = "t.dial") -> ast.Module:
    diags = Diagnostics()
    module = parse_text(Source(name, text), diags)
    assert module is not None and not diags.has_errors(), [d.message for d in diags.items]
    return module


def fmt(text: str) -> str:
    return format_module(parse(text), text)


def strip_spans(value: Any) -> Any:
    """A model dump without positions (nor `long`, how a string was written): what fmt must keep."""
    if isinstance(value, dict):
        return {k: strip_spans(v) for k, v in value.items()
                if k not in ("span", "field_spans", "file", "long") and not k.endswith("_span")}
    if isinstance(value, list):
        return [strip_spans(v) for v in value]
    return value


def meaning(module: ast.Module) -> Any:
    return strip_spans(module.model_dump(exclude={"comments", "file"}))


def comment_texts(module: ast.Module) -> list[str]:
    return [c.text.rstrip() for c in module.comments]


# ---- properties on every real spec --------------------------------------------------------------
def test_there_are_specs_to_check() -> None:
    assert SPECS, "specs/ holds no .dial files"


@pytest.mark.parametrize("path", ALL_SPECS)
def test_idempotent(path: Path) -> None:
    once = fmt(path.read_text(encoding="utf-8"))
    assert fmt(once) == once


@pytest.mark.parametrize("path", ALL_SPECS)
def test_meaning_and_comments_preserved(path: Path) -> None:
    original = path.read_text(encoding="utf-8")
    before = parse(original)
    after = parse(format_module(before, original))
    assert meaning(after) == meaning(before)
    assert comment_texts(after) == comment_texts(before)


def compile_modules(modules: list[ast.Module], check_files: bool = True) -> Plan | None:
    diags = Diagnostics()
    ir = resolve(modules, modules[-1].file, diags)
    run_checks(ir, diags, check_files=check_files)
    return None if diags.has_errors() or ir.pipeline is None else compile_plan(ir, modules[-1].file)


def plan_of(path: Path, formatted: bool) -> Plan | None:
    """The plan of `path` (None if it has errors), optionally with every loaded file formatted.

    The formatted text is parsed under its file's own name, so relative paths resolve and the
    names in spans and plans are those of the original."""
    diags = Diagnostics()
    modules = load_modules(path, diags, display_path(path))
    if not modules or diags.has_errors():
        return None
    if formatted:
        modules = [parse(format_module(m, Path(m.file).read_text(encoding="utf-8")), m.file)
                   for m in modules]
    return compile_modules(modules)


def plan_json(plan: Plan) -> Any:
    dump = plan.model_dump(mode="json")
    for step in dump["steps"]:  # positions move when formatting; fingerprints must not
        step.pop("locations")
    return strip_spans(dump)


@pytest.mark.parametrize("path", ALL_SPECS)
def test_plan_unchanged(path: Path) -> None:
    before = plan_of(path, formatted=False)
    if before is None:
        pytest.skip("not a complete spec (an included fragment or a diagnostics test)")
    after = plan_of(path, formatted=True)
    assert after is not None
    assert plan_json(after) == plan_json(before)


def test_fingerprints_do_not_depend_on_layout() -> None:
    spec = ROOT / "specs" / "realestate.dial"
    taxonomy_path = spec.parent / "shared" / "realestate_taxonomy.dial"
    text = spec.read_text(encoding="utf-8").replace(f'include "shared/{taxonomy_path.name}"\n', "")
    taxonomy = parse(taxonomy_path.read_text(encoding="utf-8"))
    before = compile_modules([taxonomy, parse(text, "x.dial")], check_files=False)
    moved = parse("# one more line\n" + text, "x.dial")
    after = compile_modules([taxonomy, moved], check_files=False)
    assert before is not None and after is not None
    assert [s.fingerprint for s in after.steps] == [s.fingerprint for s in before.steps]


# ---- layout rules --------------------------------------------------------------------------------
def test_canonical_layout() -> None:
    messy = ('include   "shared/x.dial"\n'
             'pipeline p {seed=42 description="d"}\n'
             'model m {path="p" temperature=0.7 max_tokens=160 retries=2 batch_size=8 top_p=0.95 backend=openai}\n'
             'finetune domain { base = small\n'
             '  method = lora {r=8 alpha=16}   epochs = 1 }\n')
    assert fmt(messy) == ('include "shared/x.dial"\n'
                          "\n"
                          'pipeline p { seed = 42  description = "d" }\n'
                          "\n"
                          "model m {\n"
                          '  path = "p"\n'
                          "  temperature = 0.7\n"
                          "  max_tokens = 160\n"
                          "  retries = 2\n"
                          "  batch_size = 8\n"
                          "  top_p = 0.95\n"
                          "  backend = openai\n"
                          "}\n"
                          "\n"
                          "finetune domain {\n"
                          "  base = small\n"
                          "  method = lora { r = 8  alpha = 16 }\n"
                          "  epochs = 1\n"
                          "}\n")


def test_long_inline_values_break_and_multi_line_ones_stay_broken() -> None:
    targets = ", ".join(f"module_number_{i}" for i in range(10))
    text = f"x {{\n  t = [{targets}]\n  d = {{\n    a: 1, b: 2}}\n  s = [a, b]\n}}\n"
    out = fmt(text)
    assert "  t = [\n    module_number_0,\n" in out and "    module_number_9,\n  ]\n" in out
    assert "  d = {\n    a: 1,\n    b: 2,\n  }\n" in out
    assert "  s = [a, b]\n" in out
    assert all(len(line) <= 100 for line in out.splitlines())


def test_entries_and_dimensions_aligned_in_columns() -> None:
    text = ('scenarios {\n  rental "Renting" weight 3\n'
            '  after_sales "Handover and repairs" weight 1\n  x "No weight"\n}\n'
            'quality {\n  dimension valid rule { check = schema }\n'
            '  dimension grounded grounding { min = 0.3 }\n  keep when score >= 0.5\n}\n')
    out = fmt(text)
    assert '  rental      "Renting"               weight 3\n' in out
    assert '  after_sales "Handover and repairs"  weight 1\n' in out
    assert '  x           "No weight"\n' in out
    assert "  dimension valid    rule      { check = schema }\n" in out
    assert "  dimension grounded grounding { min = 0.3 }\n" in out


def test_numbers_as_written_and_blank_lines_collapsed() -> None:
    out = fmt("task t {\n  a = 100_000\n\n\n\n  b = 1e-3\n  c = -0.50\n}\n\n\n\n"
              'model m { path = "p" }\n')
    assert out == ('task t {\n  a = 100_000\n\n  b = 1e-3\n  c = -0.50\n}\n\n'
                   'model m { path = "p" }\n')


def test_long_strings_reindented_to_their_block() -> None:
    text = ('task t {\ninstruction = """\n        Line one.\n          Indented.\n\n'
            '        Last."""\n}\n')
    out = fmt(text)
    assert out == ('task t {\n  instruction = """\n    Line one.\n      Indented.\n\n'
                   '    Last.\n  """\n}\n')
    assert meaning(parse(out)) == meaning(parse(text))


def test_expressions_keep_their_grouping() -> None:
    text = ("quality {\n  keep when not (a >= 1 or b < 2) and (c == \"x\" and (d or e))\n"
            "  expect (x and y) or not z  expect not (x < 1) and not not y\n}\n")
    out = fmt(text)
    assert 'keep when not (a >= 1 or b < 2) and (c == "x" and (d or e))' in out
    assert "expect x and y or not z\n" in out
    assert "expect not (x < 1) and not not y\n" in out
    assert meaning(parse(out)) == meaning(parse(text))


def test_long_string_inside_an_expression_becomes_one_line() -> None:
    text = 'quality {\n  keep when f(m { x = """a\n      b""" }) >= 1\n}\n'
    out = fmt(text)
    assert '  keep when f(m { x = "a\\nb" }) >= 1\n' in out
    assert meaning(parse(out)) == meaning(parse(text))


def test_output_schema_types() -> None:
    text = "task t {\n output { a : int?[0..10]  b: enum( x,y )?  c: [ str? (max 3)](max 5) (min 1) } }\n"
    assert "  output { a: int? [0..10]  b: enum(x, y)?  c: [str? (max 3)] (max 5) (min 1) }\n" in fmt(text)


# ---- comments ------------------------------------------------------------------------------------
COMMENTED = """\
// header

# second header
include "a.dial"  # why a
pipeline p { seed = 1 }  // after the pipeline
task t {  # on the header
  # before x


  x = [a,   # first item
    b,
    # before c
    c]  # after the list
  keep when a >= 1 and  # inside an expression
    b < 2
  dimension d rule { x = 1 }  # after an inline block
  # at the end of the block
}
# at the end of the file
"""


def test_every_comment_kept_in_order() -> None:
    before = parse(COMMENTED)
    out = format_module(before, COMMENTED)
    assert comment_texts(parse(out)) == comment_texts(before)
    assert fmt(out) == out


def test_comments_placed_where_they_belong() -> None:
    out = fmt(COMMENTED)
    assert out.startswith('// header\n\n# second header\ninclude "a.dial"  # why a\n\n')
    assert "\npipeline p { seed = 1 }  // after the pipeline\n" in out
    assert "task t {  # on the header\n  # before x\n\n  x = [\n    a,  # first item\n" in out
    assert "    # before c\n    c,\n  ]  # after the list\n" in out
    assert "  # inside an expression\n  keep when a >= 1 and b < 2\n" in out
    assert ("  dimension d rule { x = 1 }  # after an inline block\n"
            "  # at the end of the block\n}\n") in out
    assert out.endswith("}\n# at the end of the file\n")


def test_comment_only_and_empty_files() -> None:
    assert fmt("") == ""
    assert fmt("   \n\n") == ""
    assert fmt("# just a note\n\n\n// and another   \n") == "# just a note\n\n// and another\n"


def test_includes_first_with_their_comments() -> None:
    text = 'model m { path = "p" }\n# shared taxonomy\ninclude "t.dial"\n'
    assert fmt(text) == '# shared taxonomy\ninclude "t.dial"\n\nmodel m { path = "p" }\n'


# ---- strings -------------------------------------------------------------------------------------
def test_chinese_and_escapes_round_trip() -> None:
    text = ('scenarios {\n  租房 "租房：看房、价格、租期" weight 3\n'
            '  买房 "购买二手房或新房" weight 1\n}\n'
            'task t {\n'
            r'  a = "tab\there \"q\" back\\slash \u00e9 \U0001F600 nl\n ctl\u0001"' "\n"
            '  b = {"新 经纪人": 1, 店长: 2}\n'
            '  c = """\n    第一行 "引号" 和 \\""" 三引号\n      缩进 \\\\ 反斜杠\n  """\n'
            '  d = "emoji 😀 and 中文"\n'
            "}\n")
    before = parse(text)
    out = format_module(before, text)
    after = parse(out)
    assert meaning(after) == meaning(before)
    assert fmt(out) == out
    assert '租房 "租房：看房、价格、租期"  weight 3' in out  # CJK stays literal and aligned
    assert r'a = "tab\there \"q\" back\\slash é 😀 nl\n ctl\u0001"' in out
    assert 'b = {"新 经纪人": 1, 店长: 2}' in out
    values = {m.name: m.value for m in after.decls[1].body if isinstance(m, ast.Assign)}
    assert values["c"].value == '第一行 "引号" 和 """ 三引号\n  缩进 \\ 反斜杠'  # type: ignore[union-attr]


def test_whitespace_only_long_string_keeps_its_value() -> None:
    text = 'task t {\n  a = """\n    x\n"""\n  b = "\\u3000"\n}\n'
    out = fmt(text)
    assert meaning(parse(out)) == meaning(parse(text))


# ---- the command -------------------------------------------------------------------------------
@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def test_fmt_check_exit_codes(tmp_path: Path, runner: CliRunner) -> None:
    clean = tmp_path / "clean.dial"
    clean.write_text(fmt("pipeline p { seed = 1 }\n"), encoding="utf-8")
    messy = tmp_path / "messy.dial"
    messy.write_text("pipeline p {seed=1}\n", encoding="utf-8")
    broken = tmp_path / "broken.dial"
    broken.write_text("pipeline p { seed = }\n", encoding="utf-8")

    assert runner.invoke(app, ["fmt", "--check", str(clean)]).exit_code == 0
    result = runner.invoke(app, ["fmt", "--check", str(clean), str(messy)])
    assert result.exit_code == 1
    assert "would reformat" in result.output and "messy.dial" in result.output
    assert messy.read_text(encoding="utf-8") == "pipeline p {seed=1}\n"  # --check never writes
    result = runner.invoke(app, ["fmt", "--check", str(broken)])
    assert result.exit_code == 1 and "[syntax]" in result.output
    assert runner.invoke(app, ["fmt", "--check", str(tmp_path / "missing.dial")]).exit_code == 1


def test_fmt_write_and_print(tmp_path: Path, runner: CliRunner) -> None:
    spec = tmp_path / "x.dial"
    spec.write_text("pipeline p {seed=1}  # s\n", encoding="utf-8")
    printed = runner.invoke(app, ["fmt", str(spec)])
    assert printed.exit_code == 0 and printed.stdout == "pipeline p { seed = 1 }  # s\n"
    assert runner.invoke(app, ["fmt", "--write", str(spec)]).exit_code == 0
    assert spec.read_text(encoding="utf-8") == printed.stdout
    assert runner.invoke(app, ["fmt", "--check", str(spec)]).exit_code == 0


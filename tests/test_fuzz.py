"""Random and mutated specs → the front end, the CLI and the formatter never crash (hypothesis)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dialc.cli import app
from dialc.codes import CODES
from dialc.diagnostics import Diagnostics, render_json, render_text
from dialc.formatter import format_module
from dialc.frontend import Frontend, parse_text, run_frontend
from dialc.schema import DIMENSION_FIELDS, KINDS
from dialc.source import Source

ROOT = Path(__file__).resolve().parent.parent
REALESTATE = ROOT / "specs" / "realestate.dial"
KEYWORDS = {"include", "keep", "when", "expect", "weight", "not", "and", "or"}
FIELDS = sorted({f for k in KINDS.values() for f in k.fields} - KEYWORDS)
KIND_WORDS = [*KINDS, "tsak", "modle", "pipelines", "数据", "x"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- a grammar-shaped generator -------------------------------------------------------------------
names = st.one_of(
    st.sampled_from(FIELDS + list(KINDS) + list(DIMENSION_FIELDS)),
    st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in KEYWORDS),
    st.sampled_from(["名称", "données", "tone", "persona", "_"]),
)
numbers = st.one_of(
    st.integers(-10**6, 10**12).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
    st.sampled_from(["100_000", "0.5", "1e-3", "-0", "2E+5", "0.0002", "99999999999999999999999"]),
)
_escape = st.sampled_from([r"\n", r"\t", r"\"", r"\\", r"\u4e2d", r"\U0001F600", r"\0", r"\q", r"\u00"])
_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters='"\\\n\x00'), max_size=8)
strings = st.lists(st.one_of(_escape, _text, st.sampled_from(["中文", "😀", "# not a comment"])),
                   max_size=4).map(lambda parts: '"' + "".join(parts) + '"')
long_strings = st.lists(st.one_of(_text, st.sampled_from(["\n", "\n    ", '"', r"\"\"\"", "中文"])),
                        max_size=6).map(lambda parts: '"""' + "".join(parts).rstrip('"') + '"""')
scalars = st.one_of(strings, long_strings, numbers, names, st.tuples(numbers, numbers).map("..".join))


COMMAS = [", ", ",\n    ", ",  # item note\n    ", ",\n\n  // 说明\n  "]  # comments inside brackets too


def _containers(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    items = st.lists(inner, max_size=4)
    keys = st.one_of(names, strings)
    commas = st.sampled_from(COMMAS)
    return st.one_of(
        st.tuples(items, commas).map(lambda t: "[" + t[1].join(t[0]) + "]"),
        st.tuples(st.lists(st.tuples(keys, inner), max_size=3), commas).map(
            lambda t: "{" + t[1].join(f"{k}: {v}" for k, v in t[0]) + "}"),
        st.tuples(names, items, st.lists(st.tuples(names, inner), max_size=2), commas).map(
            lambda c: f"{c[0]}(" + c[3].join([*c[1], *(f"{k} = {v}" for k, v in c[2])]) + ")"),
        st.tuples(st.lists(inner, min_size=2, max_size=3), st.sampled_from([" * ", " *  # why\n  "])).map(
            lambda t: t[1].join(t[0])),
        st.tuples(names, st.lists(st.tuples(names, inner), max_size=3), st.sampled_from(["  ", "\n  # c\n  "])).map(
            lambda b: f"{b[0]} {{ " + b[2].join(f"{k} = {v}" for k, v in b[1]) + " }"),
    )


values = st.recursive(scalars, _containers, max_leaves=8)
refs = st.lists(names, min_size=1, max_size=3).map(".".join)
operands = st.one_of(numbers, strings, refs, st.tuples(names, st.lists(values, max_size=2)).map(
    lambda c: f"{c[0]}(" + ", ".join(c[1]) + ")"))
comparisons = st.tuples(operands, st.sampled_from([">=", "<=", "==", "!=", ">", "<"]), operands).map(" ".join)
exprs = st.recursive(st.one_of(operands, comparisons), lambda e: st.one_of(
    e.map(lambda x: f"not {x}"), e.map(lambda x: f"({x})"),
    st.tuples(e, st.sampled_from(["and", "or"]), e).map(" ".join)), max_leaves=6)
type_refs = st.recursive(
    st.one_of(st.sampled_from(["int", "float", "str", "bool", "text", "blob"]),
              st.lists(names, min_size=1, max_size=3).map(lambda ns: "enum(" + ", ".join(ns) + ")")),
    lambda t: t.map(lambda x: f"[{x}]"), max_leaves=3)
types = st.tuples(type_refs, st.sampled_from(["", "?"]),
                  st.lists(st.one_of(st.tuples(numbers, numbers).map(lambda r: f"[{r[0]}..{r[1]}]"),
                                     st.tuples(names, numbers).map(lambda k: f"({k[0]} {k[1]})")),
                           max_size=2)).map(lambda t: t[0] + t[1] + " " + " ".join(t[2]))
simple_members = st.one_of(
    st.tuples(names, values).map(lambda a: f"{a[0]} = {a[1]}"),
    st.tuples(names, st.one_of(strings, long_strings), st.sampled_from(["", " weight 1", " weight 0.5"])).map(
        lambda e: f"{e[0]} {e[1]}{e[2]}"),
    st.tuples(names, types).map(lambda f: f"{f[0]}: {f[1]}"),
    exprs.map(lambda e: f"keep when {e}"), exprs.map(lambda e: f"expect {e}"),
)
separators = st.sampled_from(["\n  ", "  ", "\n\n\n  ", "  # why\n  ", "\n  // note: 中文\n  ", "\n\t"])
headers = st.tuples(st.sampled_from(KIND_WORDS), st.lists(names, max_size=2)).map(lambda h: " ".join([h[0], *h[1]]))


@st.composite
def bodies(draw: st.DrawFn, depth: int = 0) -> str:
    members = draw(st.lists(simple_members, max_size=5))
    for _ in range(draw(st.integers(0, 2 if depth < 2 else 0))):
        nested = draw(headers) + " " + draw(bodies(depth + 1))
        members.insert(draw(st.integers(0, len(members))), nested)
    parts = [m + draw(separators) for m in members]
    return "{" + draw(separators) + "".join(parts) + "}"


@st.composite
def specs(draw: st.DrawFn) -> str:
    includes = draw(st.lists(st.sampled_from(['include "missing.dial"', 'include "gen.dial"',
                                              'include "shared/x.dial"']), max_size=1))
    decls = draw(st.lists(st.tuples(headers, bodies()).map(" ".join), max_size=4))
    pipeline = draw(st.sampled_from(["", "pipeline p { seed = 1 }", "// 头注释\npipeline p {}"]))
    return "\n".join([*includes, pipeline, *decls]) + draw(st.sampled_from(["", "\n", "\n# end\n"]))


# ---- the properties -------------------------------------------------------------------------------
def assert_sound(front: Frontend, text: str | None) -> None:
    """A Frontend came back; every diagnostic is registered, points inside its file and renders."""
    assert isinstance(front, Frontend)
    for diag in front.diags.items:
        assert diag.code in CODES, diag
        spans = [diag.span, *(n.span for n in diag.notes)]
        for span in spans:
            if span is None or text is None or span.file != front.path:
                continue
            last = text.count("\n") + 1  # only "\n" ends a line (see test_formfeed_lines)
            assert 1 <= span.line <= last and span.col >= 1, (diag, last)
            assert (span.end_line, span.end_col) >= (span.line, span.col), diag
    render_text(front.diags)
    render_json(front.diags)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of specs/ (with data/ linked) so mutated specs still resolve includes and files."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(ROOT / "specs", root / "specs")
    (root / "data").symlink_to(ROOT / "data", target_is_directory=True)
    return root / "specs"


def check_file(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        text: str | None = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    assert_sound(run_frontend(path), text)


def check_formatter(text: str, deep: bool = False) -> None:
    """On text that parses: fmt is idempotent, keeps the AST (less positions) and every comment."""
    from test_fmt import comment_texts, meaning

    diags = Diagnostics()
    module = parse_text(Source("gen.dial", text), diags)
    if module is None or diags.has_errors():
        return
    out = format_module(module, text)
    again = parse_text(Source("gen.dial", out), diags)
    assert again is not None and not diags.has_errors(), (out, [d.message for d in diags.items])
    if not deep:  # pydantic refuses to dump trees nested more than a few hundred levels
        assert meaning(again) == meaning(module)
    assert comment_texts(again) == comment_texts(module)
    assert format_module(again, out) == out


@FUZZ
@given(text=specs())
def test_generated_specs(workdir: Path, text: str) -> None:
    check_file(workdir / "gen.dial", text.encode("utf-8"))
    check_formatter(text)


@settings(max_examples=20, deadline=None)
@given(text=specs())
def test_generated_specs_mostly_parse(text: str) -> None:
    """Keeps the generator honest: most of what it builds is grammatical (else the fuzz is shallow)."""
    diags = Diagnostics()
    module = parse_text(Source("gen.dial", text), diags)
    assume(module is not None)
    assert module is not None


PIECES = [b"{", b"}", b'"', b'"""', b"\x00", b"\xff", b"\xc3", b"\xe4\xb8", "😀".encode(), "中文".encode(),
          b"\n", b"# c\n", b"//", b"[", b"]", b"(", b")", b"=", b"..", b"*", b"\\", b"\\u12", b"weight",
          b"keep when", b'include "realestate.dial"\n', b"\x0c", "\u2028".encode(), b"\r", b"\t", b"?", b":"]
edits = st.one_of(
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(PIECES)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("swap"), st.floats(0, 1), st.floats(0, 1)),
)


def mutate(data: bytes, ops: list[tuple]) -> bytes:
    for op, where, arg in ops:
        at = int(where * len(data))
        if op == "delete":
            data = data[:at] + data[at + arg:]
        elif op == "insert":
            data = data[:at] + arg + data[at:]
        elif op == "truncate":
            data = data[:at]
        else:
            lines = data.split(b"\n")
            i, j = int(where * (len(lines) - 1)), int(arg * (len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
    return data


@FUZZ
@given(ops=st.lists(edits, min_size=1, max_size=5))
def test_mutated_realestate(workdir: Path, ops: list[tuple]) -> None:
    data = mutate(REALESTATE.read_bytes(), ops)
    check_file(workdir / "mutated.dial", data)
    with contextlib.suppress(UnicodeDecodeError):
        check_formatter(data.decode("utf-8"))


@settings(max_examples=15, deadline=None)
@given(ops=st.lists(edits, min_size=1, max_size=3))
def test_mutated_included_taxonomy(workdir: Path, ops: list[tuple]) -> None:
    taxonomy = workdir / "shared" / "realestate_taxonomy.dial"
    original = (ROOT / "specs" / "shared" / "realestate_taxonomy.dial").read_bytes()
    try:
        taxonomy.write_bytes(mutate(original, ops))
        check_file(workdir / "realestate.dial", REALESTATE.read_bytes())
    finally:
        taxonomy.write_bytes(original)


@settings(max_examples=25, deadline=None)
@given(text=specs())
def test_cli_validate_exit_codes(workdir: Path, text: str) -> None:
    spec = workdir / "cli.dial"
    spec.write_text(text, encoding="utf-8")
    for args in (["validate", str(spec)], ["validate", "--format", "json", str(spec)], ["fmt", str(spec)]):
        result = CliRunner().invoke(app, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code in (0, 1)


# ---- extreme files --------------------------------------------------------------------------------
EXTREMES = {
    "empty": "",
    "only-comments": "# one\n// two\n\n# 三\n",
    "open-brackets": "task t { x = " + "[" * 10_000 + "\n",
    "open-braces": "{" * 10_000,
    "closing-braces": "}" * 10_000,
    "deep-but-allowed": "pipeline p { seed = 1 }\ntask t { x = " + "[" * 190 + "]" * 190 + " }\n",
    "deep-blocks": "pipeline p {}\n" + "a { " * 150 + "}" * 150 + "\n",
    "deep-block-values": "pipeline p {}\ntask t {" + " x = m {" * 150 + "}" * 150 + " }\n",
    "unterminated-long-string": 'task t { x = """' + "line\n" * 1000,
    "bom-crlf": "\ufeffpipeline p {\r\n  seed = 1\r\n}\r\n",
}


@pytest.mark.parametrize("name", list(EXTREMES))
def test_extreme_files(workdir: Path, name: str) -> None:
    text = EXTREMES[name]
    check_file(workdir / f"{name}.dial", text.encode("utf-8"))
    check_formatter(text.removeprefix("\ufeff"), deep=name.startswith("deep"))


CRASHES = {  # found by this file: recursive walks over unbounded operator chains (now refused)
    "not-chain": "pipeline p {}\nquality { keep when " + "not " * 3_000 + "score >= 1 }\n",
    "and-chain": "pipeline p {}\nquality { keep when " + " and ".join(["score >= 1"] * 3_000) + " }\n",
}
LONG_CHAIN = "pipeline p {}\nquality { keep when " + " and ".join(["score >= 1"] * 150) + " }\n"


@pytest.mark.parametrize("name", list(CRASHES))
def test_operator_chains(workdir: Path, name: str) -> None:
    check_file(workdir / f"{name}.dial", CRASHES[name].encode("utf-8"))
    front = run_frontend(workdir / f"{name}.dial")
    assert [d.code for d in front.diags.items] == ["syntax"]
    assert "and/or/not operators" in front.diags.items[0].message


def test_formatter_handles_long_operator_chains() -> None:
    text = LONG_CHAIN
    diags = Diagnostics()
    module = parse_text(Source("chain.dial", text), diags)
    assert module is not None
    out = format_module(module, text)
    assert out.count(" and ") == 149
    again = parse_text(Source("chain.dial", out), diags)
    assert again is not None and format_module(again, out) == out


def test_formfeed_lines(workdir: Path) -> None:
    path = workdir / "formfeed.dial"
    path.write_text("pipeline p {\x0c\x0c\x0c", encoding="utf-8")
    front = run_frontend(path)
    assert all(d.span is None or d.span.line == 1 for d in front.diags.items)


@pytest.mark.slow
def test_five_megabyte_files(workdir: Path) -> None:
    size = 5 * 1024 * 1024
    long_string = 'pipeline p {\n  description = "' + "x" * size + '"\n}\n'
    comments = "# filler comment line\n" * (size // 22)
    # a big list, not 400,000 members: each duplicate member is a diagnostic, and rendering many
    # diagnostics of a big file is quadratic today (Source.line splits the whole text per call)
    big_list = "pipeline p {}\ntask t {\n  tags = [" + "agent, " * (size // 7) + "]\n}\n"
    for name, text in (("string", long_string), ("comments", comments), ("list", big_list)):
        check_file(workdir / f"big-{name}.dial", text.encode("utf-8"))


@pytest.mark.parametrize("name", ["empty", "only-comments", "open-brackets", "open-braces"])
def test_cli_subprocess_never_internal_error(workdir: Path, name: str) -> None:
    spec = workdir / f"sub-{name}.dial"
    spec.write_text(EXTREMES[name], encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "dialc", "validate", str(spec)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    assert "internal error" not in done.stderr + done.stdout

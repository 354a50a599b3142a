"""The TextMate grammar (editors/vscode) → every shipped spec tokenised by vscode-textmate + vscode-oniguruma (the
engine VS Code runs) and each token's scopes checked against what dialc's own parser says it is: declaration
kinds and names, field names, strings, numbers, comments, references; no token left unscoped. Also the
VS Code extension's entry point (which server it starts) and the grammar's sync with dialc/schema.py."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dialc import syntax as ast
from dialc import textmate
from dialc.diagnostics import Diagnostics
from dialc.frontend import parse_file, run_frontend
from dialc.schema import KINDS

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"
NODE = shutil.which("node")


def _parsed(path: Path) -> ast.Module | None:
    diags = Diagnostics()
    module = parse_file(path, diags)
    return None if module is None or diags.has_errors() else module


def _valid(path: Path) -> bool:
    """Parses, and declares only known kinds and fields (diagnostics tests that misspell them are left out:
    a misspelt kind is meant to look like a plain name)."""
    return _parsed(path) is not None and not run_frontend(path, check_files=False, allow=[ROOT]).diags.has_errors()


SHIPPED = sorted([*ROOT.glob("specs/**/*.dial"), *ROOT.glob("tests/specs/**/*.dial")])
VALID = [p for p in SHIPPED if _parsed(p) is not None]
VALID += [p for p in sorted(ROOT.glob("tests/**/*.dial")) if p not in SHIPPED and _valid(p)]
Scopes = dict[tuple[int, int], list[str]]  # (line, 1-based column) → the scopes of the character there


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """The tokeniser's packages; tests that run Node skip only when Node itself is not installed."""
    if NODE is None:
        pytest.skip("node is not installed (the grammar is tested with Node's vscode-textmate)")
    modules = VSCODE / "node_modules"
    if not (modules / "vscode-textmate").is_dir() or not (modules / "vscode-oniguruma").is_dir():
        pytest.fail("editors/vscode/node_modules is missing: install the grammar's test dependencies with "
                    "`(cd editors/vscode && npm ci)`")
    return modules


def tokenize(paths: list[Path]) -> dict[Path, list[dict[str, Any]]]:
    """Run editors/vscode/test/tokenize.mjs on the files: their tokens with text and scopes."""
    done = subprocess.run([str(NODE), "test/tokenize.mjs", *map(str, paths)], cwd=VSCODE, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    return {Path(name): tokens for name, tokens in out.items()}


def char_scopes(tokens: list[dict[str, Any]]) -> Scopes:
    """Per character, its scopes. Token offsets are UTF-16 units; columns are rebuilt from the token texts."""
    scopes: Scopes = {}
    col, line = 1, 0
    for token in tokens:
        if token["line"] != line:
            line, col = token["line"], 1
        for _ in token["text"]:
            scopes[(line, col)] = token["scopes"]
            col += 1
    return scopes


def unscoped(tokens: list[dict[str, Any]]) -> list[str]:
    """Non-whitespace tokens that carry only the root scope."""
    return [f"{t['line']}:{t['start'] + 1} {t['text']!r}" for t in tokens
            if t["text"].strip() and t["scopes"] == ["source.dial"]]


def tokenize_text(tmp_path: Path, text: str) -> list[dict[str, Any]]:
    spec = tmp_path / "snippet.dial"
    spec.write_text(text, encoding="utf-8")
    return tokenize([spec])[spec]


def scope_of(tokens: list[dict[str, Any]], text: str, nth: int = 0) -> list[str]:
    """The scopes (root left out) of the nth token whose text is `text`."""
    found = [t["scopes"][1:] for t in tokens if t["text"] == text]
    assert len(found) > nth, f"no token {text!r} in {[t['text'] for t in tokens]}"
    return found[nth]


def has(scopes: list[str], prefix: str) -> bool:
    return any(s == prefix or s.startswith(prefix + ".") or s.startswith(prefix + " ") for s in scopes)


# ---- what the parser says each span is ------------------------------------------------------------
def expectations(module: ast.Module) -> Iterator[tuple[ast.Span, str, str]]:
    """(span, scope prefix the grammar must give it, what it is) for every construct of a parsed spec."""
    fields = set(textmate.field_names())
    for comment in module.comments:
        yield comment.span, "comment.line", "comment"
    for include in module.includes:
        yield include.path.span, "string.quoted", "include path"
    for decl in module.decls:
        yield from _decl(decl, fields)


def _decl(decl: ast.Decl, fields: set[str]) -> Iterator[tuple[ast.Span, str, str]]:
    kinds = ["storage.type.declaration", "entity.name.type", "storage.modifier"]
    for word, scope in zip(decl.words, kinds, strict=False):
        yield word.span, scope, f"declaration word {word.text!r}"
    yield from _members(decl.body, fields)


def _members(members: list[ast.Member], fields: set[str]) -> Iterator[tuple[ast.Span, str, str]]:
    for member in members:
        if isinstance(member, ast.Decl):
            yield from _decl(member, fields)
        elif isinstance(member, ast.Assign):
            scope = "keyword.other.field" if member.name in fields else "variable.other.property"
            yield member.name_span, scope, f"field {member.name!r}"
            yield from _value(member.value, fields)
        elif isinstance(member, ast.Entry):
            yield member.name_span, "entity.name.type.scenario", f"scenario {member.name!r}"
            yield from _value(member.description, fields)
            if member.weight is not None:
                yield from _value(member.weight, fields)
        elif isinstance(member, ast.SchemaField):
            yield member.name_span, "variable.other.field", f"output field {member.name!r}"
            yield from _type(member.type)
        elif isinstance(member, ast.Keep | ast.Expect):
            word = "keep" if isinstance(member, ast.Keep) else "expect"
            start = member.span
            yield ast.Span(file=start.file, line=start.line, col=start.col, end_line=start.line,
                           end_col=start.col + len(word)), f"keyword.control.{word}", word
            yield from _value(member.expr, fields)


def _type(node: ast.TypeExpr) -> Iterator[tuple[ast.Span, str, str]]:
    for bound in (node.lo, node.hi, *node.keywords.values()):
        if bound is not None:
            yield bound.span, "constant.numeric", f"bound {bound.text}"
    if node.item is not None:
        yield from _type(node.item)


def _value(node: Any, fields: set[str]) -> Iterator[tuple[ast.Span, str, str]]:
    """Strings, numbers, references, dict keys and nested blocks inside a value or an expression."""
    if isinstance(node, ast.Str):
        yield node.span, "string.quoted", f"string {node.value[:20]!r}"
    elif isinstance(node, ast.Num):
        yield node.span, "constant.numeric", f"number {node.text}"
    elif isinstance(node, ast.Name):
        scope = "constant.language.boolean" if node.name in ("true", "false") else "variable.other"
        yield node.span, scope, f"name {node.name!r}"
    elif isinstance(node, ast.Ref):
        yield node.span, "variable.other", f"reference {'.'.join(node.parts)!r}"
    elif isinstance(node, ast.DictV):
        for pair in node.pairs:
            yield pair.key_span, "support.type.property-name", f"key {pair.key!r}"
            yield from _value(pair.value, fields)
    elif isinstance(node, ast.Call):
        for pair in node.kwargs:
            yield pair.key_span, "variable.parameter", f"argument {pair.key!r}"
            yield from _value(pair.value, fields)
        for arg in node.args:
            yield from _value(arg, fields)
    elif isinstance(node, ast.BlockV):
        yield from _members(node.body, fields)
    elif dataclasses.is_dataclass(node):  # lists, products, ranges, not / and / comparisons
        for item in dataclasses.fields(node):
            child = getattr(node, item.name)
            for value in child if isinstance(child, list) else [child]:
                if isinstance(value, ast.Node):
                    yield from _value(value, fields)


def mismatches(module: ast.Module, scopes: Scopes, lines: list[str]) -> list[str]:
    """Every non-whitespace character of an expected span that lacks the expected scope (dots in references
    are punctuation.accessor, and string keys carry both a key and a string scope)."""
    wrong: list[str] = []
    for span, prefix, what in expectations(module):
        for line in range(span.line, span.end_line + 1):
            first = span.col if line == span.line else 1
            last = span.end_col if line == span.end_line else len(lines[line - 1]) + 1
            for col in range(first, last):
                char = lines[line - 1][col - 1]
                got = [s for s in scopes.get((line, col), []) if s != "source.dial"]
                if char.isspace() or (char == "." and has(got, "punctuation.accessor")):
                    continue
                if not has(got, prefix):
                    wrong.append(f"{span.file}:{line}:{col} {what}: {char!r} has {got}, expected {prefix}.*")
                    break
    return wrong


# ---- every shipped spec ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped(node_modules: Path) -> dict[Path, list[dict[str, Any]]]:
    return tokenize(VALID)


def test_there_are_specs_to_tokenise() -> None:
    assert len(VALID) >= 10 and any(p.parent.name == "specs" for p in VALID)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.relative_to(ROOT).as_posix()) for p in VALID])
def test_every_token_of_a_shipped_spec_has_the_scope_the_parser_gives_it(
        path: Path, shipped: dict[Path, list[dict[str, Any]]]) -> None:
    tokens = shipped[path]
    assert not unscoped(tokens), f"tokens with only the root scope: {unscoped(tokens)[:10]}"
    module = _parsed(path)
    assert module is not None
    lines = path.read_text(encoding="utf-8").split("\n")
    wrong = mismatches(module, char_scopes(tokens), [line.removesuffix("\r") for line in lines])
    assert not wrong, "\n".join(wrong[:15])


def test_shipped_specs_cover_every_scope_family(shipped: dict[Path, list[dict[str, Any]]]) -> None:
    """The checks above are not vacuous: the specs exercise each family of scopes."""
    seen = {s for tokens in shipped.values() for t in tokens for s in t["scopes"]}
    for scope in ("storage.type.declaration.dial", "entity.name.type.dial", "storage.modifier.dial",
                  "keyword.other.field.dial", "variable.other.property.dial", "string.quoted.double.dial",
                  "string.quoted.triple.dial", "constant.numeric.dial", "comment.line.double-slash.dial",
                  "variable.other.dial", "variable.other.field.dial", "support.type.primitive.dial",
                  "keyword.control.keep.dial", "keyword.control.expect.dial", "keyword.operator.logical.dial",
                  "variable.other.placeholder.dial", "entity.name.type.scenario.dial", "keyword.control.import.dial",
                  "support.function.dial", "support.type.property-name.dial", "constant.language.boolean.dial"):
        assert scope in seen, scope


# ---- cases the specs do not show -----------------------------------------------------------------------
def test_kinds_and_fields_come_from_the_schema(tmp_path: Path, node_modules: Path) -> None:
    tokens = tokenize_text(tmp_path, "\n".join(f"{kind} x {{ }}" for kind in KINDS))
    for kind in KINDS:
        assert has(scope_of(tokens, kind), "storage.type.declaration"), kind
    tokens = tokenize_text(tmp_path, "\n".join(f"{f} = 1" for f in textmate.field_names()))
    for name in textmate.field_names():
        assert has(scope_of(tokens, name), "keyword.other.field"), name


def test_known_and_unknown_fields_are_told_apart(tmp_path: Path, node_modules: Path) -> None:
    tokens = tokenize_text(tmp_path, 'task t {\n  catgory = x\n  category = y\n}\nexpressions e { tone = {a: 1} }\n')
    assert has(scope_of(tokens, "catgory"), "variable.other.property")  # a typo does not look like a field
    assert has(scope_of(tokens, "category"), "keyword.other.field")
    assert has(scope_of(tokens, "tone"), "variable.other.property")
    assert has(scope_of(tokens, "a"), "support.type.property-name")


def test_references_that_name_kinds_are_not_declarations(tmp_path: Path, node_modules: Path) -> None:
    text = ("model judge { path = \"m\" }\n"
            "sample p {\n  from = dialogues * tasks\n}\n"
            "task\n  lonely\n{ }\n"
            "dimension helpful judge { model = judge }\n")
    tokens = tokenize_text(tmp_path, text)
    assert has(scope_of(tokens, "judge", 0), "entity.name.type")  # a model called judge is a name
    assert has(scope_of(tokens, "tasks"), "variable.other")  # `from = … * tasks` is a reference
    assert has(scope_of(tokens, "task"), "storage.type.declaration")  # a header alone on its line
    assert has(scope_of(tokens, "judge", 1), "storage.modifier")
    assert has(scope_of(tokens, "judge", 2), "variable.other")


def test_strings_comments_and_numbers(tmp_path: Path, node_modules: Path) -> None:
    text = ('a = "x # not a comment // nor this \\" {name}"  # a comment\n'
            'b = "unterminated\n'
            'c = -1.5e3  d = 100_000  e = 1..5\n'
            't = """\n  {dialogue} "quoted" // still text\n"""\n')
    tokens = tokenize_text(tmp_path, text)
    assert not any(has(t["scopes"], "comment") for t in tokens if t["line"] in (2, 3, 4, 5, 6))
    assert has(scope_of(tokens, " a comment"), "comment.line.number-sign")
    assert has(scope_of(tokens, '\\"'), "constant.character.escape")
    assert has(scope_of(tokens, "name"), "variable.other.placeholder")
    assert has(scope_of(tokens, "c"), "keyword.other.field") is False  # not a schema field: an unknown name
    assert has(scope_of(tokens, "c"), "variable.other.property")  # an unterminated string ends at its line
    for number in ("-1.5e3", "100_000", "1", "5"):
        assert has(scope_of(tokens, number), "constant.numeric"), number
    assert has(scope_of(tokens, "dialogue"), "variable.other.placeholder")
    assert has(scope_of(tokens, ' "quoted" // still text'), "string.quoted.triple")


def test_unscoped_tokens_are_detected(tmp_path: Path, node_modules: Path) -> None:
    """A character outside the language (here `@`) is left unscoped, and the check says so."""
    tokens = tokenize_text(tmp_path, "pipeline p { seed = 1 } @\n")
    assert unscoped(tokens) == ["1:24 ' @'"]


def test_grammar_file_is_in_sync_with_the_schema() -> None:
    assert textmate.GRAMMAR.read_text(encoding="utf-8") == textmate.render(), (
        "editors/vscode/syntaxes/dial.tmLanguage.json is stale: run `python -m dialc.textmate --write`")


# ---- the extension ---------------------------------------------------------------------------------------
def test_extension_manifest_contributes_language_grammar_and_configuration() -> None:
    manifest = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    (language,) = manifest["contributes"]["languages"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert language["id"] == "dial" and language["extensions"] == [".dial"]
    assert grammar == {"language": "dial", "scopeName": "source.dial", "path": "./syntaxes/dial.tmLanguage.json"}
    assert json.loads(textmate.GRAMMAR.read_text(encoding="utf-8"))["scopeName"] == "source.dial"
    config = json.loads((VSCODE / language["configuration"]).read_text(encoding="utf-8"))
    assert config["comments"]["lineComment"] == "//"
    assert ["{", "}"] in config["brackets"] and {"open": "[", "close": "]"} in config["autoClosingPairs"]
    assert (VSCODE / manifest["main"]).is_file()
    assert (VSCODE / "package-lock.json").is_file()


@pytest.mark.parametrize("fails", [False, True])
def test_extension_starts_dialc_lsp_over_stdio(fails: bool, node_modules: Path) -> None:
    args = [str(NODE), "test/activate.cjs", *(["fail"] if fails else [])]
    done = subprocess.run(args, cwd=VSCODE, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["server"] == {"command": "dialc", "args": ["lsp"], "transport": 0}  # TransportKind.stdio
    assert {"scheme": "file", "language": "dial"} in seen["documentSelector"]
    assert seen["started"] == 1 and seen["stopped"] is True
    assert bool(seen["errors"]) == fails
    if fails:
        assert "dial.server.command" in seen["errors"][0]

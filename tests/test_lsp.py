"""`dialc lsp` through the protocol: one real server process (`python -m dialc lsp`) per module, driven by
pygls' LanguageClient over stdio (JSON-RPC), on a small project with an include and a corpus."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

TAXONOMY = """\
// shared scenario taxonomy
scenarios {
  rental   "Renting a flat"   weight 2
  purchase "Buying a home"    weight 1
}
"""

SPEC = """\
include "shared/taxonomy.dial"

pipeline demo { seed = 7 }

model small { path = "builtin:smollm2-135m-instruct"  temperature = 0.5 }

source dialogues { path = "data/dialogues.jsonl"  roles = [agent, customer] }

task extract {
  category = information_extraction
  instruction = "Extract the budget."
  output { budget: int? [0..100_000]  purpose: enum(rent, buy)? }
  scenarios = [rental, purchase]
}

expressions style { tone = {formal: 1, terse: 1} }

sample prompts {
  from = dialogues * tasks * style
  count = 8
  template = "Use a {tone} tone. {dialogue} Task: {instruction}"
}

label labels { from = prompts  model = small }

quality {
  dimension valid rule { check = schema  gate = true }
  dimension helpful judge { model = small  rubric = "Is it useful?" }
  keep when helpful >= 0.5
  expect mean(helpful) >= 0.4
}
"""


class Client:
    """pygls' LanguageClient on its own event loop, with blocking calls for the tests."""

    def __init__(self, cwd: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.lsp = LanguageClient("dialc-tests", "1")
        self.published: dict[str, list[types.Diagnostic]] = {}
        self.counts: dict[str, int] = {}
        self.logs: list[str] = []

        @self.lsp.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.published[params.uri] = list(params.diagnostics)
            self.counts[params.uri] = self.counts.get(params.uri, 0) + 1

        @self.lsp.feature(types.WINDOW_LOG_MESSAGE)
        def on_log(params: types.LogMessageParams) -> None:
            self.logs.append(params.message)

        # as VS Code starts it (vscode-languageclient adds --stdio)
        self.run(self.lsp.start_io(sys.executable, "-m", "dialc", "lsp", "--stdio", cwd=str(cwd)))
        self.init = self.run(self.lsp.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=cwd.as_uri(), process_id=None)))
        self.lsp.initialized(types.InitializedParams())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def diagnostics_after(self, uri: str, before: int, timeout: float = 30) -> list[types.Diagnostic]:
        """The diagnostics of `uri` once a publication after the `before`-th has arrived."""
        async def wait() -> None:
            while self.counts.get(uri, 0) <= before:
                await asyncio.sleep(0.02)
        self.run(wait(), timeout)
        return self.published[uri]

    def open(self, path: Path, text: str) -> list[types.Diagnostic]:
        uri = path.as_uri()
        before = self.counts.get(uri, 0)
        self.lsp.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="dial", version=1, text=text)))
        return self.diagnostics_after(uri, before)

    def change(self, path: Path, text: str, version: int) -> list[types.Diagnostic]:
        uri = path.as_uri()
        before = self.counts.get(uri, 0)
        self.lsp.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        return self.diagnostics_after(uri, before)

    def close(self, path: Path) -> None:
        self.lsp.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=path.as_uri())))

    def stop(self) -> None:
        try:
            self.run(self.lsp.shutdown_async(None), timeout=10)
            self.lsp.exit(None)
            self.run(self.lsp.stop(), timeout=10)
        finally:
            self.loop.close()


def where(text: str, needle: str, after: int = 0, nth: int = 0) -> types.Position:
    """The LSP position `after` characters into the nth occurrence of `needle` in `text`."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    offset += after
    line = text.count("\n", 0, offset)
    return types.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


def doc(path: Path) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=path.as_uri())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lsp_project")
    (root / ".dialc-root").write_text("")
    (root / "shared").mkdir()
    (root / "shared" / "taxonomy.dial").write_text(TAXONOMY, encoding="utf-8")
    (root / "data").mkdir()
    lines = (ROOT / "data" / "realestate" / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()
    keep = [line for line in lines if json.loads(line)["scenario"] in ("rental", "purchase")][:12]
    (root / "data" / "dialogues.jsonl").write_text("\n".join(keep) + "\n", encoding="utf-8")
    (root / "spec.dial").write_text(SPEC, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def client(project: Path) -> Iterator[Client]:
    started = Client(project)
    yield started
    started.stop()


def validate_json(project: Path, spec: str, text: str) -> list[dict[str, Any]]:
    """`dialc validate --format json` on a copy of the project where `spec` holds `text`."""
    copy = project.parent / f"{project.name}_validate"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(project, copy)
    (copy / spec).write_text(text, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "dialc", "validate", "--format", "json", spec], cwd=copy,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def as_rows(diags: list[types.Diagnostic]) -> list[tuple[object, int, int, int, int]]:
    return sorted((d.code, d.range.start.line + 1, d.range.start.character + 1, d.range.end.line + 1,
                   d.range.end.character + 1) for d in diags)


def validate_rows(rows: list[dict[str, Any]], file: str) -> list[tuple[object, int, int, int, int]]:
    return sorted((r["code"], r["line"], r["column"], r["end_line"], r["end_column"]) for r in rows
                  if r["file"] == file)


# ---- lifecycle and diagnostics ---------------------------------------------------------------
def test_initialize_advertises_the_features(client: Client) -> None:
    caps = client.init.capabilities
    assert client.init.server_info is not None and client.init.server_info.name == "dialc"
    assert caps.hover_provider and caps.definition_provider and caps.document_symbol_provider
    assert caps.document_formatting_provider and caps.rename_provider and caps.completion_provider


def test_diagnostics_on_open_are_those_of_validate(client: Client, project: Path) -> None:
    text = SPEC.replace("temperature = 0.5", "temperature = 5").replace("check = schema", "check = shema")
    published = client.open(project / "spec.dial", text)
    expected = validate_rows(validate_json(project, "spec.dial", text), "spec.dial")
    assert {row[0] for row in expected} >= {"out-of-range", "bad-choice"}
    assert as_rows(published) == expected
    typo = next(d for d in published if d.code == "bad-choice")
    assert typo.source == "dialc" and typo.severity == types.DiagnosticSeverity.Error
    assert 'did you mean "schema"?' in typo.message  # the hint travels with the diagnostic


def test_diagnostics_follow_unsaved_changes(client: Client, project: Path) -> None:
    spec = project / "spec.dial"
    clean = client.change(spec, SPEC, 2)
    assert [d for d in clean if d.severity == types.DiagnosticSeverity.Error] == []
    broken = SPEC.replace("{ from = prompts ", "{ from = promts ")
    published = client.change(spec, broken, 3)
    assert spec.read_text(encoding="utf-8") == SPEC  # the file on disk never changed: the buffer was checked
    expected = validate_rows(validate_json(project, "spec.dial", broken), "spec.dial")
    typo = where(broken, "promts")
    assert ("unknown-ref", typo.line + 1, typo.character + 1, typo.line + 1, typo.character + 7) in expected
    assert as_rows(published) == expected
    client.change(spec, SPEC, 4)


def test_a_syntax_error_is_a_diagnostic(client: Client, project: Path) -> None:
    spec = project / "spec.dial"
    broken = SPEC.replace("pipeline demo { seed = 7 }", "pipeline demo { seed = }")
    published = client.change(spec, broken, 5)
    assert as_rows(published) == validate_rows(validate_json(project, "spec.dial", broken), "spec.dial")
    assert [d.code for d in published] == ["syntax"]
    client.change(spec, SPEC, 6)


def test_a_problem_in_an_included_file_is_published_for_that_file(client: Client, project: Path) -> None:
    taxonomy = project / "shared" / "taxonomy.dial"
    bad = TAXONOMY.replace("weight 2", "weight -2")
    before = client.counts.get(taxonomy.as_uri(), 0)
    client.open(taxonomy, bad)
    published = client.diagnostics_after(taxonomy.as_uri(), before)
    copy_rows = validate_json(project, "shared/taxonomy.dial", bad)
    # checked as part of the spec that includes it (alone it would lack a pipeline): validate the spec
    expected = validate_rows(_validate_with(project, {"shared/taxonomy.dial": bad}), "shared/taxonomy.dial")
    assert as_rows(published) == expected and [d.code for d in published] == ["bad-weight"]
    assert "missing-field" in {r["code"] for r in copy_rows}  # what checking it alone would have said
    assert all(d.code != "missing-field" for d in published)
    assert not [d for d in client.published[(project / "spec.dial").as_uri()]
                if d.severity == types.DiagnosticSeverity.Error]
    before = client.counts.get(taxonomy.as_uri(), 0)
    client.lsp.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=taxonomy.as_uri(), version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=TAXONOMY)]))
    assert client.diagnostics_after(taxonomy.as_uri(), before) == []


def test_an_include_changed_on_disk_is_checked_again(client: Client, project: Path) -> None:
    taxonomy = project / "shared" / "taxonomy.dial"
    client.close(taxonomy)  # from now on the spec reads it from disk
    uri = taxonomy.as_uri()
    try:
        taxonomy.write_text(TAXONOMY.replace("weight 1", "weight -1"), encoding="utf-8")
        before = client.counts.get(uri, 0)
        client.lsp.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=uri, type=types.FileChangeType.Changed)]))
        assert [d.code for d in client.diagnostics_after(uri, before)] == ["bad-weight"]
    finally:
        taxonomy.write_text(TAXONOMY, encoding="utf-8")
    before = client.counts.get(uri, 0)
    client.lsp.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=uri, type=types.FileChangeType.Changed)]))
    assert client.diagnostics_after(uri, before) == []


def _validate_with(project: Path, texts: dict[str, str]) -> list[dict[str, Any]]:
    copy = project.parent / f"{project.name}_validate"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(project, copy)
    for name, text in texts.items():
        (copy / name).write_text(text, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "dialc", "validate", "--format", "json", "spec.dial"], cwd=copy,
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_positions_are_in_the_clients_utf16_units(client: Client, project: Path) -> None:
    spec = project / "spec.dial"
    text = SPEC.replace("pipeline demo { seed = 7 }", 'pipeline demo { description = "😀 ü"  seed = -7 }')
    published = client.change(spec, text, 7)
    rows = [r for r in validate_json(project, "spec.dial", text) if r["code"] == "out-of-range"]
    assert len(rows) == 1
    found = next(d for d in published if d.code == "out-of-range")
    line = text.split("\n")[rows[0]["line"] - 1]
    before = line[: rows[0]["column"] - 1]
    assert found.range.start.line == rows[0]["line"] - 1
    assert found.range.start.character == len(before.encode("utf-16-le")) // 2 == rows[0]["column"]  # 😀 is 2 units
    client.change(spec, SPEC, 8)


def test_validate_never_imports_the_language_server() -> None:
    probe = ("import sys\nfrom dialc.cli import main\nsys.argv = ['dialc', 'validate', 'specs/realestate.dial']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol', 'dialc')"
             " and (m.startswith('dialc.lsp') or not m.startswith('dialc'))))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


# ---- hover -------------------------------------------------------------------------------------
def hover(client: Client, path: Path, position: types.Position) -> str | None:
    found = client.run(client.lsp.text_document_hover_async(types.HoverParams(text_document=doc(path),
                                                                               position=position)))
    if found is None:
        return None
    assert isinstance(found.contents, types.MarkupContent)
    return found.contents.value


def test_hover_documents_kinds_and_fields(client: Client, project: Path) -> None:
    spec = project / "spec.dial"
    kind = hover(client, spec, where(SPEC, "sample prompts", 2))
    assert kind is not None and "production prompts" in kind and "`count` (required)" in kind
    field = hover(client, spec, where(SPEC, "temperature", 3))
    assert field is not None
    assert "sampling temperature" in field and "range 0..2" in field and "default `0`" in field and "number" in field
    qualifier = hover(client, spec, where(SPEC, "judge {", 1))
    assert qualifier is not None and "rubric" in qualifier and "scale" in qualifier
    reference = hover(client, spec, where(SPEC, "model = small", 9))
    assert reference is not None and "model `small`" in reference and "spec.dial:5" in reference
    assert hover(client, spec, where(SPEC, "Extract the budget", 3)) is None  # inside a string: nothing


# ---- completion ------------------------------------------------------------------------------
def complete(client: Client, path: Path, position: types.Position) -> list[str]:
    found = client.run(client.lsp.text_document_completion_async(types.CompletionParams(
        text_document=doc(path), position=position)))
    items = found.items if isinstance(found, types.CompletionList) else (found or [])
    return [item.label for item in items]


def completion_at(client: Client, project: Path, text: str, marker: str = "|") -> list[str]:
    """Completion labels at `marker` in `text`, opened as an unsaved scratch spec beside the real one."""
    scratch = project / "scratch.dial"
    body = SPEC + "\n" + text
    offset = body.index(marker)
    body = body.replace(marker, "", 1)
    uri = scratch.as_uri()
    if uri in client.counts:
        client.change(scratch, body, client.counts[uri] + 10)
    else:
        client.open(scratch, body)
    line = body.count("\n", 0, offset)
    return complete(client, scratch, types.Position(line=line, character=offset - (body.rfind("\n", 0, offset) + 1)))


def test_completion_of_kinds_fields_and_values(client: Client, project: Path) -> None:
    top = completion_at(client, project, "fine|")
    assert {"task", "model", "finetune", "evaluate", "include"} <= set(top) and "dimension" not in top
    fields = completion_at(client, project, "finetune f {\n  base = small\n  lr|")
    assert {"lr", "epochs", "method", "max_len"} <= set(fields) and "temperature" not in fields
    dimension = completion_at(client, project, "quality {\n  dimension d rule { check = schema  ga| }\n}")
    assert {"gate", "check", "pattern", "must_match"} <= set(dimension) and "rubric" not in dimension
    enum = completion_at(client, project, "finetune f { base = small  schedule = |")
    assert enum == ["linear", "cosine", "constant"]
    checks = completion_at(client, project, "quality {\n  dimension d rule { check = | }\n}")
    assert {"schema", "length", "regex"} <= set(checks)
    qualifiers = completion_at(client, project, "quality {\n  dimension d |")
    assert set(qualifiers) == {"rule", "grounding", "judge", "dedup"}


def test_completion_of_declared_names(client: Client, project: Path) -> None:
    models = completion_at(client, project, "finetune f { base = |")
    assert models == ["small"]  # only models: not the task, source or labels
    product = completion_at(client, project, "sample s2 { from = dialogues * |")
    assert {"dialogues", "style", "tasks"} <= set(product) and "small" not in product
    scenarios = completion_at(client, project, "task t2 { scenarios = [rental, |")
    assert set(scenarios) == {"rental", "purchase"}  # from the included taxonomy
    keep = completion_at(client, project, "quality q2 {\n  keep when |")
    assert {"valid", "helpful", "score", "tone"} <= set(keep)
    expect = completion_at(client, project, "quality {\n  expect pass_rate(|")
    assert set(expect) == {"valid", "helpful"}


def test_completion_of_template_placeholders(client: Client, project: Path) -> None:
    sample = completion_at(client, project, 'sample s3 { from = dialogues * tasks * style  template = "Say {dia|')
    assert {"dialogue", "instruction", "scenario", "tone"} <= set(sample)
    evolve = completion_at(client, project, 'evolve e { model = small  prompts = {deepen: "Make {|')
    assert set(evolve) == {"instruction", "category", "scenario"}
    assert completion_at(client, project, 'task t3 { instruction = "no {|') == []  # not a template


# ---- navigation ------------------------------------------------------------------------------
def definition(client: Client, path: Path, position: types.Position) -> list[types.Location]:
    found = client.run(client.lsp.text_document_definition_async(types.DefinitionParams(
        text_document=doc(path), position=position)))
    if found is None:
        return []
    return [found] if isinstance(found, types.Location) else [f for f in found if isinstance(f, types.Location)]


def test_definition_of_references_and_includes(client: Client, project: Path) -> None:
    spec = project / "spec.dial"
    client.change(spec, SPEC, 20)
    model = definition(client, spec, where(SPEC, "model = small", 10))
    assert [(loc.uri, loc.range.start) for loc in model] == [(spec.as_uri(), where(SPEC, "small"))]
    scenario = definition(client, spec, where(SPEC, "purchase]", 2))
    taxonomy = project / "shared" / "taxonomy.dial"
    assert [(loc.uri, loc.range.start) for loc in scenario] == [(taxonomy.as_uri(), where(TAXONOMY, "purchase"))]
    dimension = definition(client, spec, where(SPEC, "mean(helpful)", 6))
    assert [loc.range.start for loc in dimension] == [where(SPEC, "helpful judge")]
    include = definition(client, spec, where(SPEC, "taxonomy.dial", 2))
    assert [loc.uri for loc in include] == [taxonomy.as_uri()]


def test_document_symbols_outline_the_spec(client: Client, project: Path) -> None:
    spec = project / "spec.dial"
    found = client.run(client.lsp.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=doc(spec))))
    assert found is not None
    symbols = [s for s in found if isinstance(s, types.DocumentSymbol)]
    assert [s.name for s in symbols] == ["demo", "small", "dialogues", "extract", "style", "prompts", "labels",
                                         "quality"]
    quality = symbols[-1]
    assert [(c.name, c.detail) for c in quality.children or []] == [("valid", "rule"), ("helpful", "judge")]
    task = symbols[3]
    assert task.selection_range.start == where(SPEC, "extract {")
    assert [c.name for c in (task.children or [])[0].children or []] == ["budget", "purpose"]
    # while a declaration is being typed, the others stay in the outline, where they are
    broken = SPEC.replace("label labels {", "label labels { from =", 1)
    client.change(spec, broken, 40)
    found = client.run(client.lsp.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=doc(spec))))
    assert found is not None
    assert [(s.name, s.range) for s in found if isinstance(s, types.DocumentSymbol)] == [
        (s.name, s.range) for s in symbols if s.name != "labels"]
    client.change(spec, SPEC, 41)


def test_formatting_is_that_of_fmt(client: Client, project: Path) -> None:
    messy = project / "messy.dial"
    text = "pipeline   demo {seed=7}\n\n\n// a comment\nmodel small {path=\"builtin:smollm2-135m-instruct\"}\n"
    messy.write_text(text, encoding="utf-8")
    expected = subprocess.run([sys.executable, "-m", "dialc", "fmt", "messy.dial"], cwd=project,
                              capture_output=True, text=True, timeout=120).stdout
    client.open(messy, text)
    edits = client.run(client.lsp.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=doc(messy), options=types.FormattingOptions(tab_size=2, insert_spaces=True))))
    assert edits and len(edits) == 1
    assert edits[0].new_text == expected and "// a comment" in expected and expected != text
    assert edits[0].range.start == types.Position(line=0, character=0)
    assert edits[0].range.end == types.Position(line=5, character=0)
    client.close(messy)
    messy.unlink()


def test_rename_a_declaration_with_its_references(client: Client, project: Path) -> None:
    spec = project / "spec.dial"
    client.change(spec, SPEC, 30)
    params = types.RenameParams(text_document=doc(spec), position=where(SPEC, "small", 1), new_name="tiny")
    edit = client.run(client.lsp.text_document_rename_async(params))
    assert edit is not None and edit.changes is not None
    assert list(edit.changes) == [spec.as_uri()]
    starts = sorted((e.range.start.line, e.range.start.character) for e in edit.changes[spec.as_uri()])
    expected = sorted((p.line, p.character) for p in (where(SPEC, "small", 0, n) for n in range(SPEC.count("small"))))
    assert starts == expected and len(starts) == 3  # the model and its two references
    assert all(e.new_text == "tiny" for e in edit.changes[spec.as_uri()])
    # a scenario of the included taxonomy: its entry and the reference in the spec
    edit = client.run(client.lsp.text_document_rename_async(types.RenameParams(
        text_document=doc(spec), position=where(SPEC, "rental,", 1), new_name="letting")))
    assert edit is not None and edit.changes is not None
    taxonomy = (project / "shared" / "taxonomy.dial").as_uri()
    assert sorted(edit.changes) == sorted([spec.as_uri(), taxonomy])
    with pytest.raises(JsonRpcException, match="already declared"):
        client.run(client.lsp.text_document_rename_async(types.RenameParams(
            text_document=doc(spec), position=where(SPEC, "helpful", 1), new_name="valid")))
    with pytest.raises(JsonRpcException, match="not a valid name"):
        client.run(client.lsp.text_document_rename_async(types.RenameParams(
            text_document=doc(spec), position=where(SPEC, "small", 1), new_name="9lives")))


# ---- robustness ------------------------------------------------------------------------------
GARBAGE = [
    "", "}}}]]) {{{ = = \"", "task", "task t {", "quality {\n  keep when (( and", "include \"../../etc/passwd\"",
    "model m { path = \"\"\"never closed", "\x00\x01binary", "a" * 5000 + " {" * 300, "😀 { ü = \"ß\" }\n\t",
    "sample s { template = \"{", "output { a: enum(",
]


def test_garbage_never_crashes_the_server(client: Client, project: Path) -> None:
    junk = project / "junk.dial"
    client.open(junk, "")
    for version, text in enumerate(GARBAGE, start=2):
        client.change(junk, text, version)
        for position in (types.Position(line=0, character=0), types.Position(line=0, character=len(text)),
                         types.Position(line=50, character=3)):
            complete(client, junk, position)
            hover(client, junk, position)
            definition(client, junk, position)
        client.run(client.lsp.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc(junk))))
        client.run(client.lsp.text_document_formatting_async(types.DocumentFormattingParams(
            text_document=doc(junk), options=types.FormattingOptions(tab_size=2, insert_spaces=True))))
    for cut in range(0, len(SPEC), 61):  # the spec as it is being typed, checked and asked about at every stage
        typed = SPEC[:cut]
        client.change(junk, typed, 1000 + cut)
        end = types.Position(line=typed.count("\n"), character=len(typed.rsplit("\n", 1)[-1]))
        complete(client, junk, end)
        hover(client, junk, types.Position(line=end.line, character=max(0, end.character - 1)))
    published = client.change(junk, "}}}", 100_000)
    assert [d.code for d in published] == ["syntax"]
    assert not any("failed" in log for log in client.logs), client.logs[-1:]
    # the server still answers properly
    assert "task" in completion_at(client, project, "ta|")

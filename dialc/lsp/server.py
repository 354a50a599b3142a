"""LSP messages over stdio (pygls) → the session and the feature modules; `dialc lsp` runs `serve()`.

Diagnostics follow every change after a short pause (a request first brings them up to date); a
feature that fails on some input answers nothing and logs why, so no document can stop the server.
"""

from __future__ import annotations

import asyncio
import functools
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from dialc import __version__
from dialc.lsp.completion import complete
from dialc.lsp.context import scan
from dialc.lsp.convert import Lines, path_of, uri_of
from dialc.lsp.diagnostics import to_lsp
from dialc.lsp.formatting import formatted
from dialc.lsp.hover import hover_text
from dialc.lsp.navigation import RenameError, definitions, document_symbols, rename_edits, rename_target
from dialc.lsp.session import Session

CHANGE_DELAY = 0.15  # seconds of quiet typing before a document is checked
REQUEST_FAILED = -32803  # LSP's RequestFailed: shown to the user (a rename that cannot be done)
T = TypeVar("T")


class DialServer(LanguageServer):
    """The language server with its session and the pending check."""

    def __init__(self) -> None:
        super().__init__("dialc", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.session = Session()
        self._pending: asyncio.TimerHandle | None = None

    def lines(self, path: Path) -> Lines:
        return Lines(self.session.text_of(path) or "", self.workspace.position_codec)

    def uri(self, path: Path) -> str:
        return self.session.uris.get(path) or uri_of(path)

    def changed(self, uri: str, delay: float) -> None:
        """A document was opened, edited or closed: check it after `delay` (later edits postpone it)."""
        path = path_of(uri)
        document = self.workspace.text_documents.get(uri)
        if document is None:
            self.session.close(path)
        else:
            self.session.update(path, uri, document.source)
        self.schedule(delay)

    def schedule(self, delay: float) -> None:
        if self._pending is not None:
            self._pending.cancel()
        try:
            self._pending = asyncio.get_running_loop().call_later(delay, self.check)
        except RuntimeError:  # no event loop (not served): check now
            self.check()

    def check(self) -> None:
        """Analyse what changed and publish the diagnostics of every file whose list may have changed."""
        self._pending = None
        try:
            paths = self.session.flush()
        except Exception:  # noqa: BLE001 - a front-end failure must not stop the server
            self.log(f"dialc lsp: checking failed:\n{traceback.format_exc()}")
            return
        for path in sorted(paths):
            lines = self.lines(path)
            found = [to_lsp(d, lines, self.lines, self.uri) for d in self.session.diagnostics(path)]
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=self.uri(path),
                                                                                  diagnostics=found))

    def log(self, message: str) -> None:
        self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=message))

    def document(self, uri: str) -> tuple[Path, str, Lines]:
        """Bring the analyses up to date; the document's path, text and lines."""
        if self.session.dirty:
            self.check()
        path = path_of(uri)
        text = self.session.texts.get(path)
        if text is None:
            text = self.workspace.get_text_document(uri).source
        return path, text, Lines(text, self.workspace.position_codec)


def guarded(default: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A handler that logs any failure and answers `default` (a failed rename's reason goes to the user)."""

    def wrap(handler: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(handler)
        def run(ls: DialServer, params: Any) -> T:
            try:
                return handler(ls, params)
            except JsonRpcException:
                raise
            except Exception:  # noqa: BLE001 - the last line of defence of the server
                ls.log(f"dialc lsp: {handler.__name__} failed:\n{traceback.format_exc()}")
                return default  # type: ignore[no-any-return]

        return run

    return wrap


def build_server() -> DialServer:
    server = DialServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @guarded(None)
    def did_open(ls: DialServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.changed(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @guarded(None)
    def did_change(ls: DialServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.changed(params.text_document.uri, CHANGE_DELAY)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @guarded(None)
    def did_close(ls: DialServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.changed(params.text_document.uri, 0)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    @guarded(None)
    def watched(ls: DialServer, params: types.DidChangeWatchedFilesParams) -> None:
        """A file changed on disk (an include edited elsewhere): re-check the specs that read it."""
        ls.session.dirty.update(path_of(change.uri) for change in params.changes)
        ls.schedule(CHANGE_DELAY)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @guarded(None)
    def hover(ls: DialServer, params: types.HoverParams) -> types.Hover | None:
        path, text, lines = ls.document(params.text_document.uri)
        found = hover_text(text, lines.offset(params.position), ls.session.index_for(path))
        if found is None:
            return None
        doc, start, end = found
        span = types.Range(start=lines.position(*lines.point(start)), end=lines.position(*lines.point(end)))
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc), range=span)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=["{", "(", "[", "*"]))
    @guarded(None)
    def completion(ls: DialServer, params: types.CompletionParams) -> types.CompletionList:
        path, text, lines = ls.document(params.text_document.uri)
        offset = lines.offset(params.position)
        items = complete(scan(text, offset), ls.session.index_for(path), after=text[offset:offset + 1])
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @guarded(None)
    def definition(ls: DialServer, params: types.DefinitionParams) -> list[types.Location] | None:
        path, text, lines = ls.document(params.text_document.uri)
        found = definitions(ls.session.index_for(path), path, text, lines.offset(params.position), lines,
                            current=ls.session.is_current(path))
        start = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
        if isinstance(found, Path):
            return [types.Location(uri=ls.uri(found), range=start)] if found.is_file() else None
        if not found:
            return None
        return [types.Location(uri=ls.uri(d.path), range=ls.lines(d.path).range(d.name_span)) for d in found]

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded(None)
    def symbols(ls: DialServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol] | None:
        path, _, lines = ls.document(params.text_document.uri)
        module = ls.session.parsed.get(path)  # while the text does not parse: the declarations that still do
        return document_symbols(module, lines) if module is not None else []

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    @guarded(None)
    def formatting(ls: DialServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        path, text, lines = ls.document(params.text_document.uri)
        canonical = formatted(text, path.name)
        if canonical is None or canonical == text:
            return []
        whole = types.Range(start=types.Position(line=0, character=0), end=lines.end())
        return [types.TextEdit(range=whole, new_text=canonical)]

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    @guarded(None)
    def prepare_rename(ls: DialServer, params: types.PrepareRenameParams) -> types.Range | None:
        path, _, lines = ls.document(params.text_document.uri)
        try:
            _, span = rename_target(ls.session.index_for(path, stale=False), path,
                                    *lines.point(lines.offset(params.position)))
        except RenameError:
            return None
        return lines.range(span)

    @server.feature(types.TEXT_DOCUMENT_RENAME, types.RenameOptions(prepare_provider=True))
    @guarded(None)
    def rename(ls: DialServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
        path, _, lines = ls.document(params.text_document.uri)
        try:
            unparsed = ls.session.unparsed(path)
            if unparsed:
                raise RenameError(f"{unparsed[0].name} has a syntax error: fix it before renaming")
            index = ls.session.index_for(path, stale=False)
            target, _ = rename_target(index, path, *lines.point(lines.offset(params.position)))
            edits = rename_edits(index, target, params.new_name, ls.lines)
        except RenameError as exc:
            raise JsonRpcException(str(exc), code=REQUEST_FAILED) from None
        return types.WorkspaceEdit(changes={ls.uri(p): e for p, e in edits.items()})

    return server


def serve() -> None:
    """Run the language server on stdin/stdout until the client exits."""
    build_server().start_io()

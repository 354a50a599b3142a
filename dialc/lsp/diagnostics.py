"""dialc diagnostics → LSP diagnostics: the same code, span, message and notes `dialc validate` prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lsprotocol import types

from dialc.diagnostics import Diagnostic
from dialc.lsp.analysis import file_path
from dialc.lsp.convert import Lines

SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
            "note": types.DiagnosticSeverity.Information}
SOURCE = "dialc"


def to_lsp(diag: Diagnostic, lines: Lines, lines_of: Callable[[Path], Lines | None],
           uri_of: Callable[[Path], str]) -> types.Diagnostic:
    """One diagnostic in its file's `lines`; its notes (the hints: 'did you mean …', 'first declared here')
    follow the message as `note:` lines, and those pointing somewhere are also related information."""
    message = diag.message + "".join(f"\nnote: {note.message}" for note in diag.notes)
    related = []
    for note in diag.notes:
        if note.span is None:
            continue
        path = file_path(note.span.file)
        note_lines = lines_of(path)
        if note_lines is not None:
            location = types.Location(uri=uri_of(path), range=note_lines.range(note.span))
            related.append(types.DiagnosticRelatedInformation(location=location, message=note.message))
    return types.Diagnostic(range=lines.range(diag.span), message=message, severity=SEVERITY[diag.severity],
                            code=diag.code, source=SOURCE, related_information=related or None)

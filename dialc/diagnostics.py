"""Problems found by any phase → a collector → mypy-style text or JSON for CI."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from dialc.codes import CODES, Severity, severity_of
from dialc.source import Source, Span


@dataclass(frozen=True)
class Note:
    """A secondary message attached to a diagnostic, e.g. 'did you mean …' or 'declared here'."""

    message: str
    span: Span | None = None


@dataclass(frozen=True)
class Diagnostic:
    """One problem: where, how bad, what, and its registry code."""

    code: str
    message: str
    span: Span | None
    severity: Severity
    notes: tuple[Note, ...] = ()

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.file, self.span.line, self.span.col, self.code)


@dataclass
class Diagnostics:
    """The collector every phase writes into; phases record problems instead of raising."""

    items: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    _seen: set[Diagnostic] = field(default_factory=set, repr=False)  # O(1) de-duplication

    def add_source(self, source: Source) -> None:
        self.sources[source.name] = source

    def report(
        self,
        code: str,
        message: str,
        span: Span | None,
        *,
        notes: Iterable[Note] = (),
        severity: Severity | None = None,
    ) -> None:
        if code not in CODES:
            raise KeyError(f"diagnostic code {code!r} is not registered in dialc/codes.py")
        diag = Diagnostic(code, message, span, severity or severity_of(code), tuple(notes))
        if diag not in self._seen:
            self._seen.add(diag)
            self.items.append(diag)

    def truncate(self, count: int) -> list[Diagnostic]:
        """Take back the items reported after the first `count` (and return them)."""
        dropped = self.items[count:]
        del self.items[count:]
        self._seen.difference_update(dropped)
        return dropped

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=Diagnostic.sort_key)


def render_text(diags: Diagnostics, *, show_source: bool = True) -> str:
    """mypy-style lines with the offending source line and a caret under the span."""
    out: list[str] = []
    for diag in diags.sorted():
        out.append(_headline(diag.span, diag.severity, diag.message, diag.code))
        if show_source:
            out.extend(_excerpt(diags, diag.span))
        for note in diag.notes:
            out.append(_headline(note.span or diag.span, "note", note.message, None))
    return "\n".join(out)


def summary(diags: Diagnostics, files: int) -> str:
    """'Found 2 errors in 1 file' / 'Success: no issues found in 3 files' (mypy wording)."""
    errors = len(diags.errors)
    warnings = len(diags.warnings)
    plural = "file" if files == 1 else "files"
    if errors:
        bad_files = len({d.span.file if d.span else d.message for d in diags.errors}) or 1
        word = "error" if errors == 1 else "errors"
        tail = f" and {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
        return f"Found {errors} {word}{tail} in {bad_files} {'file' if bad_files == 1 else 'files'}"
    if warnings:
        return f"Success: {warnings} warning{'s' if warnings != 1 else ''} in {files} {plural}"
    return f"Success: no issues found in {files} source {plural}"


def render_json(diags: Diagnostics) -> str:
    """Machine-readable diagnostics for CI: a list of objects with 1-based positions."""
    rows = []
    for diag in diags.sorted():
        row: dict[str, object] = {"severity": diag.severity, "code": diag.code, "message": diag.message}
        row.update(_span_json(diag.span))
        row["notes"] = [{"message": n.message, **_span_json(n.span)} for n in diag.notes]
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False, indent=2)


def _span_json(span: Span | None) -> dict[str, object]:
    if span is None:
        return {"file": None, "line": None, "column": None}
    return {"file": span.file, "line": span.line, "column": span.col,
            "end_line": span.end_line, "end_column": span.end_col}


def _headline(span: Span | None, severity: str, message: str, code: str | None) -> str:
    where = f"{span.file}:{span.line}:{span.col}: " if span else "dialc: "
    tail = f"  [{code}]" if code else ""
    return f"{where}{severity}: {message}{tail}"


def _excerpt(diags: Diagnostics, span: Span | None) -> list[str]:
    if span is None or span.file not in diags.sources:
        return []
    text = diags.sources[span.file].line(span.line)
    if not text.strip():
        return []
    shown = text.expandtabs(4)[:200]
    width = span.end_col - span.col if span.end_line == span.line else len(text) - span.col + 1
    width = max(1, min(width, len(shown) - span.col + 2))
    return ["    " + shown, "    " + " " * (span.col - 1) + "^" + "~" * (width - 1)]

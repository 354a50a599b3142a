"""Open documents → which specs to check (the roots), their analyses, and the diagnostics each file gets.

A document included by another open document is checked as part of it (a shared taxonomy alone has no
pipeline); any other open document is a root and checked on its own. A file's diagnostics are those of
every root that reads it, so a problem in an included file is published for that file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dialc import syntax as ast
from dialc.diagnostics import Diagnostic
from dialc.lsp.analysis import Analysis, analyse
from dialc.lsp.index import Index


@dataclass
class Session:
    """The server's state: open texts by path, analyses by root, what was last published."""

    texts: dict[Path, str] = field(default_factory=dict)
    uris: dict[Path, str] = field(default_factory=dict)  # the client's URI of each open document
    analyses: dict[Path, Analysis] = field(default_factory=dict)
    parsed: dict[Path, ast.Module] = field(default_factory=dict)  # each file's last module (or salvage)
    published: dict[Path, list[Diagnostic]] = field(default_factory=dict)
    dirty: set[Path] = field(default_factory=set)  # changed since their roots were last analysed

    def update(self, path: Path, uri: str, text: str) -> None:
        self.texts[path] = text
        self.uris[path] = uri
        self.dirty.add(path)

    def close(self, path: Path) -> None:
        self.texts.pop(path, None)
        self.uris.pop(path, None)
        self.analyses.pop(path, None)
        self.dirty.add(path)

    def text_of(self, path: Path) -> str | None:
        """The open buffer, else the text the last analysis read, else None."""
        if path in self.texts:
            return self.texts[path]
        for analysis in self.analyses.values():
            if path in analysis.sources:
                return analysis.sources[path].text
        return None

    def reads(self, root: Path, path: Path) -> bool:
        analysis = self.analyses.get(root)
        return analysis is not None and root != path and path in analysis.sources

    def is_root(self, path: Path) -> bool:
        """Open, and not included by another root (files including each other are both roots)."""
        return path in self.texts and not any(self.reads(r, path) and not self.reads(path, r) for r in self.analyses)

    def flush(self) -> set[Path]:
        """Re-check every root that reads a changed document; the files whose diagnostics may have changed."""
        if not self.dirty:
            return set()
        changed, self.dirty = self.dirty, set()
        for root in [r for r in self.analyses if r in changed or any(self.reads(r, p) for p in changed)]:
            self._analyse(root)
        for path in sorted(self.texts.keys() - self.analyses.keys()):  # opened, or no longer included
            if not any(self.reads(r, path) for r in self.analyses):
                self._analyse(path)
        for root in [r for r in self.analyses if not self.is_root(r)]:
            del self.analyses[root]
        return {p for p in changed if p in self.texts} | self._republish()

    def _analyse(self, root: Path) -> None:
        analysis = self.analyses[root] = analyse(root, self.texts)
        self.parsed.update(analysis.salvaged)
        self.parsed.update(analysis.modules)

    def _republish(self) -> set[Path]:
        """Recompute each file's diagnostics; the files whose list changed (or that lost all)."""
        current: dict[Path, list[Diagnostic]] = {}
        for analysis in self.analyses.values():
            for path, diags in analysis.diagnostics.items():
                known = current.setdefault(path, [])
                known.extend(d for d in diags if d not in known)
        changed = {p for p in current.keys() | self.published.keys()
                   if current.get(p, []) != self.published.get(p, [])}
        self.published = current
        return changed

    def diagnostics(self, path: Path) -> list[Diagnostic]:
        return self.published.get(path, [])

    def analysis_for(self, path: Path) -> Analysis | None:
        """The analysis that read `path`: its own as a root, else a root's that includes it."""
        if path in self.analyses:
            return self.analyses[path]
        return next((a for a in self.analyses.values() if path in a.sources), None)

    def index_for(self, path: Path, stale: bool = True) -> Index:
        """Definitions and references around `path`; with `stale`, files that do not parse now are indexed by
        the declarations that still parse, or as they last parsed (to complete and look up names, not to edit)."""
        analysis = self.analysis_for(path)
        if analysis is None:
            return Index()
        if not stale:
            return analysis.index()
        old = {p: self.parsed[p] for p in analysis.sources if p not in analysis.modules and p in self.parsed}
        return analysis.index(old)

    def unparsed(self, path: Path) -> list[Path]:
        """The files around `path` that do not parse as they are now (`path` itself when it was not read)."""
        analysis = self.analysis_for(path)
        if analysis is None or path not in analysis.sources:
            return [path]
        return sorted(p for p in analysis.sources if p not in analysis.modules)

    def is_current(self, path: Path) -> bool:
        """`path` parsed from exactly its present text in the latest analysis (spans can be trusted)."""
        analysis = self.analysis_for(path)
        if analysis is None or path not in analysis.modules or path not in analysis.sources:
            return False
        return path not in self.texts or analysis.sources[path].text == self.texts[path]

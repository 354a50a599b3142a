"""A spec and the editor's unsaved buffers → the front end's diagnostics per file, its parsed modules and an index.

The front end is the one `dialc validate` runs (dialc.frontend.run_frontend): the same codes, spans and
notes; open buffers are read instead of the files on disk (dialc.source.unsaved_texts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dialc import syntax as ast
from dialc.diagnostics import Diagnostic, Diagnostics
from dialc.frontend import load_modules, resolved, run_frontend
from dialc.lsp.index import Index, build_index
from dialc.lsp.recovery import salvage
from dialc.security import PathPolicy, allowed_paths, reading_policy
from dialc.source import Source, unsaved_texts


@dataclass
class Analysis:
    """What the front end made of one root spec and the files it includes."""

    root: Path
    diagnostics: dict[Path, list[Diagnostic]]  # by the file each points into (no span: the root)
    sources: dict[Path, Source]  # every file read, with the text it was read with
    modules: dict[Path, ast.Module]  # every file that parsed
    salvaged: dict[Path, ast.Module]  # the declarations that parse of the files that do not, and their includes

    def index(self, extra: Mapping[Path, ast.Module] | None = None) -> Index:
        """The index of the modules that parsed; with `extra`, of what was salvaged too (and `extra` ones)."""
        if extra is None:
            return build_index(self.modules.items())
        return build_index({**extra, **self.salvaged, **self.modules}.items())


def file_path(name: str) -> Path:
    """A file name as the front end reports it (relative to the working directory, or absolute) → its path."""
    return resolved(Path(name))


def analyse(root: Path, unsaved: Mapping[Path, str]) -> Analysis:
    """Run the front end on `root` (absolute, resolved) reading `unsaved` texts where given."""
    with unsaved_texts(unsaved):
        front = run_frontend(root)
    diagnostics: dict[Path, list[Diagnostic]] = {}
    for diag in front.diags.sorted():
        where = file_path(diag.span.file) if diag.span else root
        diagnostics.setdefault(where, []).append(diag)
    sources = {file_path(name): source for name, source in front.diags.sources.items()}
    modules = {file_path(module.file): module for module in front.modules}
    with unsaved_texts(unsaved), reading_policy(PathPolicy.for_spec(root, allowed_paths())):
        salvaged = _salvage(sources, modules)
    return Analysis(root=root, diagnostics=diagnostics, sources=sources, modules=modules, salvaged=salvaged)


def _salvage(sources: dict[Path, Source], modules: dict[Path, ast.Module]) -> dict[Path, ast.Module]:
    """What still parses of the files that do not, and the files they include (which the front end, stopped at
    the syntax error, never read)."""
    salvaged: dict[Path, ast.Module] = {}
    for path in sources.keys() - modules.keys():
        module = salvage(sources[path].text, sources[path].name)
        if module is None:
            continue
        salvaged[path] = module
        for include in module.includes:
            target = resolved(path.parent / include.path.value)
            if target not in modules and target not in salvaged:
                for found in load_modules(target, Diagnostics()):
                    salvaged.setdefault(file_path(found.file), found)
    return salvaged

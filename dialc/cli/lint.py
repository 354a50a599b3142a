"""`dialc validate` arguments → diagnostics printed and an exit status, without typer (main()'s fast path).

An editor runs `dialc validate` on every save, so it must answer at once: this module imports only
the front end. main() takes this path when the arguments are a plain `validate` call it can read
exactly as click would; anything else (--help, a bad option, a missing value) goes to the typer app,
which prints the usual usage errors.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dialc.diagnostics import Diagnostics, render_json, render_text, summary

FORMATS = ("text", "json")
_VALUE_OPTIONS = {"--set": "set", "-s": "set", "--format": "format", "-f": "format", "--allow-path": "allow"}


@dataclass
class ValidateArgs:
    """`dialc validate SPEC... [--set KIND.NAME.FIELD=VALUE]... [--format text|json]`, parsed."""

    specs: list[Path] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    fmt: str = "text"
    allow: list[Path] = field(default_factory=list)  # --allow-path DIR: folders the specs may also read


def echo(text: str, err: bool = False) -> None:
    """Print a line as typer.echo does (looked up at call time, so test runners can capture it)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def emit_diagnostics(diags: Diagnostics, files: int, fmt: str = "text", show_summary: bool = True,
                     err: bool = True) -> None:
    """mypy-style text (with a summary line) or JSON for CI."""
    if fmt == "json":
        echo(render_json(diags))
        return
    text = render_text(diags)
    if text:
        echo(text, err=err)
    if show_summary and (diags.items or files > 1):
        echo(summary(diags, files), err=err)


def validate(specs: list[Path], overrides: list[str] | None, fmt: str, allow: list[Path] | None = None) -> int:
    """Check every spec and print all problems in one pass: 0 clean (warnings allowed), 1 errors found.
    `allow`: --allow-path folders (None: those the command line set, dialc.security.allowed_paths)."""
    from dialc.frontend import run_frontend  # the front end's imports are the cost this module keeps low

    combined = Diagnostics()
    for spec in specs:
        front = run_frontend(spec, overrides, allow=allow)
        combined.items.extend(front.diags.items)
        combined.sources.update(front.diags.sources)
    emit_diagnostics(combined, len(specs), fmt, err=False)
    if fmt == "text" and not combined.items and len(specs) == 1:
        echo(summary(combined, 1))
    return 1 if combined.has_errors() else 0


def parse_validate_args(argv: list[str]) -> ValidateArgs | None:
    """argv (after the program name) → the validate call, or None when typer must handle it."""
    if not argv or argv[0] != "validate":
        return None
    args = ValidateArgs()
    rest = argv[1:]
    while rest:
        token = rest.pop(0)
        if token == "--":
            args.specs += [Path(t) for t in rest]
            break
        if not token.startswith("-"):
            args.specs.append(Path(token))
        elif not _take_option(token, rest, args):
            return None
    if not args.specs or args.fmt not in FORMATS or not all(_click_accepts(p) for p in args.specs):
        return None
    return args


def _take_option(token: str, rest: list[str], args: ValidateArgs) -> bool:
    """Consume one option (`--set X`, `--set=X`, `-s X`, `-sX`); False for anything click should judge."""
    if token.startswith("--"):
        name, eq, value = token.partition("=")
        inline = value if eq else None
    else:
        name, inline = token[:2], (token[2:] or None)
    which = _VALUE_OPTIONS.get(name)
    if which is None:
        return False
    if inline is None:
        if not rest or rest[0].startswith("-"):
            return False
        inline = rest.pop(0)
    if which == "set":
        args.overrides.append(inline)
    elif which == "allow":
        args.allow.append(Path(inline))
    else:
        args.fmt = inline
    return True


def _click_accepts(path: Path) -> bool:
    """click rejects '-' and existing but unreadable paths before the command runs: leave those to it."""
    if str(path) == "-":
        return False
    return not (path.exists() and not os.access(path, os.R_OK))

"""A review file → a terminal session where a person accepts, rejects or edits each pending candidate."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import typer

from dialc_runtime.data.review import Decision, ReviewFileError, decide_pending, read_review, record_decision, state

EXIT_PENDING = 3  # candidates still pending after an interactive or bulk session: the gate is closed
KEYS = {"a": "accept", "r": "reject", "e": "edit", "s": "skip", "q": "quit"}
DIALOGUE_LINES = 6  # lines of the context dialogue shown in the terminal (the web page shows it whole)


def review_file(path: Path, *, accept_all: bool = False, reject_all: bool = False, list_only: bool = False) -> int:
    """Exit status: 1 when the file is missing or unreadable; `--list` 0 (it only shows, and its last
    line says how many are pending); otherwise 0 when nothing is pending afterwards, else 3 (the gate
    stays closed, as `dialc run` says)."""
    rows = load_rows(path)
    if rows is None:
        return 1
    try:
        if list_only:
            for row in sorted(rows.values(), key=lambda r: r["id"]):
                typer.echo(f"{row['decision']:<8} {row['id']}: {row['instruction']}")
        elif accept_all or reject_all:
            decide_pending(path, "accept" if accept_all else "reject")
        else:
            _interactive(path, rows)
        rows = read_review(path)
    except ReviewFileError as exc:
        typer.echo(f"dialc: error: {exc}", err=True)
        return 1
    return pending_summary(path, rows, list_only=list_only)


def load_rows(path: Path) -> dict[str, dict[str, Any]] | None:
    """The file's rows, or None after saying why there are none (missing, unreadable)."""
    if not path.is_file():
        typer.echo(f"dialc: error: review file not found: {path} (run the pipeline first: it writes it)", err=True)
        return None
    try:
        return read_review(path)
    except ReviewFileError as exc:
        typer.echo(f"dialc: error: {exc}", err=True)
        return None


def pending_summary(path: Path, rows: dict[str, dict[str, Any]], *, list_only: bool = False) -> int:
    """Print how many are decided and pending; the exit status (3 while any is pending, except --list)."""
    pending = sum(1 for r in rows.values() if r["decision"] == "pending")
    gate = ": `dialc run` stops at this gate until none is pending" if pending else ""
    typer.echo(f"{len(rows) - pending} decided, {pending} pending in {path}{gate}", err=True)
    return EXIT_PENDING if pending and not list_only else 0


def _interactive(path: Path, rows: dict[str, dict[str, Any]]) -> None:
    pending = [r for r in sorted(rows.values(), key=lambda r: r["id"]) if r["decision"] == "pending"]
    for number, row in enumerate(pending, start=1):
        _show(row, number, len(pending))
        choice = typer.prompt("  [a]ccept [r]eject [e]dit [s]kip [q]uit", default="s").strip().lower()[:1]
        action = KEYS.get(choice, "skip")
        if action == "quit":
            break
        edit = None
        if action == "edit":
            edit = edit_instruction(row["instruction"])
            if edit is None:
                continue
            action = "accept"
        if action in ("accept", "reject"):  # saved at once, merged into the file as it is now
            outcome = record_decision(path, Decision(row["id"], action, edit, seen=state(row)))
            if outcome.conflict:
                typer.echo(f"  not saved: decided elsewhere meanwhile ({outcome.row['decision']}: "
                           f"{outcome.row['instruction']})")


def _show(row: dict[str, Any], number: int, total: int) -> None:
    typer.echo(f"\n[{number}/{total}] {row['id']}  ({row.get('operator')} of {row.get('parent')}, "
               f"{row.get('category')})")
    typer.echo(f"  original:  {row.get('original') or ''}")
    typer.echo(f"  candidate: {row['instruction']}")
    typer.echo(f"  output:    {row.get('output') or '(not recorded)'}")
    dialogue = row.get("dialogue")
    if isinstance(dialogue, dict):
        lines = str(dialogue.get("text", "")).splitlines()
        more = f" … {len(lines) - DIALOGUE_LINES} more lines" if len(lines) > DIALOGUE_LINES else ""
        typer.echo(f"  check against dialogue {dialogue.get('id')} ({dialogue.get('scenario')}){more}:")
        for line in lines[:DIALOGUE_LINES]:
            typer.echo(f"    {line}")


def edit_instruction(current: str) -> str | None:
    """The edited instruction: in $EDITOR (a temporary file) when it is set, else an inline prompt.
    None when the edit is abandoned (the editor failed, or left the text empty)."""
    editor = os.environ.get("EDITOR", "").strip()
    if not editor:
        return typer.prompt("  new instruction", default=current).strip() or None
    text = run_editor(editor, current)
    if text is None:
        return None
    if not text:
        typer.echo("  empty instruction: not changed")
        return None
    return text


def run_editor(editor: str, text: str) -> str | None:
    """Open `text` in the editor command (split like a shell would), return what it saved: comment
    lines (`#`) dropped and whitespace stripped; None when the editor could not run or failed."""
    handle, name = tempfile.mkstemp(prefix="dialc-review-", suffix=".txt")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text + "\n\n# Edit the instruction above; lines starting with # are ignored.\n"
                           "# Save and close the editor to accept it; an empty text keeps the candidate.\n")
        try:
            done = subprocess.run([*shlex.split(editor), name], check=False)
        except OSError as exc:
            typer.echo(f"  cannot start $EDITOR ({editor}): {exc.strerror or exc}")
            return None
        if done.returncode != 0:
            typer.echo(f"  $EDITOR exited with status {done.returncode}: not changed")
            return None
        saved = Path(name).read_text(encoding="utf-8", errors="replace")
    finally:
        Path(name).unlink(missing_ok=True)
    return "\n".join(line for line in saved.splitlines() if not line.lstrip().startswith("#")).strip()

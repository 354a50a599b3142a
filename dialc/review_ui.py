"""A review file → a terminal session where a person accepts, rejects or edits each pending candidate."""

from __future__ import annotations

from pathlib import Path

import typer

from dialc_runtime.data.review import ReviewFileError, read_review, write_review

EXIT_PENDING = 3  # candidates still pending after an interactive or bulk session: the gate is closed
KEYS = {"a": "accept", "r": "reject", "e": "edit", "s": "skip", "q": "quit"}


def review_file(path: Path, *, accept_all: bool = False, reject_all: bool = False, list_only: bool = False) -> int:
    """Exit status: 1 when the file is missing or unreadable; `--list` 0 (it only shows, and its last
    line says how many are pending); otherwise 0 when nothing is pending afterwards, else 3 (the gate
    stays closed, as `dialc run` says)."""
    if not path.is_file():
        typer.echo(f"dialc: error: review file not found: {path} (run the pipeline first: it writes it)", err=True)
        return 1
    try:
        rows = read_review(path)
    except ReviewFileError as exc:
        typer.echo(f"dialc: error: {exc}", err=True)
        return 1
    if list_only:
        for row in sorted(rows.values(), key=lambda r: r["id"]):
            typer.echo(f"{row['decision']:<8} {row['id']}: {row['instruction']}")
    elif accept_all or reject_all:
        for row in rows.values():
            if row["decision"] == "pending":
                row["decision"] = "accept" if accept_all else "reject"
        write_review(path, list(rows.values()))
    else:
        _interactive(path, rows)
    pending = sum(1 for r in rows.values() if r["decision"] == "pending")
    gate = ": `dialc run` stops at this gate until none is pending" if pending else ""
    typer.echo(f"{len(rows) - pending} decided, {pending} pending in {path}{gate}", err=True)
    return EXIT_PENDING if pending and not list_only else 0


def _interactive(path: Path, rows: dict[str, dict]) -> None:
    pending = [r for r in sorted(rows.values(), key=lambda r: r["id"]) if r["decision"] == "pending"]
    for number, row in enumerate(pending, start=1):
        typer.echo(f"\n[{number}/{len(pending)}] {row['id']}  ({row['operator']} of {row['parent']}, "
                   f"{row['category']})")
        typer.echo(f"  original:  {row['original']}")
        typer.echo(f"  candidate: {row['instruction']}")
        choice = typer.prompt("  [a]ccept [r]eject [e]dit [s]kip [q]uit", default="s").strip().lower()[:1]
        action = KEYS.get(choice, "skip")
        if action == "quit":
            break
        if action == "edit":
            row["instruction"] = typer.prompt("  new instruction", default=row["instruction"]).strip()
            action = "accept"
        if action in ("accept", "reject"):
            row["decision"] = action
            write_review(path, list(rows.values()))  # saved after every decision: nothing lost on Ctrl-C

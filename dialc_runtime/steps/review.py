"""Evolved tasks + a review file → the tasks a person accepted (edits applied), or 'blocked' until reviewed."""

from __future__ import annotations

from pathlib import Path

from dialc.plan import ReviewParams
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.data.review import ReviewFileError, merge_candidates

VERSION = "1"


def run(ctx: StepContext[ReviewParams]) -> StepOutput:
    path = Path(ctx.params.path)
    tasks = [t for t in ctx.role_records("candidates") if not t.get("filtered")]
    originals = [t for t in tasks if t.get("origin") != "evolved"]
    candidates = [t for t in tasks if t.get("origin") == "evolved"]
    parents = {t["id"]: t["instruction"] for t in tasks}
    try:
        rows = {r["id"]: r for r in merge_candidates(path, candidates, parents)}
    except ReviewFileError as exc:
        raise StepFailed(str(exc)) from exc
    pending = [c for c in candidates if rows[c["id"]]["decision"] == "pending"]
    if pending:
        return StepOutput(status="blocked", metrics={"pending": len(pending), "candidates": len(candidates)},
                          message=f"{len(pending)} evolved task(s) await human review in {path}: run "
                                  f"`dialc review {path}`, then `dialc run` again")
    accepted = []
    for task in candidates:
        row = rows[task["id"]]
        if row["decision"] == "accept":
            edited = row["instruction"].strip() != task["instruction"].strip()
            accepted.append({**task, "instruction": row["instruction"].strip(), "reviewed": "edited" if edited
                             else "accepted"})
    for index, task in enumerate([*originals, *accepted]):
        ctx.emit(f"{index:05d}", task)
    rejected = len(candidates) - len(accepted)
    metrics = {"accepted": len(accepted), "rejected": rejected, "tasks": len(originals) + len(accepted)}
    return StepOutput(metrics=metrics)

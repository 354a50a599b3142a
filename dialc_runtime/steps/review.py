"""Evolved tasks and paraphrases + a review file → what a person accepted (edits applied), or 'blocked'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dialc.plan import ReviewParams
from dialc_runtime.data.review import ReviewFileError, merge_candidates
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed

VERSION = "3"  # 2: paraphrases are reviewed with the evolved tasks; 3: rows show output constraint and dialogue


def run(ctx: StepContext[ReviewParams]) -> StepOutput:
    path = Path(ctx.params.path)
    records = [t for t in ctx.role_records("candidates") if not t.get("filtered")]
    tasks = [t for t in records if t.get("kind") != "paraphrase"]
    paraphrases = [t for t in records if t.get("kind") == "paraphrase"]
    originals = [t for t in tasks if t.get("origin") != "evolved"]
    candidates = [t for t in tasks if t.get("origin") == "evolved"]
    by_id = {t["id"]: t for t in tasks}
    try:
        rows = {r["id"]: r for r in merge_candidates(path, [*candidates, *paraphrases], by_id)}
    except ReviewFileError as exc:
        raise StepFailed(str(exc)) from exc
    pending = [sum(1 for c in group if rows[c["id"]]["decision"] == "pending") for group in (candidates, paraphrases)]
    if any(pending):
        what = " and ".join(f"{n} {noun}" for n, noun in zip(pending, ("evolved task(s)", "paraphrase(s)"),
                                                               strict=True) if n)
        return StepOutput(status="blocked", metrics={"pending": sum(pending), "candidates": len(candidates),
                                                     "paraphrases": len(paraphrases)},
                          message=f"{what} await human review in {path}: run `dialc review {path}`, then "
                                  "`dialc run` again")
    accepted = _accepted(candidates, rows)
    usable = {t["id"] for t in [*originals, *accepted]}
    phrased = [p for p in _accepted(paraphrases, rows) if p["task_id"] in usable]  # not of a rejected task
    for index, task in enumerate([*originals, *accepted, *phrased]):
        ctx.emit(f"{index:05d}", task)
    metrics = {"accepted": len(accepted), "rejected": len(candidates) - len(accepted),
               "tasks": len(originals) + len(accepted), "paraphrases_accepted": len(phrased),
               "paraphrases_rejected": len(paraphrases) - len(phrased)}
    return StepOutput(metrics=metrics)


def _accepted(candidates: list[dict[str, Any]], rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidates a person accepted, with their (possibly edited) instruction."""
    out = []
    for task in candidates:
        row = rows[task["id"]]
        if row["decision"] == "accept":
            edited = row["instruction"].strip() != task["instruction"].strip()
            out.append({**task, "instruction": row["instruction"].strip(),
                        "reviewed": "edited" if edited else "accepted"})
    return out

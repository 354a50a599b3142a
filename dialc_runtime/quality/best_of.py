"""Best-of-N labelling: candidate ids and seeds per prompt, and the choice of one candidate per prompt.

With `label { candidates = N }` the label step answers each production prompt N times (candidate k
under its own seed, derived from the prompt id and k; candidate 0 has the seed a single label would
have) and every candidate is scored by every quality dimension. The filter then keeps at most one
candidate per prompt (rejection sampling): among the candidates whose label is valid and that pass
every gate, the one with the highest aggregate score (a candidate without an aggregate ranks last);
ties go to the lowest candidate index. The winner goes on to the keep rule; the others are rejected
with cause `best_of`, stay in the store with their scores, `selected: false` and `lost_to` (the
winner's id). When no candidate passes the gates, none is selected and each keeps its own rejection.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from dialc_runtime.data.seeds import derive
from dialc_runtime.quality.aggregate import Decision

LOST = "best_of"  # the filter cause of a candidate that lost to a sibling
UNSELECTABLE = ("label",)  # causes that rule a candidate out (besides failed gates, "gate:<name>")


def candidate_id(prompt_id: str, index: int, candidates: int) -> str:
    """A single label keeps its prompt's id; with N > 1 candidate k is `<prompt id>#c<k>`."""
    return prompt_id if candidates <= 1 else f"{prompt_id}#c{index}"


def candidate_seed(seed: int, prompt_id: str, index: int) -> int:
    """Candidate 0 has the seed a single label has; candidate k > 0 a seed of its own."""
    return derive(seed, prompt_id) if index == 0 else derive(seed, prompt_id, f"c{index}")


def candidate_fields(prompt_id: str, index: int, candidates: int) -> dict[str, Any]:
    """What a candidate record carries beyond its prompt's fields (nothing for a single label)."""
    if candidates <= 1:
        return {}
    return {"id": candidate_id(prompt_id, index, candidates), "prompt_id": prompt_id, "candidate": index,
            "candidates": candidates}


def selectable(decision: Decision) -> bool:
    """A candidate may win when its label is valid and it passed every gate."""
    return decision.cause not in UNSELECTABLE and not decision.cause.startswith("gate:")


def _rank(decision: Decision) -> float:
    return -1.0 if decision.aggregate is None else decision.aggregate


NOT_A_CANDIDATE: dict[str, Any] = {}  # what select_best adds to a record that is not a candidate: nothing


def sibling_group(record: Mapping[str, Any]) -> str:
    """The prompt of a best-of-N candidate (its siblings are alternatives, of which one is kept), else ""."""
    if record.get("prompt_id") is None or int(record.get("candidates") or 1) <= 1:
        return ""
    return str(record["prompt_id"])


def select_best(
    records: Sequence[Mapping[str, Any]], decisions: Sequence[Decision]
) -> tuple[list[Decision], list[dict[str, Any]]]:
    """Per prompt with candidates, the best selectable one wins and the others lose (cause `best_of`).

    Returns the new decisions and, per record, the fields to add to it: `{}` for a record that is not a
    candidate, else `selected` (bool) and, for a loser, `lost_to`."""
    out = list(decisions)
    extra: list[dict[str, Any]] = [NOT_A_CANDIDATE] * len(records)  # replaced, never changed, for candidates
    groups: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        if group := sibling_group(record):
            groups[group].append(i)
    for members in groups.values():
        eligible = [i for i in members if selectable(decisions[i])]
        ranked = sorted(eligible, key=lambda i: (-_rank(decisions[i]), int(records[i].get("candidate") or 0), i))
        winner = ranked[0] if ranked else None
        for i in members:
            if i == winner:
                extra[i] = {"selected": True}
                continue
            extra[i] = {"selected": False}
            if winner is None or i not in eligible:
                continue  # rejected on its own account (invalid label, failed gate)
            best = records[winner]["id"]
            extra[i]["lost_to"] = best
            mine, theirs = decisions[i].aggregate, decisions[winner].aggregate
            out[i] = replace(decisions[i], kept=False, cause=LOST,
                             reason=f"best of {len(members)}: lost to {best} (aggregate {_show(mine)} < "
                                    f"{_show(theirs)})" if _rank(decisions[i]) < _rank(decisions[winner]) else
                             f"best of {len(members)}: lost to {best} (same aggregate {_show(mine)}, lower "
                             "candidate index wins)")
    return out, extra


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


Row = TypeVar("Row", bound=Mapping[str, Any])  # a record as a dict, or the filter's compact row


def one_per_prompt(rows: Sequence[Row]) -> list[Row]:
    """The set's records, one per prompt: every record that is not a candidate, each prompt's selected
    candidate, and for a prompt none of whose candidates could be selected its first candidate (so data
    tests and rates count prompts, not candidates)."""
    return [rows[i] for i in one_per_prompt_indices(rows)]


def one_per_prompt_indices(rows: Sequence[Mapping[str, Any]]) -> array[int]:
    """The positions of one_per_prompt's records, in its order (an array: no int object per record)."""
    out = array("q")
    fallback: dict[str, int] = {}  # prompt → its first candidate's position
    chosen: set[str] = set()
    for i, row in enumerate(rows):
        group = sibling_group(row)
        if not group:
            out.append(i)
        elif row.get("selected"):
            out.append(i)
            chosen.add(group)
        else:
            first = fallback.get(group)
            if first is None or int(row.get("candidate") or 0) < int(rows[first].get("candidate") or 0):
                fallback[group] = i
    out.extend(i for prompt, i in fallback.items() if prompt not in chosen)
    return out


def selection_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How best-of-N went: prompts, candidates, how often a later candidate beat candidate 0, and the mean
    aggregate of the selected candidates vs candidate 0's (what choosing bought, by the set's own scores)."""
    candidates = [r for r in rows if sibling_group(r)]
    if not candidates:
        return {}
    prompts = {str(r["prompt_id"]) for r in candidates}
    winners = [r for r in candidates if r.get("selected")]
    first = [r for r in candidates if int(r.get("candidate") or 0) == 0]

    def mean_aggregate(group: list[Mapping[str, Any]]) -> float | None:
        values = [float(r["aggregate"]) for r in group if r.get("aggregate") is not None]
        return round(sum(values) / len(values), 4) if values else None

    return {"prompts": len(prompts), "candidates": len(candidates), "selected": len(winners),
            "none_selectable": len(prompts) - len(winners),
            "later_candidate_won": sum(1 for r in winners if int(r.get("candidate") or 0) > 0),
            "mean_aggregate_selected": mean_aggregate(winners), "mean_aggregate_first": mean_aggregate(first)}

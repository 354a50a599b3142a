"""(labelled record, its dimension verdicts, weights, gates, keep rule) → the filter's verdict."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialc.schema import KEEP_FIELDS
from dialc_runtime.quality.keep import NOT_APPLICABLE, evaluate, fmt
from dialc_runtime.quality.verdict import not_applicable

MISSING = {"score": None, "passed": None, "detail": "no score record"}
RECORD_FIELDS = KEEP_FIELDS  # record fields a keep rule may name: the language's list, not a copy


@dataclass(frozen=True)
class Dimension:
    """How one dimension counts: weight in the aggregate, or a gate (a hard pass/fail)."""

    name: str
    weight: float = 1.0
    gate: bool = False
    kind: str = ""


def parse_dimensions(params: dict[str, Any]) -> dict[str, Dimension]:
    """`{"valid": {"gate": true}, "helpful": {"weight": 2}}` → Dimension objects."""
    out = {}
    for name, spec in (params or {}).items():
        spec = spec or {}
        out[name] = Dimension(
            name,
            float(spec.get("weight", 1.0)),
            bool(spec.get("gate", False)),
            str(spec.get("kind", "")),
        )
    return out


def aggregate(verdicts: dict[str, dict[str, Any]], dims: dict[str, Dimension]) -> float | None:
    """Weighted mean of the non-gate dimensions that have a score (one that does not apply, or whose
    check failed, is left out and the weights renormalised); None when none has."""
    total = weight = 0.0
    for dim in dims.values():
        score = verdicts.get(dim.name, MISSING).get("score")
        if dim.gate or score is None or dim.weight <= 0:
            continue
        total += dim.weight * float(score)
        weight += dim.weight
    return round(total / weight, 4) if weight else None


def gate_failure(
    verdicts: dict[str, dict[str, Any]], dims: dict[str, Dimension]
) -> tuple[str, str] | None:
    """(gate name, reason) of the first failed gate; a gate that could not be assessed fails too, one
    that does not apply to the record passes (its verdict says passed)."""
    for dim in dims.values():
        verdict = verdicts.get(dim.name, MISSING)
        if not dim.gate or verdict.get("passed") is True:
            continue
        how = "failed" if verdict.get("passed") is False else "not assessed"
        detail = verdict.get("detail") or ""
        return dim.name, f"gate {dim.name} {how}" + (f": {detail}" if detail else "")
    return None


def environment(
    record: dict[str, Any], verdicts: dict[str, dict[str, Any]], score: float | None,
    dims: dict[str, Dimension] | None = None,
) -> dict[str, Any]:
    """The names a keep rule may use: score, each dimension's score, record fields, axes; a
    dimension that does not apply to the record is NOT_APPLICABLE (and so is a score made of none)."""
    env: dict[str, Any] = {f: record.get(f) for f in RECORD_FIELDS}
    env.update((record.get("expression") or {}).items())
    env.update({name: NOT_APPLICABLE if not_applicable(v) else v.get("score") for name, v in verdicts.items()})
    weighed = [d for d in (dims or {}).values() if not d.gate and d.weight > 0]
    none_apply = bool(weighed) and all(not_applicable(verdicts.get(d.name, MISSING)) for d in weighed)
    env["score"] = NOT_APPLICABLE if score is None and none_apply else score
    return env


@dataclass(frozen=True, slots=True)
class Decision:
    """The filter's verdict on one record; `cause` groups reasons for the metrics."""

    kept: bool
    reason: str
    cause: str  # "kept" | "label" | "gate:<name>" | "keep" | "top_k"
    aggregate: float | None


def decide(
    record: dict[str, Any],
    verdicts: dict[str, dict[str, Any]],
    dims: dict[str, Dimension],
    keep: Any = None,
) -> Decision:
    """Label failure, then gates, then the keep rule (default: keep whatever passes the gates)."""
    score = aggregate(verdicts, dims)
    if not record.get("ok", True):
        return Decision(
            False, f"label failed: {record.get('error') or 'no answer'}", "label", score
        )
    failed_gate = gate_failure(verdicts, dims)
    if failed_gate is not None:
        return Decision(False, failed_gate[1], f"gate:{failed_gate[0]}", score)
    if keep is None:
        return Decision(True, "passed every gate", "kept", score)
    outcome = evaluate(keep, environment(record, verdicts, score, dims))
    return Decision(outcome.ok, outcome.reason, "kept" if outcome.ok else "keep", score)


def parse_top_k(top_k: Any) -> tuple[int, str] | None:
    """`5` (per category) or `{"k": 5, "by": "scenario"}` → (k, key); None or 0 = no limit."""
    k, key = (
        (top_k.get("k"), top_k.get("by", "category"))
        if isinstance(top_k, dict)
        else (top_k, "category")
    )
    return (int(k), str(key)) if k else None


def _rank_score(decision: Decision) -> float:
    return -1.0 if decision.aggregate is None else decision.aggregate


def apply_top_k(
    records: Sequence[Mapping[str, Any]], decisions: list[Decision], top_k: Any
) -> list[Decision]:
    """Keep only the k best-scoring kept records per group (ties: earlier record first)."""
    limit = parse_top_k(top_k)
    if limit is None:
        return decisions
    k, key = limit
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, (record, decision) in enumerate(zip(records, decisions, strict=True)):
        if decision.kept:
            groups[record.get(key)].append(i)
    out = list(decisions)
    for group, members in groups.items():
        ranked = sorted(members, key=lambda i: (-_rank_score(decisions[i]), i))
        for rank, i in enumerate(ranked[k:], start=k + 1):
            reason = f"not in top {k} of {key} {fmt(group)} (rank {rank})"
            out[i] = Decision(False, reason, "top_k", decisions[i].aggregate)
    return out

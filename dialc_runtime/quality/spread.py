"""A dimension's scores → their spread and their agreement with the other dimensions; a judge that
cannot separate records (the same score for everything) is noise at full weight and is said to be."""

from __future__ import annotations

import statistics
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

MIN_SPREAD = 0.05  # standard deviation on the 0..1 scale below which scores do not separate records
MIN_RECORDS = 5  # fewer scored records: no spread or agreement is computed


def spread(scores: list[float]) -> dict[str, Any]:
    """{n, std, min, max, distinct} of a dimension's scores (std None under MIN_RECORDS)."""
    if len(scores) < MIN_RECORDS:
        return {"n": len(scores), "std": None, "min": None, "max": None, "distinct": len(set(scores))}
    return {"n": len(scores), "std": round(statistics.pstdev(scores), 4), "min": round(min(scores), 4),
            "max": round(max(scores), 4), "distinct": len({round(s, 4) for s in scores})}


def spread_counts(counts: Counter[float]) -> dict[str, Any]:
    """spread() of scores given as score → records (the same figures, without a list of every score)."""
    n = sum(counts.values())
    if n < MIN_RECORDS:
        return {"n": n, "std": None, "min": None, "max": None, "distinct": len(counts)}
    return {"n": n, "std": round(statistics.pstdev(counts.elements()), 4), "min": round(min(counts), 4),
            "max": round(max(counts), 4), "distinct": len({round(s, 4) for s in counts})}


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Rank correlation of paired scores (a[i] with b[i]); None when too few or when either side is constant."""
    if len(a) < MIN_RECORDS or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    from scipy.stats import spearmanr

    return round(float(spearmanr(a, b).statistic), 4)


def agreement(rows: Sequence[Mapping[str, Any]], name: str, others: list[str]) -> dict[str, dict[str, Any]]:
    """other dimension → {rho, n}: Spearman correlation over the records both scored (the paired scores are held
    as doubles, not as a tuple per record)."""
    out = {}
    for other in others:
        if other == name:
            continue
        mine, theirs = array("d"), array("d")
        for r in rows:
            scores = r.get("scores") or {}
            if (a := scores.get(name)) is not None and (b := scores.get(other)) is not None:
                mine.append(float(a))
                theirs.append(float(b))
        out[other] = {"rho": spearman(mine, theirs), "n": len(mine)}
    return out


def separation_warning(name: str, figures: dict[str, Any], pass_rate: float | None) -> str | None:
    """Why a dimension cannot tell records apart (all within a sliver of the scale), or None."""
    std = figures.get("std")
    if std is None or std >= MIN_SPREAD:
        return None
    verdict = f"; it passes {pass_rate:.0%}" if pass_rate is not None and pass_rate in (0.0, 1.0) else ""
    return (f"{name} cannot separate records: its {figures['n']} scores lie in {figures['min']:g}–{figures['max']:g} "
            f"(standard deviation {std:g} < {MIN_SPREAD:g}){verdict}; at its weight it adds noise to the "
            "aggregate: calibrate it (`dialc calibrate`), use a stronger judge model, or lower its weight")

"""(quality score, gold correctness) pairs → does the score predict correctness? Spearman, AUC, precision.

Each labelled gold item has a correctness in 0..1 (its primary gold metric: field F1 for a schema
task, accuracy for choice and regex, ROUGE-L for text) and is *correct* when that reaches its kind's
threshold (CORRECT: field F1 ≥ 0.75, i.e. at most one of four fields wrong; an exact choice or regex
match; ROUGE-L ≥ 0.3 against the hand-written reference). Per quality dimension and for the aggregate:

per task and pooled over every task (pooled figures mix output kinds whose scores and correctness run on
different scales, so a dimension can look predictive or perverse pooled and not within any task: read the
per-task rows first):

* **Spearman ρ** of the score with the correctness (items the dimension scored; n/a items left out);
* **AUC**: the chance that a correct item scores higher than an incorrect one (ties count half);
  0.5 is a coin, 1 a perfect ranking, below 0.5 the dimension prefers wrong labels;
* **precision of kept vs rejected**: the correct share among the items the dimension passes and among
  those it fails (for the aggregate: the filter's decision, gates and keep rule);

each with its n and a seeded percentile-bootstrap 95% interval (items resampled; the candidates of one
prompt resampled together, as they are not independent). Below MIN_ITEMS
scored items, or MIN_CLASS in the smaller class, the verdict says the evidence is too thin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

CORRECT = {"json": 0.75, "choice": 1.0, "regex": 1.0, "text": 0.3}  # correctness ≥ this: correct
CORRECT_TEXT = ("field F1 ≥ 0.75 (schema), exact match (choice, regex), ROUGE-L ≥ 0.3 (text)")
MIN_ITEMS = 30  # fewer scored items: no verdict
MIN_CLASS = 5  # fewer correct (or incorrect) items: AUC and precision carry nothing
RESAMPLES = 1000
AGGREGATE = "score"  # the aggregate's row name (what keep rules call it)

Interval = tuple[float, float] | None


def is_correct(kind: str, correctness: float) -> bool:
    return correctness >= CORRECT.get(kind, 1.0) - 1e-9


@dataclass(frozen=True)
class Pair:
    """One labelled item as the statistics see it."""

    score: float | None  # the dimension's score (None: n/a or not assessed)
    passed: bool | None  # the dimension's pass / the filter's keep
    correctness: float
    correct: bool
    group: str = ""  # the prompt a best-of-N candidate answers: a bootstrap resamples prompts, not candidates


@dataclass
class Predictiveness:
    """One dimension (or the aggregate) against gold correctness."""

    dimension: str
    n: int  # items with a score
    correct: int  # of them, correct
    rho: float | None = None
    rho_ci: Interval = None
    auc: float | None = None
    auc_ci: Interval = None
    kept_n: int = 0  # items passed (kept) / failed (rejected), and the correct share of each
    kept_precision: float | None = None
    kept_ci: Interval = None
    rejected_n: int = 0
    rejected_precision: float | None = None
    rejected_ci: Interval = None
    verdict: str = ""
    notes: list[str] = field(default_factory=list)
    task: str = ""  # "" = every task pooled

    @property
    def scope(self) -> str:
        return self.task or "all tasks"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (ties share the mean of their positions)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ (Pearson correlation of average ranks); None with < 3 pairs or a constant side."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx, vy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy) if vx and vy else None


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(score of a correct item > score of an incorrect one), ties counting half; None without both."""
    pos = sum(1 for c in labels if c)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    ranks = _ranks(scores)
    rank_sum = sum(r for r, c in zip(ranks, labels, strict=True) if c)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def bootstrap(pairs: Sequence[Pair], stat: Any, seed: int, resamples: int = RESAMPLES) -> Interval:
    """Percentile 95% interval of `stat(pairs)` over resamples of the items, or of their groups (the candidates
    of one prompt go together); resamples where it is undefined are dropped."""
    import random

    if len(pairs) < 3:
        return None
    clusters: dict[str, list[Pair]] = {}
    for n, pair in enumerate(pairs):
        clusters.setdefault(pair.group or f"#{n}", []).append(pair)
    groups = list(clusters.values())
    rng = random.Random(seed)
    values = []
    for _ in range(resamples):
        value = stat([p for _ in groups for p in groups[rng.randrange(len(groups))]])
        if value is not None:
            values.append(value)
    if len(values) < resamples / 2:
        return None
    values.sort()
    return values[int(0.025 * len(values))], values[min(len(values) - 1, int(0.975 * len(values)))]


def _rho(pairs: Sequence[Pair]) -> float | None:
    return spearman([p.score for p in pairs if p.score is not None],
                    [p.correctness for p in pairs if p.score is not None])


def _auc(pairs: Sequence[Pair]) -> float | None:
    scored = [p for p in pairs if p.score is not None]
    return auc([p.score for p in scored if p.score is not None], [p.correct for p in scored])


def _precision(pairs: Sequence[Pair]) -> float | None:
    return share([p.correct for p in pairs])


def predictiveness(name: str, pairs: Sequence[Pair], seed: int = 0, task: str = "") -> Predictiveness:
    """Spearman, AUC and kept/rejected precision of one dimension, with n and bootstrap intervals."""
    scored = [p for p in pairs if p.score is not None]
    out = Predictiveness(name, n=len(scored), correct=sum(p.correct for p in scored), task=task)
    out.rho, out.auc = _rho(scored), _auc(scored)
    out.rho_ci = bootstrap(scored, _rho, seed) if out.rho is not None else None
    out.auc_ci = bootstrap(scored, _auc, seed + 1) if out.auc is not None else None
    kept = [p for p in pairs if p.passed is True]
    rejected = [p for p in pairs if p.passed is False]
    out.kept_n, out.rejected_n = len(kept), len(rejected)
    out.kept_precision, out.rejected_precision = share([p.correct for p in kept]), share([p.correct for p in rejected])
    out.kept_ci = bootstrap(kept, _precision, seed + 2) if kept else None
    out.rejected_ci = bootstrap(rejected, _precision, seed + 3) if rejected else None
    out.verdict, out.notes = judge(out)
    if len(scored) > 1 and len({p.score for p in scored}) == 1:  # it cannot rank what it scores alike
        out.verdict = "no verdict (the same score for every label)"
    return out


def judge(p: Predictiveness) -> tuple[str, list[str]]:
    """A verdict in words, from the AUC interval around 0.5 (with too few items in a class, from Spearman's
    around 0, since correctness is graded: field F1, ROUGE-L), and what limits it."""
    notes = []
    if p.n < MIN_ITEMS:
        notes.append(f"n = {p.n} scored items, fewer than {MIN_ITEMS}: too few to conclude")
    smaller = min(p.correct, p.n - p.correct)
    if smaller < MIN_CLASS:
        notes.append(f"only {smaller} {'correct' if p.correct <= p.n - p.correct else 'incorrect'} item(s): "
                     "AUC and precision carry little")
    if p.rho is None and p.auc is None:
        return ("no verdict (constant scores or one class only)" if p.n else "no verdict (nothing scored)"), notes
    if p.n < MIN_ITEMS:
        return "too few items to tell", notes
    by_rho = smaller < MIN_CLASS or p.auc_ci is None
    if not by_rho and p.auc_ci is not None:
        low, high, middle = p.auc_ci[0], p.auc_ci[1], 0.5
    elif p.rho_ci is not None:
        low, high, middle = p.rho_ci[0], p.rho_ci[1], 0.0
    else:
        return "too few items to tell" if notes else "no verdict (no interval)", notes
    said = ("predicts correctness" if low > middle else "prefers wrong labels" if high < middle else
            "no evidence it predicts correctness")
    return (f"{said} (by ρ: too few in a class for AUC)" if by_rho else said), notes


def _fmt(value: float | None, ci: Interval, spec: str = ".2f") -> str:
    if value is None:
        return "–"
    text = format(value, spec)
    return f"{text} [{format(ci[0], spec)}, {format(ci[1], spec)}]" if ci else text


def _pct(value: float | None, n: int, ci: Interval) -> str:
    if value is None:
        return "– (0)"
    interval = f" [{ci[0] * 100:.0f}, {ci[1] * 100:.0f}]" if ci else ""
    return f"{value * 100:.0f}%{interval} ({n})"


COLUMNS = ("task", "dimension", "n (correct)", "Spearman ρ [95% CI]", "AUC [95% CI]", "correct | kept (n)",
           "correct | rejected (n)", "verdict")


def rows(results: Sequence[Predictiveness]) -> list[list[str]]:
    """The table's cells, one row per task and dimension, the aggregate last in each task."""
    return [[r.scope, r.dimension, f"{r.n} ({r.correct})", _fmt(r.rho, r.rho_ci), _fmt(r.auc, r.auc_ci),
             _pct(r.kept_precision, r.kept_n, r.kept_ci), _pct(r.rejected_precision, r.rejected_n, r.rejected_ci),
             r.verdict] for r in results]


def format_table(results: Sequence[Predictiveness]) -> str:
    """The table as aligned text (terminal, eval.txt, README)."""
    cells = [list(COLUMNS), *rows(results)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    notes = [f"{r.scope}, {r.dimension}: {note}" for r in results for note in r.notes]
    return "\n".join([*lines[:1], "  ".join("-" * w for w in widths), *lines[1:], *(f"note: {n}" for n in notes)])

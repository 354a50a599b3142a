"""Run directory + human ratings (JSONL/CSV) → per-dimension machine–human agreement figures."""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialc_runtime.data.jsonl import JsonlError, read_jsonl
from dialc_runtime.report.data import dimension_config, dimension_names, dimension_scores, open_view

if TYPE_CHECKING:
    from rich.table import Table

    from dialc_runtime.report.data import RunView

Scale = tuple[float, float]
ID_FIELD = "id"
MAX_SHOWN = 20  # problems listed in one error before "… and N more"


class CalibrationError(ValueError):
    """The human file or the run cannot be compared; `problems` are `file:line: …` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_SHOWN]
        more = len(problems) - len(shown)
        super().__init__("\n".join(shown + ([f"… and {more} more"] if more else [])))


@dataclass
class HumanRow:
    """One rated record: its id, the line it came from, dimension → human score."""

    id: str
    line: int
    scores: dict[str, float]


@dataclass
class Agreement:
    """Machine vs human on one dimension."""

    dimension: str
    n: int  # records with both a machine score and a human score
    rho: float | None  # Spearman rank correlation (None: fewer than 3 pairs or a constant side)
    p_value: float | None
    agreement: float | None  # share where machine pass/fail == human score >= midpoint
    agreement_n: int  # records with both a machine verdict and a human score
    mean_abs_diff: float | None  # |machine − human| with both on 0..1
    scale: Scale  # the human scale used to normalise
    note: str = ""


@dataclass
class CalibrationResult:
    human_file: str
    records: int  # human rows read
    dimensions: list[Agreement] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # human columns that are no dimension


def _number(value: Any) -> float | None:
    """A rating: int/float or a numeric string; None for empty; ValueError otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _row(where: str, line: int, data: Any, dims: set[str], problems: list[str]) -> HumanRow | None:
    if not isinstance(data, dict):
        problems.append(f"{where}:{line}: error: expected an object with an id, got {data!r:.60}")
        return None
    rid = data.get(ID_FIELD)
    if rid is None or (isinstance(rid, str) and not rid.strip()):
        problems.append(f'{where}:{line}: error: missing "{ID_FIELD}"')
        return None
    scores: dict[str, float] = {}
    for key, value in data.items():
        if key == ID_FIELD or key not in dims:
            continue
        try:
            number = _number(value)
        except (TypeError, ValueError):
            problems.append(f"{where}:{line}: error: {key} = {value!r:.40} is not a number")
            continue
        if number is not None:
            scores[key] = number
    return HumanRow(str(rid).strip(), line, scores)


def _raw_rows(path: Path) -> list[tuple[int, Any]]:
    """(line, parsed row) pairs; JSON syntax errors become rows of None with the error text."""
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines(keepends=True))
        return [(reader.line_num, row) for row in reader]
    return [(number, ValueError(row.reason) if isinstance(row, JsonlError) else row)
            for number, row in read_jsonl(path)]


def read_human(path: Path, dims: set[str]) -> tuple[list[HumanRow], set[str]]:
    """Human rows (JSONL, or CSV by extension) and the columns that name no dimension."""
    where = str(path)
    try:
        raw = _raw_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CalibrationError([f"{where}: error: cannot read: {exc}"]) from exc
    problems: list[str] = []
    rows: list[HumanRow] = []
    columns: set[str] = set()
    seen: dict[str, int] = {}
    for line, data in raw:
        if isinstance(data, ValueError):
            problems.append(f"{where}:{line}: error: {data}")
            continue
        row = _row(where, line, data, dims, problems)
        if row is None:
            continue
        columns |= {k for k in data if k != ID_FIELD and data[k] not in (None, "")}
        if row.id in seen:
            problems.append(f"{where}:{line}: error: id {row.id!r} already rated on line "
                            f"{seen[row.id]}")  # fmt: skip
            continue
        seen[row.id] = line
        rows.append(row)
    if problems:
        raise CalibrationError(problems)
    return rows, columns - dims


def parse_scale(text: str) -> Scale:
    """`--scale 1..5` → (1.0, 5.0); ValueError with a usage message otherwise."""
    lo, sep, hi = text.partition("..")
    try:
        scale = (float(lo), float(hi))
    except ValueError:
        scale = None
    if not sep or scale is None or scale[0] >= scale[1]:
        raise ValueError(f"scale must look like LO..HI with LO < HI (e.g. 1..5), got {text!r}")
    return scale


def human_scale(values: list[float], config: dict[str, Any], given: Scale | None) -> Scale:
    """The human scale: given, else the judge's scale, else 0..1 if it fits, else min..max."""
    if given is not None:
        return given
    scale = config.get("scale")
    if isinstance(scale, list | tuple) and len(scale) == 2:
        return float(scale[0]), float(scale[1])
    if all(0.0 <= v <= 1.0 for v in values):
        return 0.0, 1.0
    return min(values), max(values)


def spearman(machine: list[float], human: list[float]) -> tuple[float | None, float | None]:
    """(rho, p) or (None, None) when it is undefined (too few pairs, or a constant side)."""
    if len(machine) < 3 or len(set(machine)) < 2 or len(set(human)) < 2:
        return None, None
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho, p = spearmanr(machine, human)
    if math.isnan(rho):
        return None, None
    return round(float(rho), 4), (None if math.isnan(p) else round(float(p), 6))


def agree(
    name: str, verdicts: dict[str, dict[str, Any]], human: dict[str, float], scale: Scale
) -> Agreement:
    """Rank correlation, pass/fail agreement and mean absolute difference on one dimension."""
    lo, hi = scale
    width = (hi - lo) or 1.0
    ids = sorted(set(verdicts) & set(human))
    pairs = [(float(verdicts[i]["score"]), human[i]) for i in ids
             if isinstance(verdicts[i].get("score"), int | float)]  # fmt: skip
    rho, p = spearman([m for m, _ in pairs], [h for _, h in pairs])
    diffs = [abs(m - (h - lo) / width) for m, h in pairs]
    midpoint = (lo + hi) / 2
    judged = [i for i in ids if verdicts[i].get("passed") is not None]
    matches = [bool(verdicts[i]["passed"]) == (human[i] >= midpoint) for i in judged]
    notes = [] if rho is not None else ["rank correlation undefined (< 3 pairs or constant)"]
    if len(judged) > 1 and all(verdicts[i]["passed"] for i in judged):
        notes.append("the machine passes every record (no pass mark?)")
    return Agreement(
        dimension=name,
        n=len(pairs),
        rho=rho,
        p_value=p,
        agreement=round(sum(matches) / len(matches), 4) if matches else None,
        agreement_n=len(matches),
        mean_abs_diff=round(sum(diffs) / len(diffs), 4) if diffs else None,
        scale=scale,
        note="; ".join(notes),
    )


def _unknown_ids(view: RunView, rows: list[HumanRow], dims: list[str], where: str) -> list[str]:
    known: set[str] = set()
    for name in dims:
        known |= {str(v.get("id")) for v in dimension_scores(view, name)}
    return [f"{where}:{r.line}: error: record id {r.id!r} not found in the run"
            for r in rows if r.id not in known]  # fmt: skip


def calibrate(run_dir: Path, human_file: Path, scale: Scale | None = None) -> CalibrationResult:
    """Compare human ratings with the run's quality scores, dimension by dimension.

    `scale` (lo, hi) is the human rating scale for every dimension; by default a judge's own scale,
    else 0..1 when every rating fits, else the ratings' min..max.
    """
    with open_view(Path(run_dir)) as view:
        if view is None:
            raise CalibrationError([f"{run_dir}: error: no run results here; run the spec first"])
        names = [n for n in dimension_names(view) if dimension_scores(view, n)]
        if not names:
            raise CalibrationError([f"{run_dir}: error: the run has no quality scores"])
        rows, ignored = read_human(Path(human_file), set(names))
        unknown = _unknown_ids(view, rows, names, str(human_file))
        if unknown:
            raise CalibrationError(unknown)
        result = CalibrationResult(str(human_file), len(rows), ignored=sorted(ignored))
        for name in names:
            human = {r.id: r.scores[name] for r in rows if name in r.scores}
            if not human:
                continue
            verdicts = {str(v.get("id")): v for v in dimension_scores(view, name)}
            used = human_scale(list(human.values()), dimension_config(view, name), scale)
            result.dimensions.append(agree(name, verdicts, human, used))
    if not result.dimensions:
        raise CalibrationError([f"{human_file}: error: no column names a quality dimension "
                                f"(dimensions: {', '.join(names)})"])  # fmt: skip
    return result


def render(result: CalibrationResult) -> Table:
    """The agreement figures as a rich table."""
    from rich.table import Table

    def fmt(value: float | None, spec: str = ".3f") -> str:
        return "–" if value is None else format(value, spec)

    table = Table(title=f"calibration against {result.human_file} ({result.records} rated records)",
                  title_justify="left")  # fmt: skip
    for column in ("dimension", "n", "spearman rho", "p-value", "pass/fail agreement",
                   "mean |diff| (0..1)", "human scale", "note"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("dimension", "note") else "right")
    for a in result.dimensions:
        agreement = f"{fmt(a.agreement, '.1%')} of {a.agreement_n}"
        scale = f"{a.scale[0]:g}..{a.scale[1]:g}"
        table.add_row(a.dimension, str(a.n), fmt(a.rho), fmt(a.p_value, ".3g"), agreement,
                      fmt(a.mean_abs_diff), scale, a.note)  # fmt: skip
    if result.ignored:
        table.caption = f"ignored columns (no such dimension): {', '.join(result.ignored)}"
    return table

"""A dialogue file (JSONL or CSV) → normalised dialogue records; malformed rows quarantined with file:line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dialc.files import regular_file_problem
from dialc.plan import IngestParams
from dialc_runtime.data.csvrows import MAX_ROW_BYTES, CsvRowError, read_csv_rows
from dialc_runtime.data.jsonl import JsonlError, read_jsonl
from dialc_runtime.data.pii import scrub
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.layout import QUARANTINE_FILE
from dialc_runtime.errors import StepFailed

VERSION = "2"  # 2: a bad CSV row spoils only its dialogue (the rows after it are read); hostile JSONL rows quarantined


class BadRow(Exception):
    """One malformed row: the reason is reported with the file and line."""


def run(ctx: StepContext[IngestParams]) -> StepOutput:
    """Two passes over the file: the first checks it (only ids and problems are held), the second emits the
    dialogues one at a time, so nothing is emitted from a file that fails its checks and memory stays flat."""
    p = ctx.params
    path = Path(p.path)
    problem = regular_file_problem(path)
    if problem:
        raise StepFailed(f"source {problem}")
    read, problems = count_dialogues(path, p)
    if problems and p.on_error == "fail":
        shown = "\n  ".join(problems[:10])
        raise StepFailed(f"{len(problems)} malformed row(s) in {path}:\n  {shown}")
    (ctx.out_dir / QUARANTINE_FILE).write_text("".join(f"{line}\n" for line in problems), encoding="utf-8")
    quarantine = ctx.final_dir / QUARANTINE_FILE  # where it is once the attempt ends, as messages name it
    check_yield(read, problems, p, path, quarantine)
    if problems:
        ctx.warn(f"{len(problems)} malformed row(s) quarantined in {quarantine}")
    for message in problems[:5]:
        ctx.warn(message)
    masked: Counter[str] = Counter()
    known = set(p.scenarios)
    unknown: Counter[str] = Counter()
    per_scenario: Counter[str] = Counter()
    turns = 0
    for index, dialogue in enumerate(well_formed(path, p)):
        if p.pii_scrub:
            masked.update(_scrub_dialogue(dialogue))
        if known and dialogue["scenario"] not in known:
            unknown[dialogue["scenario"]] += 1
        per_scenario[dialogue["scenario"]] += 1
        turns += len(dialogue["turns"])
        ctx.emit(f"{index:06d}", dialogue)
    if unknown:
        ctx.warn(f"{sum(unknown.values())} dialogue(s) have scenarios not in the taxonomy: {dict(unknown)}")
    return StepOutput(metrics={"dialogues": read, "quarantined": len(problems),
                               "quarantine_file": str(quarantine),
                               "pii_masked": dict(masked), "per_scenario": dict(sorted(per_scenario.items())),
                               "turns": turns})


def check_yield(read: int, problems: list[str], p: IngestParams, path: Path, quarantine: Path) -> None:
    """Fail when no dialogue was read, or more than `max_quarantine` of the rows were quarantined:
    a field mapping that matches nothing must stop here, not after paid model calls downstream."""
    total = read + len(problems)
    share = len(problems) / total if total else 0.0
    reasons = Counter(message.split(": ", 1)[-1] for message in problems).most_common(3)
    why = "; ".join(f"{n}× {reason}" for reason, n in reasons)
    hint = (f"check the source's field mapping (id, scenario, turns, role, text = field(\"…\")) and roles "
            f"against the file; every quarantined row is in {quarantine}")
    if read == 0:
        seen = f"all {total} rows were quarantined ({why})" if total else "the file has no rows"
        raise StepFailed(f"no dialogue could be read from {path}: {seen}{first_fields(path, p)}; {hint}")
    if share > p.max_quarantine:
        raise StepFailed(f"{len(problems)} of {total} rows ({share:.0%}) quarantined, above max_quarantine = "
                         f"{p.max_quarantine:g} ({why}); {hint}, or raise max_quarantine")


def first_fields(path: Path, p: IngestParams) -> str:
    """", the first row has fields a, b, c" (JSONL), to compare with the mapping; "" when unknown."""
    if p.format != "jsonl":
        return ""
    first = next((obj for _, obj in read_jsonl(path) if isinstance(obj, dict)), None)
    return f"; the first row has fields {', '.join(map(str, first))}" if first else ""


def read_dialogues(path: Path, p: IngestParams) -> tuple[list[dict[str, Any]], list[str]]:
    """All well-formed dialogues, and a 'file:line: reason' message per malformed row."""
    dialogues: list[dict[str, Any]] = []
    problems: list[str] = []
    for item in _checked_rows(path, p):
        if isinstance(item, str):
            problems.append(item)
        else:
            dialogues.append(item)
    return dialogues, problems


def count_dialogues(path: Path, p: IngestParams) -> tuple[int, list[str]]:
    """How many well-formed dialogues the file holds, and a message per malformed row (none is kept)."""
    read = 0
    problems: list[str] = []
    for item in _checked_rows(path, p):
        if isinstance(item, str):
            problems.append(item)
        else:
            read += 1
    return read, problems


def well_formed(path: Path, p: IngestParams) -> Iterator[dict[str, Any]]:
    """The well-formed dialogues in file order (as read_dialogues lists them), streamed."""
    return (item for item in _checked_rows(path, p) if not isinstance(item, str))


def _checked_rows(path: Path, p: IngestParams) -> Iterator[dict[str, Any] | str]:
    """Each well-formed dialogue, or a 'file:line: reason' message for a malformed row or a repeated id."""
    rows = _jsonl_rows(path, p) if p.format == "jsonl" else _csv_rows(path, p)
    seen: set[str] = set()
    for line, item in rows:
        if isinstance(item, BadRow):
            yield f"{path}:{line}: {item}"
        elif item["id"] in seen:
            yield f"{path}:{line}: duplicate dialogue id {item['id']!r}"
        else:
            seen.add(item["id"])
            yield item


def _role_map(p: IngestParams) -> dict[str, str]:
    """raw speaker label (lower-cased) → spec role."""
    return {raw.lower(): role for role, raws in p.roles.items() for raw in raws}


def _jsonl_rows(path: Path, p: IngestParams) -> Iterator[tuple[int, Any]]:
    fields = p.fields.model_dump()
    roles = _role_map(p)
    for line_no, obj in read_jsonl(path):
        if isinstance(obj, JsonlError):
            yield line_no, BadRow(obj.reason)
            continue
        try:
            yield line_no, _dialogue_from_json(obj, fields, roles)
        except BadRow as exc:
            yield line_no, exc


def _dialogue_from_json(obj: Any, fields: dict[str, str], roles: dict[str, str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BadRow("expected a JSON object per line")
    ident = _required_text(obj, fields["id"])
    scenario = _required_text(obj, fields["scenario"])
    turns_raw = obj.get(fields["turns"])
    if not isinstance(turns_raw, list) or not turns_raw:
        raise BadRow(f"field {fields['turns']!r} must be a non-empty list of turns")
    turns = [_turn(t, fields, roles, i) for i, t in enumerate(turns_raw, start=1)]
    meta = {k: v for k, v in obj.items() if k not in (fields["id"], fields["scenario"], fields["turns"])}
    return {"id": ident, "scenario": scenario, "turns": turns, "meta": meta}


def _turn(raw: Any, fields: dict[str, str], roles: dict[str, str], index: int) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise BadRow(f"turn {index} is not an object")
    speaker = raw.get(fields["role"])
    text = raw.get(fields["text"])
    if not isinstance(speaker, str) or speaker.lower() not in roles:
        raise BadRow(f"turn {index}: unknown speaker {speaker!r} (roles: {', '.join(sorted(roles))})")
    if not isinstance(text, str) or not text.strip():
        raise BadRow(f"turn {index}: empty or missing {fields['text']!r}")
    return {"role": roles[speaker.lower()], "text": text.strip()}


def _required_text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise BadRow(f"missing or empty field {key!r}")
    return value.strip()


def _csv_rows(path: Path, p: IngestParams) -> Iterator[tuple[int, Any]]:
    """One turn per row, grouped by dialogue id in file order; a bad row spoils only its dialogue, and the
    rows after it are read (dialc_runtime.data.csvrows: bad bytes, runaway fields and stray quotes)."""
    fields = p.fields.model_dump()
    roles = _role_map(p)
    header: list[str] = []
    grouped: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    spoiled: set[str] = set()

    def check(cells: list[str]) -> str | None:
        try:
            _csv_turn(_csv_row(header, cells), fields, roles) if header else None
        except BadRow as exc:
            return str(exc)
        return None

    for line, cells in read_csv_rows(path, check, MAX_ROW_BYTES):
        if not header:
            problem = _csv_header_problem(cells, fields)
            if problem:
                yield line, BadRow(problem)
                return
            header = list(cells)  # type: ignore[arg-type]  # not an error: checked above
            continue
        if isinstance(cells, CsvRowError):
            if cells.cells:
                spoiled.add(str(_csv_row(header, cells.cells).get(fields["id"]) or "").strip())
            yield line, BadRow(cells.reason)
            continue
        ident, scenario, turn = _csv_turn(_csv_row(header, cells), fields, roles)
        dialogue = grouped.setdefault(ident, {"id": ident, "scenario": scenario, "turns": [], "meta": {}})
        first_line.setdefault(ident, line)
        dialogue["turns"].append(turn)
    for ident, dialogue in grouped.items():
        if ident in spoiled:
            yield first_line[ident], BadRow(f"dialogue {ident!r} dropped: it has malformed turns")
        else:
            yield first_line[ident], dialogue


def _csv_header_problem(cells: list[str] | CsvRowError, fields: dict[str, str]) -> str | None:
    """Why the first record cannot be the header. Its cells are named only when some mapped column is
    among them: the first line of a file that is no dialogue CSV (a .env, a key file) is never echoed."""
    if isinstance(cells, CsvRowError):
        return f"unreadable CSV header: {cells.reason}"
    wanted = [fields[k] for k in ("id", "scenario", "role", "text")]
    missing = [name for name in wanted if name not in cells]
    if not missing:
        return None
    if len(missing) == len(wanted):
        return (f"the CSV header ({len(cells)} columns) names none of the mapped columns {wanted}: is this a "
                "dialogue CSV with a header line?")
    return f"CSV header lacks column(s) {missing}; header is {cells}"


def _csv_row(header: list[str], cells: list[str]) -> dict[str, Any]:
    """A record as csv.DictReader gives it: missing cells are None, extra ones under the key None."""
    row: dict[Any, Any] = {name: (cells[i] if i < len(cells) else None) for i, name in enumerate(header)}
    if len(cells) > len(header):
        row[None] = cells[len(header):]
    return row


def _csv_turn(row: dict[str, Any], fields: dict[str, str], roles: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    if None in row:
        raise BadRow("more cells than header columns")
    ident = _required_text(row, fields["id"])
    scenario = _required_text(row, fields["scenario"])
    turn = _turn(row, fields, roles, 1)
    return ident, scenario, turn


def _scrub_dialogue(dialogue: dict[str, Any]) -> Counter[str]:
    total: Counter[str] = Counter()
    for turn in dialogue["turns"]:
        turn["text"], counts = scrub(turn["text"])
        total.update(counts)
    return total

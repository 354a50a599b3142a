"""A dialogue file (JSONL or CSV) → normalised dialogue records; malformed rows quarantined with file:line."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dialc.plan import IngestParams
from dialc_runtime.data.jsonl import JsonlError, read_jsonl
from dialc_runtime.data.pii import scrub
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.layout import QUARANTINE_FILE
from dialc_runtime.errors import StepFailed

VERSION = "1"
MAX_FIELD = 1 << 24  # csv field size limit (bytes): long turns are fine, a runaway row is not


class BadRow(Exception):
    """One malformed row: the reason is reported with the file and line."""


def run(ctx: StepContext[IngestParams]) -> StepOutput:
    p = ctx.params
    path = Path(p.path)
    if not path.is_file():
        raise StepFailed(f"source file not found: {path}")
    dialogues, problems = read_dialogues(path, p)
    if problems and p.on_error == "fail":
        shown = "\n  ".join(problems[:10])
        raise StepFailed(f"{len(problems)} malformed row(s) in {path}:\n  {shown}")
    quarantine = ctx.out_dir / QUARANTINE_FILE
    quarantine.write_text("".join(f"{line}\n" for line in problems), encoding="utf-8")
    for message in problems[:5]:
        ctx.warn(message)
    masked: Counter[str] = Counter()
    known = set(p.scenarios)
    unknown: Counter[str] = Counter()
    for index, dialogue in enumerate(dialogues):
        if p.pii_scrub:
            masked.update(_scrub_dialogue(dialogue))
        if known and dialogue["scenario"] not in known:
            unknown[dialogue["scenario"]] += 1
        ctx.emit(f"{index:06d}", dialogue)
    if unknown:
        ctx.warn(f"{sum(unknown.values())} dialogue(s) have scenarios not in the taxonomy: {dict(unknown)}")
    per_scenario = Counter(d["scenario"] for d in dialogues)
    return StepOutput(metrics={"dialogues": len(dialogues), "quarantined": len(problems),
                               "pii_masked": dict(masked), "per_scenario": dict(sorted(per_scenario.items())),
                               "turns": sum(len(d["turns"]) for d in dialogues)})


def read_dialogues(path: Path, p: IngestParams) -> tuple[list[dict[str, Any]], list[str]]:
    """All well-formed dialogues, and a 'file:line: reason' message per malformed row."""
    rows = _jsonl_rows(path, p) if p.format == "jsonl" else _csv_rows(path, p)
    dialogues: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for line, item in rows:
        if isinstance(item, BadRow):
            problems.append(f"{path}:{line}: {item}")
        elif item["id"] in seen:
            problems.append(f"{path}:{line}: duplicate dialogue id {item['id']!r}")
        else:
            seen.add(item["id"])
            dialogues.append(item)
    return dialogues, problems


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
    """One turn per row, grouped by dialogue id in file order; a bad row spoils only its dialogue."""
    fields = p.fields.model_dump()
    roles = _role_map(p)
    csv.field_size_limit(MAX_FIELD)
    grouped: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    spoiled: set[str] = set()
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [fields[k] for k in ("id", "scenario", "role", "text")
                       if fields[k] not in (reader.fieldnames or [])]
            if missing:
                yield 1, BadRow(f"CSV header lacks column(s) {missing}; header is {reader.fieldnames}")
                return
            for row in reader:
                line = reader.line_num
                try:
                    ident, scenario, turn = _csv_turn(row, fields, roles)
                except BadRow as exc:
                    spoiled.add(str(row.get(fields["id"]) or ""))
                    yield line, exc
                    continue
                dialogue = grouped.setdefault(ident, {"id": ident, "scenario": scenario, "turns": [], "meta": {}})
                first_line.setdefault(ident, line)
                dialogue["turns"].append(turn)
    except UnicodeDecodeError as exc:
        yield 0, BadRow(f"not valid UTF-8 near byte {exc.start}")
    except csv.Error as exc:
        yield 0, BadRow(f"CSV error: {exc}")
    for ident, dialogue in grouped.items():
        if ident in spoiled:
            yield first_line[ident], BadRow(f"dialogue {ident!r} dropped: it has malformed turns")
        else:
            yield first_line[ident], dialogue


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

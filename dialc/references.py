"""A gold reference file (JSONL: {"id", "answers": {task: answer}}) → answers by dialogue, and their checks.

Shared by the compiler (which refuses a reference that is not a valid answer to its task) and the
evaluate step (which scores against them), so both read the same file the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialc.files import read_text

JSON_TYPES: dict[str, tuple[type, ...]] = {"integer": (int,), "number": (int, float), "string": (str,),
                                           "boolean": (bool,), "array": (list,), "object": (dict,)}


@dataclass(frozen=True)
class GoldTask:
    """A task as the references see it: its name, output constraint and the scenarios it applies to."""

    name: str
    output: dict[str, Any]
    scenarios: list[str] = field(default_factory=list)  # empty = every scenario

    def applies(self, scenario: str) -> bool:
        return not self.scenarios or scenario in self.scenarios


def read_references(path: Path) -> tuple[dict[str, tuple[int, dict[str, Any]]], list[str]]:
    """(dialogue id → (line, answers)), and a 'line N: reason' message per unusable line."""
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    problems: list[str] = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):  # a regular file, bounded
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:
            problems.append(f"line {number}: values nested too deep")
            continue
        ident = str(obj.get("id", "")).strip() if isinstance(obj, dict) else ""
        answers = obj.get("answers") if isinstance(obj, dict) else None
        if not ident or not isinstance(answers, dict):
            problems.append(f'line {number}: expected {{"id": "…", "answers": {{TASK: answer, …}}}}')
        elif ident in found:
            problems.append(f"line {number}: dialogue {ident!r} already has references on line {found[ident][0]}")
        else:
            found[ident] = (number, answers)
    return found, problems


def check_references(path: Path, shown: str, scenarios: dict[str, str], tasks: list[GoldTask],
                     declared: frozenset[str] = frozenset()) -> list[str]:
    """Every problem of a reference file: unreadable lines, dialogues without references, references for
    unknown dialogues or tasks, and answers that are not valid answers to their task. Answers for
    `declared` tasks the test set does not score are ignored (the file may serve several specs)."""
    try:
        found, problems = read_references(path)
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{shown}: cannot read the references ({exc})"]
    problems = [f"{shown}:{p.removeprefix('line ')}" for p in problems]
    by_name = {t.name: t for t in tasks}
    for ident, scenario in scenarios.items():
        if ident not in found:
            problems.append(f"{shown}: dialogue {ident!r} has no references")
            continue
        line, answers = found[ident]
        for task in tasks:
            if task.applies(scenario) and task.name not in answers:
                problems.append(f"{shown}:{line}: dialogue {ident!r} has no answer for task {task.name}")
        for name, answer in answers.items():
            if name in declared and name not in by_name:
                continue
            answered = by_name.get(name)
            why = (f"no task {name!r} is declared" if answered is None
                   else check_answer(answered, answer))
            if why:
                problems.append(f"{shown}:{line}: dialogue {ident!r}, {name}: {why}")
    problems += [f"{shown}:{line}: references for {ident!r}, which is not in the test set"
                 for ident, (line, _) in found.items() if ident not in scenarios]
    return problems


def check_answer(task: GoldTask, answer: Any) -> str | None:
    """Why `answer` is not a valid answer to the task's output constraint, or None."""
    kind = task.output.get("kind")
    if kind == "json":
        return _check_object(task.output["schema"], answer)
    if kind == "choice":
        options = task.output["options"]
        return None if answer in options else f"{answer!r} is not one of {', '.join(options)}"
    if kind == "regex":
        text = str(answer) if isinstance(answer, str | int) and not isinstance(answer, bool) else None
        ok = text is not None and re.fullmatch(task.output["pattern"], text)
        return None if ok else f"{answer!r} does not match /{task.output['pattern']}/"
    if not isinstance(answer, str) or not answer.strip():
        return "expected a non-empty reference text"
    limit = int(task.output.get("max_chars", 0))
    return f"{len(answer)} characters, longer than the task's text(max = {limit})" if limit and len(answer) > limit \
        else None


def _check_object(schema: dict[str, Any], answer: Any) -> str | None:
    if not isinstance(answer, dict):
        return "expected a JSON object with every output field (null where the dialogue does not say)"
    props = schema.get("properties", {})
    missing = [k for k in props if k not in answer]
    if missing:
        return f"missing field(s) {', '.join(missing)} (write null where the dialogue does not say)"
    extra = [k for k in answer if k not in props]
    if extra:
        return f"unknown field(s) {', '.join(extra)} (fields: {', '.join(props)})"
    for name, value in answer.items():
        why = check_value(props[name], value)
        if why:
            return f"field {name}: {why}"
    return None


def check_value(schema: dict[str, Any], value: Any) -> str | None:
    """Why `value` does not fit one output-schema field (type, null, enum, bounds, length), or None."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if value is None:
        return None if "null" in types else "null, but the field is not optional (?)"
    if "enum" in schema and value not in schema["enum"]:
        return f"{value!r} is not one of {', '.join(str(v) for v in schema['enum'] if v is not None)}"
    fits = [t for t in types if t in JSON_TYPES and isinstance(value, JSON_TYPES[t])
            and not (isinstance(value, bool) and t in ("integer", "number"))]
    if not fits:
        return f"{value!r} is not of type {' or '.join(t for t in types if t != 'null')}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{value} is outside [{low}..{high}]"
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        return f"{len(value)} characters, longer than (max {schema['maxLength']})"
    return None

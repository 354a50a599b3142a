"""Evaluation suite files (built-in probe jsonl, GSM8K jsonl, CMMLU csv) → scorable items."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dialc_runtime.data.jsonl import JsonlError, read_jsonl
from dialc_runtime.evaluate.suites.cmmlu_subjects import cmmlu_description

LETTERS = "ABCD"
FORMATS = ("probe", "gsm8k", "cmmlu")  # file formats read_suite knows
BUILTIN_DIR = Path(__file__).resolve().parent  # builtin:<name> → <name with _>.jsonl here


class SuiteFormatError(ValueError):
    """A malformed suite file; the message starts with `file:line:`."""


@dataclass(frozen=True)
class ChoiceItem:
    """A multiple-choice question, scored by the log-likelihood of each option after `context`."""

    id: str
    question: str
    choices: tuple[str, ...]  # the option texts, as shown to people
    answer: int  # 0-based index of the right option
    context: str  # the prompt the options continue
    options: tuple[str, ...]  # the continuations scored (option text or letter)
    category: str = ""


@dataclass(frozen=True)
class GenItem:
    """A question answered by generation; scored by exact match of the final answer."""

    id: str
    question: str
    answer: str  # the final answer (GSM8K: the number after ####, commas removed)
    solution: str = ""  # the worked solution, used as a few-shot demonstration
    category: str = ""


@dataclass(frozen=True)
class Suite:
    """A named list of items of one kind."""

    name: str
    kind: Literal["choice", "generate"]
    items: list[Any]


def _fail(path: Path, line: int, message: str) -> SuiteFormatError:
    return SuiteFormatError(f"{path}:{line}: {message}")


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file."""
    for number, row in read_jsonl(path):
        if isinstance(row, JsonlError):
            raise SuiteFormatError(str(row))
        if not isinstance(row, dict):
            raise _fail(path, number, "expected a JSON object")
        yield number, row


def mc_context(question: str) -> str:
    """The lm-evaluation-harness style prompt for option-text scoring."""
    return f"Question: {question.strip()}\nAnswer:"


def read_probe(path: Path, limit: int | None = None) -> list[ChoiceItem]:
    """The built-in probe format: {id, category, question, choices:[4], answer: index, target}."""
    items = []
    for number, row in _jsonl(path):
        choices, answer = row.get("choices"), row.get("answer")
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            raise _fail(path, number, "missing or empty 'question'")
        if not isinstance(choices, list) or len(choices) < 2:
            raise _fail(path, number, "'choices' must be a list of at least 2 strings")
        if not all(isinstance(c, str) for c in choices):
            raise _fail(path, number, "'choices' must be a list of strings")
        if type(answer) is not int or not 0 <= answer < len(choices):
            raise _fail(path, number, f"'answer' must be an index in 0..{len(choices) - 1}")
        items.append(
            ChoiceItem(
                id=str(row.get("id", f"{path.stem}/{number}")),
                question=row["question"],
                choices=tuple(choices),
                answer=answer,
                context=mc_context(row["question"]),
                options=tuple(f" {c.strip()}" for c in choices),
                category=str(row.get("category", "")),
            )
        )
    return items[:limit]


def read_probe_generate(path: Path, limit: int | None = None) -> list[GenItem]:
    """The probe as a generation suite: exact match of its short `target` answer."""
    items = []
    for item, (number, row) in zip(read_probe(path, limit), _jsonl(path), strict=False):
        target = row.get("target", item.choices[item.answer])
        if not isinstance(target, str) or not target.strip():
            raise _fail(path, number, "'target' must be a non-empty string")
        items.append(GenItem(item.id, item.question, target.strip(), category=item.category))
    return items


GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$")


def read_gsm8k(path: Path, limit: int | None = None) -> list[GenItem]:
    """GSM8K jsonl: {question, answer} where the answer ends with `#### <number>`."""
    items = []
    for number, row in _jsonl(path):
        question, solution = row.get("question"), row.get("answer")
        if not isinstance(question, str) or not isinstance(solution, str):
            raise _fail(path, number, "expected string fields 'question' and 'answer'")
        final = GSM8K_FINAL.search(solution)
        if final is None:
            raise _fail(path, number, "'answer' has no final '#### <number>' line")
        items.append(
            GenItem(
                id=f"gsm8k/{number}",
                question=question,
                answer=final.group(1).replace(",", "").strip(),
                solution=solution,
            )
        )
        if limit is not None and len(items) >= limit:
            break
    return items


def cmmlu_context(question: str, choices: list[str], subject: str = "") -> str:
    """lm-evaluation-harness's 0-shot CMMLU prompt: the subject's instruction, the question, lettered
    options, then 答案： (the options " A" … " D" continue it)."""
    lines = [question.strip()] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)]
    return cmmlu_description(subject) + "\n".join(lines) + "\n答案："


def read_cmmlu_file(path: Path, subject: str) -> list[ChoiceItem]:
    """One CMMLU subject file: header `,Question,A,B,C,D,Answer`, answer a letter."""
    items = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[1:]] != ["Question", *LETTERS, "Answer"]:
            raise _fail(path, 1, "expected the header ',Question,A,B,C,D,Answer'")
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != 7:
                raise _fail(path, line, f"expected 7 columns, found {len(row)}")
            answer = row[6].strip().upper()
            if answer not in LETTERS or len(answer) != 1:
                raise _fail(path, line, f"answer must be one of A, B, C, D, found {row[6]!r}")
            choices = row[2:6]
            items.append(
                ChoiceItem(
                    id=f"cmmlu/{subject}/{row[0].strip() or line}",
                    question=row[1],
                    choices=tuple(choices),
                    answer=LETTERS.index(answer),
                    context=cmmlu_context(row[1], choices, subject),
                    options=tuple(f" {letter}" for letter in LETTERS),  # lm-eval's target delimiter " "
                    category=subject,
                )
            )
    return items


def read_cmmlu(path: Path, subjects: list[str] | None = None, limit: int | None = None) -> list[ChoiceItem]:
    """CMMLU from one csv or a directory of `<subject>.csv`; `limit` takes items round-robin over
    subjects (sorted by name), so a small limit still spans the subjects."""
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if subjects is not None:
        unknown = set(subjects) - {f.stem for f in files}
        if unknown:
            raise SuiteFormatError(f"{path}: no CMMLU subject file for {sorted(unknown)}")
        files = [f for f in files if f.stem in subjects]
    if not files:
        raise SuiteFormatError(f"{path}: no .csv files")
    per_subject = [read_cmmlu_file(f, f.stem) for f in files]
    items: list[ChoiceItem] = []
    for rank in range(max(len(s) for s in per_subject)):
        items += [s[rank] for s in per_subject if rank < len(s)]
    return items[:limit]


def resolve_suite(name: str) -> Path:
    """`builtin:general-probe` → the packaged jsonl; anything else is a path."""
    if name.startswith("builtin:"):
        path = BUILTIN_DIR / (name.removeprefix("builtin:").replace("-", "_") + ".jsonl")
        if not path.is_file():
            raise SuiteFormatError(f"unknown built-in suite {name!r} (no {path.name})")
        return path
    path = Path(name)
    if not path.exists():
        raise SuiteFormatError(f"suite file not found: {path}")
    return path


def sniff_format(path: Path) -> str:
    """probe, gsm8k or cmmlu, from the path and the first row."""
    if path.is_dir() or path.suffix == ".csv":
        return "cmmlu"
    for _, row in _jsonl(path):
        return "probe" if "choices" in row else "gsm8k"
    raise SuiteFormatError(f"{path}: empty suite file")


def read_suite(
    name: str,
    kind: str | None = None,
    limit: int | None = None,
    subjects: list[str] | None = None,
) -> Suite:
    """A suite by name or path. `kind` is the scoring (choice/generate; default: the format's
    usual one) or the expected format (probe/gsm8k/cmmlu), checked against the file."""
    path = resolve_suite(name)
    fmt = sniff_format(path)
    if kind in FORMATS:
        if kind != fmt:
            raise SuiteFormatError(f"{name}: expected a {kind} suite, the file looks like {fmt}")
        kind = None
    kind = kind or ("generate" if fmt == "gsm8k" else "choice")
    if kind == "choice" and fmt == "probe":
        return Suite(name, "choice", read_probe(path, limit))
    if kind == "generate" and fmt == "probe":
        return Suite(name, "generate", read_probe_generate(path, limit))
    if kind == "generate" and fmt == "gsm8k":
        return Suite(name, "generate", read_gsm8k(path, limit))
    if kind == "choice" and fmt == "cmmlu":
        return Suite(name, "choice", read_cmmlu(path, subjects, limit))
    raise SuiteFormatError(f"{name}: a {fmt} suite cannot be scored as {kind!r}")

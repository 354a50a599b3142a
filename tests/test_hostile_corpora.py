"""Issue 14: hostile dialogue files → every bad row quarantined with its own line, no good row lost."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pipeline_kit import DIALOGUES, run, write_project

from dialc_runtime.data.jsonl import JsonlError, read_jsonl
from dialc_runtime.engine.layout import RunLayout

CSV_SPEC_SOURCE = 'source dialogues {{ path = "dialogues.jsonl"  roles = [agent, customer]  pii_scrub = true }}'
REPO = Path(__file__).resolve().parent.parent


def ingest(root: Path, data: bytes, name: str = "dialogues.jsonl", extra: str = "max_quarantine = 0.5") -> object:
    """Run the kit's ingest step on `data` (JSONL, or CSV when `name` ends in .csv)."""
    spec = write_project(root)
    text = spec.read_text()
    if name != "dialogues.jsonl":
        text = text.replace('path = "dialogues.jsonl"', f'path = "{name}"')
    spec.write_text(text.replace("pii_scrub = true", f"pii_scrub = true  {extra}"))
    (root / name).write_bytes(data)
    return run(spec, root / "run", select=["ingest.dialogues"]).step("ingest.dialogues")


def quarantine(root: Path, step: object) -> list[str]:
    return RunLayout(root / "run").quarantine(step.key or "").read_text().splitlines()  # type: ignore[attr-defined]


def jsonl(dialogues: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in dialogues).encode()


def test_a_jsonl_corpus_with_a_byte_order_mark_keeps_its_first_dialogue(tmp_path: Path) -> None:
    step = ingest(tmp_path, b"\xef\xbb\xbf" + jsonl(DIALOGUES).replace(b"\n", b"\r\n"))
    assert step.status == "ok" and step.metrics["dialogues"] == 12 and step.metrics["quarantined"] == 0


def test_deep_nesting_and_lone_surrogates_are_quarantined_rows(tmp_path: Path) -> None:
    deep = b'{"id": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    lone = b'{"id": "lone", "scenario": "rental", "turns": [{"role": "agent", "text": "a \\ud800 b"}]}\n'
    pair = b'{"id": "pair", "scenario": "rental", "turns": [{"role": "agent", "text": "ok \\ud83d\\ude00"}]}\n'
    rows = jsonl(DIALOGUES[:5]) + deep + lone + pair + jsonl(DIALOGUES[5:])
    step = ingest(tmp_path, rows)
    assert step.status == "ok", step.message
    assert step.metrics["dialogues"] == 13 and step.metrics["quarantined"] == 2
    lines = quarantine(tmp_path, step)
    assert any(":6: " in line and "nested deeper than" in line for line in lines), lines
    assert any(":7: " in line and "lone surrogate" in line for line in lines), lines


def test_the_reader_bounds_a_line_and_goes_on(tmp_path: Path) -> None:
    from dialc_runtime.data import jsonl as module

    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": "' + b"x" * 5000 + b'"}\n{"c": 3}\n')
    limit, module.MAX_LINE_BYTES = module.MAX_LINE_BYTES, 1000
    try:
        rows = list(read_jsonl(path))
    finally:
        module.MAX_LINE_BYTES = limit
    assert rows[0] == (1, {"a": 1}) and rows[2] == (3, {"c": 3})
    assert isinstance(rows[1][1], JsonlError) and "longer than 1000 bytes" in rows[1][1].reason


CSV_SOURCE = """source dialogues {
  path = "chats.csv"  format = csv  id = field("conversation_id")  scenario = field("topic")
  role = field("speaker")  text = field("message")  roles = {agent: ["Support"], customer: ["Customer"]}
  max_quarantine = 0.5
}"""


def csv_project(root: Path, data: bytes) -> Path:
    """The kit's pipeline reading a support-style CSV (chats.csv) with the support corpus's columns."""
    spec = write_project(root)
    lines = spec.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("source dialogues"))
    text = "\n".join([*lines[:start], CSV_SOURCE, *lines[start + 1:]]).replace("rental", "refund")
    spec.write_text(text.replace("purchase", "shipping"))
    (root / "chats.csv").write_bytes(data)
    return spec


def ingest_csv(root: Path, data: bytes) -> object:
    return run(csv_project(root, data), root / "run", select=["ingest.dialogues"]).step("ingest.dialogues")


def support_rows() -> tuple[bytes, list[bytes]]:
    """The shipped support corpus: its header line and its row lines (each row is one line there)."""
    header, *rows = (REPO / "data/support/chats.csv").read_bytes().splitlines(keepends=True)
    return header, rows


def test_one_bad_byte_in_the_support_corpus_loses_one_dialogue_not_all(tmp_path: Path) -> None:
    """Issue 14: one bad byte a third of the way into the 32-conversation corpus gave 0 dialogues."""
    header, rows = support_rows()
    k = len(rows) // 3
    bad = rows[k].replace(b",", b",\xff", 3)  # a non-UTF-8 byte inside the message
    step = ingest_csv(tmp_path, header + b"".join(rows[:k]) + bad + b"".join(rows[k + 1:]))
    assert step.status == "ok", step.message
    assert step.metrics["dialogues"] == 31, step.metrics
    lines = quarantine(tmp_path, step)
    assert any(f"chats.csv:{k + 2}: not valid UTF-8" in line for line in lines), lines


def test_a_field_over_the_size_limit_is_one_bad_row(tmp_path: Path, monkeypatch: object) -> None:
    """Issue 14: a field over the csv module's limit in row k of 2,000 silently ended the reading."""
    from dialc_runtime.steps import ingest as step_module

    monkeypatch.setattr(step_module, "MAX_ROW_BYTES", 10_000)  # type: ignore[attr-defined]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["conversation_id", "topic", "speaker", "message"])
    for i in range(1000):
        writer.writerow([f"C{i:04d}", "refund", "Customer", f"where is my refund {i}?"])
        writer.writerow([f"C{i:04d}", "refund", "Support", "x" * 20_000 if i == 300 else f"it is on its way {i}"])
    step = ingest_csv(tmp_path, out.getvalue().encode())
    assert step.status == "ok", step.message
    assert step.metrics["dialogues"] == 999
    lines = quarantine(tmp_path, step)
    assert any("chats.csv:603: " in line and "longer than 10000 bytes" in line for line in lines), lines


def test_a_stray_quote_spoils_its_own_row_only(tmp_path: Path) -> None:
    """A quote opened and never closed swallowed the next lines into one field: turns vanished silently."""
    header, rows = support_rows()
    stray = b'C-X,refund,Customer,"unterminated\n'
    step = ingest_csv(tmp_path, header + b"".join(rows[:10]) + stray + b"".join(rows[10:]))
    assert step.status == "ok", step.message
    assert step.metrics["dialogues"] == 32 and step.metrics["turns"] == len(rows), step.metrics
    lines = quarantine(tmp_path, step)
    assert len(lines) == 1 and "chats.csv:12: " in lines[0], lines


# -- review files: a directory, or bytes that are not UTF-8, are a step failure with a message --------

def review_step(tmp_path: Path, path: Path) -> object:
    from runtime_fakes import MemoryContext

    from dialc_runtime.steps import review

    task = {"id": "t1~deepen", "category": "summary", "instruction": "Summarise it, deeper.", "origin": "evolved",
            "chain": [{"operator": "deepen", "parent": "t1"}]}
    ctx = MemoryContext("review.evolved", {"path": str(path)}, {"evolve.evolved": [task]}, out_dir=tmp_path / "o")
    ctx.step = ctx.step.model_copy(update={"inputs": {"candidates": ["evolve.evolved"]}})  # review's own role
    return review.run(ctx)  # type: ignore[arg-type]


def test_a_review_file_that_is_a_directory_or_not_utf8_fails_with_a_message(tmp_path: Path) -> None:
    """Issue 14: both ended as internal errors (IsADirectoryError, UnicodeEncodeError)."""
    import pytest

    from dialc_runtime.errors import StepFailed

    folder = tmp_path / "review.jsonl"
    folder.mkdir()
    with pytest.raises(StepFailed, match="review file .*is a directory"):
        review_step(tmp_path, folder)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"id": "t1~deepen", "decision": "accept", "instruction": "r\xe9sum\xe9"}\n'.encode("latin-1"))
    with pytest.raises(StepFailed, match=r"latin\.jsonl:1: not valid UTF-8"):
        review_step(tmp_path, latin)
    lone = tmp_path / "lone.jsonl"
    lone.write_text('{"id": "t1~deepen", "decision": "pending", "instruction": "a \\ud800 b"}\n')
    with pytest.raises(StepFailed, match=r"lone\.jsonl:1: .*lone surrogate"):
        review_step(tmp_path, lone)
    under_a_file = tmp_path / "latin.jsonl" / "review.jsonl"
    with pytest.raises(StepFailed, match="review file"):
        review_step(tmp_path, under_a_file)

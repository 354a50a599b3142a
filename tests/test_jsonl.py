"""The one JSON-lines reader: values by line number, bad lines as errors naming file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialc_runtime.data.jsonl import JsonlError, read_jsonl
from dialc_runtime.data.review import ReviewFileError, read_review
from dialc_runtime.evaluate.suites.readers import SuiteFormatError, read_probe


def test_values_by_line_with_bom_crlf_blank_lines_and_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\n   \n["x\xe2\x80\xa8y"]\n7')  # U+2028 inside a string
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, ["x\u2028y"]), (5, 7)]


def test_bad_lines_come_back_as_errors_in_place(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": \n\xff\xfe\n{"b": 2}\n')
    rows = list(read_jsonl(path))
    assert [n for n, _ in rows] == [1, 2, 3, 4] and rows[3][1] == {"b": 2}
    bad_json, bad_bytes = rows[1][1], rows[2][1]
    assert isinstance(bad_json, JsonlError) and isinstance(bad_bytes, JsonlError)
    assert str(bad_json) == f"{path}:2: invalid JSON: Expecting value (column 7)"
    assert (bad_json.line, bad_json.column) == (2, 7)
    assert str(bad_bytes) == f"{path}:3: not valid UTF-8 at byte 1"


def test_callers_keep_their_policy_and_the_location(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "decision": "accept", "instruction": "x"}\n{oops\n', encoding="utf-8")
    with pytest.raises(ReviewFileError, match=r"c\.jsonl:2: invalid JSON"):
        read_review(path)  # a review file must be whole: fail
    path.write_text('\n{oops\n', encoding="utf-8")
    with pytest.raises(SuiteFormatError, match=r"c\.jsonl:2: invalid JSON"):
        read_probe(path)


def test_a_line_cut_short_reports_the_column_where_it_ends(tmp_path: Path) -> None:
    """Issue 9: a line cut inside a string reported where the string starts (or, before the reader
    stripped line ends, column 1 of the next line) instead of where the line stops."""
    line = json.dumps({"id": "d1", "scenario": "cards", "turns": [{"role": "agent", "text": "x" * 80}]})[:134]
    path = tmp_path / "cut.jsonl"
    path.write_text(line + "\r\n" + '{"id": "d2"}\n', encoding="utf-8")
    (number, error), (_, ok) = list(read_jsonl(path))
    assert isinstance(error, JsonlError) and (number, error.column) == (1, 135), error
    assert "ends inside a string that starts at column 71" in error.reason
    assert ok == {"id": "d2"}

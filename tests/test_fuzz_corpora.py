"""Random hostile corpora (JSONL, CSV) → ingest: each bad row quarantined at its line, no good row lost."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialc.plan import FieldMapping, IngestParams
from dialc_runtime.data import csvrows, jsonl
from dialc_runtime.steps import ingest
from dialc_runtime.steps.ingest import read_dialogues

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMIT = 4096  # bytes per row/line during the test (the real bound is 16 MiB): huge fields stay cheap
ROLES = {"agent": ["agent"], "customer": ["customer"]}

# one bad row: (kind, payload maker taking a unique number)
BAD_KINDS = ("bytes", "latin1", "huge", "deep", "surrogate", "truncated", "not_object", "bad_speaker")
junk = st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" "))
texts = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=30).filter(str.strip)
goods = st.lists(texts, min_size=1, max_size=12)
bads = st.lists(st.tuples(st.sampled_from(BAD_KINDS), junk), max_size=8)


@contextmanager
def small_limits() -> Iterator[None]:
    saved = csvrows.MAX_ROW_BYTES, ingest.MAX_ROW_BYTES, jsonl.MAX_LINE_BYTES
    csvrows.MAX_ROW_BYTES = ingest.MAX_ROW_BYTES = jsonl.MAX_LINE_BYTES = LIMIT
    try:
        yield
    finally:
        csvrows.MAX_ROW_BYTES, ingest.MAX_ROW_BYTES, jsonl.MAX_LINE_BYTES = saved


def params(path: Path, fmt: str) -> IngestParams:
    return IngestParams(path=str(path), format=fmt, fields=FieldMapping(), roles=ROLES)  # type: ignore[arg-type]


def interleave(good: list[bytes], bad: list[bytes], seed: int) -> tuple[list[bytes], set[int]]:
    """Lines in a seeded shuffled order, and the 1-based line numbers of the bad ones (header not counted)."""
    import random

    tagged = [(False, g) for g in good] + [(True, b) for b in bad]
    random.Random(seed).shuffle(tagged)
    return [line for _, line in tagged], {i for i, (is_bad, _) in enumerate(tagged, start=1) if is_bad}


# -- JSONL --------------------------------------------------------------------------------------------
def good_jsonl(i: int, text: str) -> bytes:
    row = {"id": f"g{i}", "scenario": "s", "turns": [{"role": "agent", "text": text}]}
    return json.dumps(row, ensure_ascii=i % 2 == 0).encode() + b"\n"


def bad_jsonl(i: int, kind: str, noise: bytes) -> bytes:
    row = {"id": f"b{i}", "scenario": "s", "turns": [{"role": "agent", "text": "x"}]}
    made = {
        "bytes": noise + b"\xff",
        "latin1": json.dumps({**row, "turns": [{"role": "agent", "text": "r\xe9sum\xe9"}]}, ensure_ascii=False)
        .encode("latin-1"),
        "huge": json.dumps({**row, "turns": [{"role": "agent", "text": "x" * (LIMIT + 10)}]}).encode(),
        "deep": b'{"id": "b%d", "x": ' % i + b"[" * 5000 + b"]" * 5000 + b"}",
        "surrogate": json.dumps(row).replace('"x"', '"\\ud800"').encode(),
        "truncated": json.dumps(row).encode()[:-7],
        "not_object": b"[1, 2, 3]",
        "bad_speaker": json.dumps({**row, "turns": [{"role": "nobody", "text": "x"}]}).encode(),
    }[kind]
    return made + b"\n"


@FUZZ
@given(goods, bads, st.integers(0, 10**6), st.booleans())
def test_hostile_jsonl(tmp_path_factory: pytest.TempPathFactory, good: list[str], bad: list[tuple[str, bytes]],
                       seed: int, bom: bool) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "c.jsonl"
    lines, bad_lines = interleave([good_jsonl(i, t) for i, t in enumerate(good)],
                                  [bad_jsonl(i, kind, noise) for i, (kind, noise) in enumerate(bad)], seed)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"".join(lines))
    with small_limits():
        dialogues, problems = read_dialogues(path, params(path, "jsonl"))
    assert sorted(d["id"] for d in dialogues) == sorted(f"g{i}" for i in range(len(good)))  # no good row lost
    assert [d["turns"][0]["text"] for d in sorted(dialogues, key=lambda d: int(d["id"][1:]))] == \
        [t.strip() for t in good]
    assert {int(p.split(":")[1]) for p in problems} == bad_lines, problems  # each bad row, at its own line


# -- CSV ---------------------------------------------------------------------------------------------
HEADER = b"id,scenario,role,text\n"


def good_csv(i: int, text: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([f"g{i}", "s", "customer", text.replace("\n", " ")])
    return out.getvalue().encode()


def bad_csv(i: int, kind: str, noise: bytes) -> bytes:
    prefix = b"b%d,s,nobody," % i  # a bad row never names a known speaker, whatever its quotes swallow
    made = {
        "bytes": prefix + noise,
        "latin1": b"b%d,s,agent,r\xe9sum\xe9" % i,
        "huge": b"b%d,s,agent," % i + b"x" * (LIMIT + 10),
        "deep": prefix + b"[" * 100,
        "surrogate": b"b%d,s,agent,\xed\xa0\x80" % i,  # a surrogate encoded in UTF-8: not valid UTF-8
        "truncated": b"b%d,s" % i,
        "not_object": b"b%d,s,agent,x,extra,cells" % i,
        "bad_speaker": prefix + b"hello",
    }[kind]
    return made + b"\n"


@FUZZ
@given(goods, bads, st.integers(0, 10**6), st.booleans())
def test_hostile_csv(tmp_path_factory: pytest.TempPathFactory, good: list[str], bad: list[tuple[str, bytes]],
                     seed: int, bom: bool) -> None:
    path = tmp_path_factory.mktemp("csv") / "c.csv"
    lines, bad_lines = interleave([good_csv(i, t) for i, t in enumerate(good)],
                                  [bad_csv(i, kind, noise) for i, (kind, noise) in enumerate(bad)], seed)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + HEADER + b"".join(lines))
    with small_limits():
        dialogues, problems = read_dialogues(path, params(path, "csv"))
    assert sorted(d["id"] for d in dialogues) == sorted(f"g{i}" for i in range(len(good)))  # no good row lost
    rows = {int(p.split(":")[1]) for p in problems if "dropped: it has malformed turns" not in p}
    assert rows == {n + 1 for n in bad_lines}, problems  # each bad row at its own line (the header is line 1)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "gb18030", "latin-1"])
def test_a_corpus_in_another_encoding_is_refused_row_by_row(tmp_path: Path, encoding: str) -> None:
    """A whole file in another encoding: every row quarantined with a reason, never a traceback."""
    row = {"id": "d1", "scenario": "s", "turns": [{"role": "agent", "text": "你好, café"}]}
    path = tmp_path / "c.jsonl"
    path.write_bytes((json.dumps(row, ensure_ascii=False) + "\n").encode(encoding, errors="replace") * 3)
    dialogues, problems = read_dialogues(path, params(path, "jsonl"))
    assert len(dialogues) + len(problems) >= 1 and all(":" in p for p in problems)

"""The lean store: records that refer to their input record, batched commits, resume keys, canonical JSON."""

from __future__ import annotations

import json
import random
import sqlite3
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from runtime_fakes import make_plan

from dialc_runtime.engine.canonical import load_record, record_json
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.registry import DictRegistry
from dialc_runtime.engine.results import load_results
from dialc_runtime.engine.store import SCHEMA_VERSION, ZSTD_MAGIC, Store, find_record, unpack
from dialc_runtime.errors import StoreDamaged

N = 1200  # more than a batch (engine/batches.py) and a page of the store


def _source(ctx: StepContext) -> StepOutput:
    for i in range(N):
        ctx.emit(f"{i:05d}", {"id": f"p{i}", "prompt": f"a long prompt {i} " * 20, "n": i})
    return StepOutput()


def _extend(ctx: StepContext) -> StepOutput:
    (src,) = ctx.step.input_ids
    for key, record in ctx.items(src):
        if key not in ctx.done:
            ctx.emit(key, {"answer": f"answer {record['n']}", "n": record["n"] * 2}, base=(src, key))
    return StepOutput(metrics={"resumed": len(ctx.done), "seen": sum(1 for _ in ctx.done.values())})


def _read(ctx: StepContext) -> StepOutput:
    (src,) = ctx.step.input_ids
    rows = list(ctx.records(src))
    sample = ctx.lookup(src, ["00003", "nope"])
    return StepOutput(metrics={"rows": len(rows), "first": rows[0], "looked_up": sample})


def _registry(**extra: Any) -> DictRegistry:
    kinds = {"src": _source, "ext": _extend, "read": _read, **extra}
    return DictRegistry({k: SimpleNamespace(VERSION="1", run=fn) for k, fn in kinds.items()})


def _plan() -> Any:
    return make_plan([("src.a", {}, []), ("ext.b", {}, ["src.a"]), ("read.c", {}, ["ext.b"])])


def _raw(run_dir: Path, step_id: str) -> list[str]:
    with sqlite3.connect(RunLayout(run_dir).store) as db:
        return [r[0] for r in db.execute("SELECT data FROM records WHERE step_id = ? ORDER BY rkey", (step_id,))]


def test_a_derived_record_is_stored_as_a_reference_and_read_whole(tmp_path: Path) -> None:
    res = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    assert res.ok, [s.message for s in res.steps]
    stored = json.loads(_raw(tmp_path, "ext.b")[3])
    assert stored == {"@": ["src.a", "00003"], "answer": "answer 3", "n": 6}  # no copy of the prompt
    read = res.step("read.c").metrics
    whole = {"id": "p0", "prompt": "a long prompt 0 " * 20, "n": 0, "answer": "answer 0"}
    assert read["rows"] == N and read["first"] == whole  # own fields win over the base's
    assert read["looked_up"]["00003"]["prompt"].startswith("a long prompt 3 ")
    assert set(read["looked_up"]) == {"00003"}
    assert find_record(tmp_path, "ext.b:00005")[1]["prompt"].startswith("a long prompt 5 ")


def test_a_rerun_reuses_the_lean_output_and_its_digest_verifies(tmp_path: Path) -> None:
    execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    again = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    assert [s.status for s in again.steps] == ["cached"] * 3


def test_a_reference_to_a_record_the_store_lost_is_reported_not_guessed(tmp_path: Path) -> None:
    res = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        db.execute("DELETE FROM records WHERE step_id = 'src.a' AND rkey = '00002'")
    with Store(tmp_path) as store, pytest.raises(StoreDamaged, match=r"src.a:00002"):
        list(store.records(res.step("ext.b").key or ""))


def test_a_crashed_attempt_keeps_what_it_emitted_and_resumes_from_its_keys(tmp_path: Path) -> None:
    def crash(ctx: StepContext) -> StepOutput:
        (src,) = ctx.step.input_ids
        for i, (key, _) in enumerate(ctx.items(src)):
            if i == 700:
                raise RuntimeError("simulated crash")
            ctx.emit(key, {"answer": f"answer {i}", "n": 2 * i}, base=(src, key))
        return StepOutput()

    first = execute(_plan(), tmp_path, registry=_registry(ext=crash), quiet=True)
    assert first.step("ext.b").status == "failed" and first.step("ext.b").records == 700
    second = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    assert second.step("ext.b").metrics == {"resumed": 700, "seen": 700}  # done: keys, records on demand
    fresh = execute(_plan(), tmp_path / "fresh", registry=_registry(), quiet=True)
    assert _raw(tmp_path, "ext.b") == _raw(tmp_path / "fresh", "ext.b")
    assert load_results(RunLayout(tmp_path).results).step("read.c").metrics == fresh.step("read.c").metrics


@pytest.mark.parametrize("record", [
    {"b": [1, 2.5, None, True], "a": {"é": "中文", "z": -0.0}},
    {"x": 0.1 + 0.2, "y": 1e16, "n": 12345678901234567, "s": "tab\tquote\"\u2028"},
    ["list", {"k": 1}, 3],
])
def test_canonical_json_is_what_json_dumps_gives(record: Any) -> None:
    assert record_json(record) == json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert load_record(record_json(record)) == record


def test_canonical_json_falls_back_where_orjson_cannot_encode() -> None:
    assert record_json({"big": 2**70}) == '{"big":1180591620717411303424}'
    assert load_record('{"x":NaN}')["x"] != load_record('{"x":NaN}')["x"]  # older stores may hold NaN


def test_the_disk_lsh_finds_the_candidates_datasketch_finds() -> None:
    from datasketch import MinHash, MinHashLSH

    from dialc_runtime.quality.dedup import lsh_params, sketch_template
    from dialc_runtime.quality.minhash_index import DiskIndex

    rng = random.Random(4)
    words = [f"w{i}" for i in range(30)]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(400)]
    perms, scheme = sketch_template()
    params = lsh_params(0.6)
    reference = MinHashLSH(num_perm=128, params=params)
    with DiskIndex(*params) as index:
        for n, text in enumerate(texts):
            sketch = MinHash(num_perm=128, seed=1, permutations=perms, scheme=scheme)
            sketch.update_batch([w.encode() for w in set(text.split())])
            digests = index.band_digests("", sketch.hashvalues)
            found = [int(i) for i, _ in index.candidates(digests)]
            assert found == sorted(int(k) for k in reference.query(sketch))
            index.insert(n, str(n), text, f"fp{n}", digests)
            reference.insert(str(n), sketch)


def test_a_rebuilt_store_keeps_the_references(tmp_path: Path) -> None:
    from dialc_runtime.engine.rebuild import rebuild_store

    res = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    assert "3 completed step output(s) verified and kept" in rebuild_store(tmp_path).summary()
    with Store(tmp_path) as store:
        first = next(store.records(res.step("ext.b").key or ""))[1]
    assert first["prompt"].startswith("a long prompt 0 ") and "@" not in first


def test_a_long_record_is_stored_compressed_and_read_back_as_its_json(tmp_path: Path) -> None:
    res = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        kinds = dict(db.execute("SELECT step_id, GROUP_CONCAT(DISTINCT typeof(data)) FROM records GROUP BY step_id"))
        stored = db.execute("SELECT SUM(LENGTH(data)) FROM records WHERE step_id = 'src.a'").fetchone()[0]
    assert kinds == {"src.a": "blob", "ext.b": "text"}  # short JSON stays text: compression would save little
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        assert {bytes(d[:4]) for (d,) in db.execute("SELECT data FROM records WHERE step_id = 'src.a'")} == {ZSTD_MAGIC}
    with Store(tmp_path) as store:
        rows = list(store.rows(res.step("src.a").key or ""))
    text = sum(len(data.encode()) for _, data in rows)
    assert stored < text / 2 and json.loads(rows[7][1]) == {"id": "p7", "prompt": "a long prompt 7 " * 20, "n": 7}
    assert [s.status for s in execute(_plan(), tmp_path, registry=_registry(), quiet=True).steps] == ["cached"] * 3


def test_a_compressed_row_that_no_longer_inflates_is_recomputed(tmp_path: Path) -> None:
    execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        db.execute("UPDATE records SET data = X'789c0000' WHERE step_id = 'src.a' AND rkey = '00004'")  # bad zlib
        db.execute("UPDATE records SET data = X'28b52ffd0000' WHERE step_id = 'src.a' AND rkey = '00006'")  # bad zstd
    again = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    assert again.step("src.a").status == "ok" and again.ok
    assert again.step("read.c").metrics["looked_up"]["00003"]["prompt"].startswith("a long prompt 3 ")


def test_a_version_3_store_with_zlib_records_is_read_and_upgraded(tmp_path: Path) -> None:
    """Version 3 compressed with zlib: its records read back as their JSON, every digest verifies, and the store
    becomes version 4 (new records zstd) without rewriting a row."""
    first = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        rows = db.execute("SELECT attempt, rkey, data FROM record_rows WHERE typeof(data) = 'blob'").fetchall()
        db.executemany("UPDATE record_rows SET data = ? WHERE attempt = ? AND rkey = ?",
                       [(zlib.compress(unpack(d).encode(), 6), a, k) for a, k, d in rows])
        db.execute("PRAGMA user_version = 3")
    assert rows and all(bytes(d[:4]) == ZSTD_MAGIC for _, _, d in rows)
    again = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    assert [s.status for s in again.steps] == ["cached"] * 3  # zlib rows read back as the same JSON
    assert again.step("read.c").metrics == first.step("read.c").metrics
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert db.execute("SELECT COUNT(*) FROM record_rows WHERE hex(substr(data, 1, 1)) = '78'").fetchone()[0] \
            == len(rows)  # upgraded without rewriting the rows


V2_RECORDS = """CREATE TABLE records (step_key TEXT NOT NULL, rkey TEXT NOT NULL, step_id TEXT NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (step_key, rkey)) WITHOUT ROWID"""


def _as_version_2(run_dir: Path) -> int:
    """Rewrite a store as version 2 kept it: one records table keyed by the 64-character cache key, JSON text."""
    with sqlite3.connect(RunLayout(run_dir).store) as db:
        rows = [(k, r, s, unpack(d)) for k, r, s, d in db.execute("SELECT step_key, rkey, step_id, data FROM records")]
        for sql in ("DROP VIEW records", "DROP TABLE record_rows", "DROP TABLE attempts", V2_RECORDS,
                    "CREATE INDEX records_by_rkey ON records (rkey)"):  # fmt: skip
            db.execute(sql)
        db.executemany("INSERT INTO records VALUES (?, ?, ?, ?)", rows)
        db.execute("PRAGMA user_version = 2")
    return len(rows)


def test_a_version_2_store_is_upgraded_in_place_and_a_newer_one_refused(tmp_path: Path) -> None:
    execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    rows = _as_version_2(tmp_path)
    again = execute(_plan(), tmp_path, registry=_registry(), quiet=True)
    assert [s.status for s in again.steps] == ["cached"] * 3  # every digest verifies after the upgrade
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT type FROM sqlite_master WHERE name = 'records'").fetchone()[0] == "view"
        assert db.execute("SELECT COUNT(*) FROM record_rows").fetchone()[0] == rows
        assert db.execute("SELECT MAX(LENGTH(key)), COUNT(*) FROM attempts").fetchone() == (64, 2)  # read.c: none
    assert find_record(tmp_path, "ext.b:00005")[1]["prompt"].startswith("a long prompt 5 ")  # type: ignore[index]
    with Store(tmp_path) as store:
        store.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match=f"store version {SCHEMA_VERSION + 1} is newer than this dialc reads"):
        Store(tmp_path)

"""Record store contract: WAL, ordering, uniqueness, purge, find_record."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from runtime_fakes import FakeRegistry, make_plan

import dialc_runtime.engine.store
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.registry import DictRegistry
from dialc_runtime.engine.store import Completed, Store, find_record


def test_store_is_wal_with_normal_sync(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert Store.existing(tmp_path / "none") is None and not (tmp_path / "none").exists()


def test_rows_stream_in_key_order_across_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialc_runtime.engine.store, "_PAGE", 3)
    keys = [f"{i:03d}" for i in (7, 1, 10, 3, 2, 9, 4)] + ["é", "b"]
    with Store(tmp_path) as store:
        for k in keys:
            store.put("K", "s.x", k, f'"{k}"', replace=False)
        store.put("OTHER", "s.y", "000", '"x"', replace=False)
        assert [k for k, _ in store.rows("K")] == sorted(keys)  # code-point order, like Python
        assert store.count("K") == len(keys)
        with pytest.raises(sqlite3.IntegrityError):
            store.put("K", "s.x", "001", '"again"', replace=False)


def test_purge_forgets_records_completion_and_files(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.put("K", "s.x", "a", "1", replace=False)
        store.mark_completed(Completed("K", "s.x", "d", 1))
        (store.artifact_dir("K")).mkdir(parents=True)
        (store.artifact_dir("K") / "f").write_text("x")
        store.purge("K")
        assert store.count("K") == 0 and store.completed("K") is None
        assert not store.artifact_dir("K").exists()


def _module(run: Any) -> Any:
    return SimpleNamespace(VERSION="1", run=run)


def test_emitting_a_key_twice_is_an_error(tmp_path: Path) -> None:
    def twice(ctx: StepContext) -> StepOutput:
        ctx.emit("a", 1)
        ctx.emit("a", 2)
        return StepOutput()

    res = execute(
        make_plan([("dup.d", {}, [])]),
        tmp_path,
        registry=DictRegistry({"dup": _module(twice)}),
        quiet=True,
    )
    assert res.step("dup.d").status == "failed"
    assert "DuplicateRecord" in res.step("dup.d").message and res.step("dup.d").records == 1


def test_a_step_may_only_read_its_inputs(tmp_path: Path) -> None:
    def sneaky(ctx: StepContext) -> StepOutput:
        list(ctx.records("gen.a"))
        return StepOutput()

    reg = FakeRegistry()
    reg.modules["sneak"] = _module(sneaky)
    res = execute(
        make_plan([("gen.a", {"n": 1}, []), ("sneak.s", {}, [])]),
        tmp_path,
        registry=reg,
        quiet=True,
    )
    assert "does not read gen.a" in res.step("sneak.s").message


def test_find_record(tmp_path: Path) -> None:
    plan = make_plan([("gen.a", {"n": 3}, []), ("map.b", {"salt": "s"}, ["gen.a"])])
    execute(plan, tmp_path, registry=FakeRegistry(), quiet=True)
    hit = find_record(tmp_path, "00001")
    assert hit is not None
    step_id, record = hit
    assert step_id == "map.b" and record["i"] == 1  # the furthest downstream copy
    found = find_record(tmp_path, "gen.a:00001")
    assert found is not None and found[0] == "gen.a" and found[1]["v"] != record["v"]
    assert find_record(tmp_path, "99999") is None
    assert find_record(tmp_path / "nowhere", "00001") is None


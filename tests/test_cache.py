"""dialc_runtime.engine.cache: what a cache key depends on (and what it must not), file and output digests."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from runtime_fakes import make_plan

from dialc.plan import Plan, Span, Step
from dialc_runtime.engine.cache import (
    MISSING,
    FileDigests,
    effective_seed,
    file_digest,
    output_digest,
    step_key,
    tree_digests,
    verify,
)
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.store import Completed, Store, record_json

PARAMS: dict[str, Any] = {"n": 3, "salt": "s", "nested": {"a": [1, 2], "b": None}}


def one_step(step_id: str = "gen.a", params: dict[str, Any] | None = None, seed: int = 7) -> tuple[Step, Plan]:
    plan = make_plan([(step_id, PARAMS if params is None else params, [])], seed=seed)
    return plan.steps[0], plan


def key(step: Step | None = None, *, version: str = "1", seed: int = 7, inputs: tuple[str, ...] = ("d1", "d2"),
        files: tuple[tuple[str, str], ...] = (("data.jsonl", "f1"),)) -> str:
    return step_key(step or one_step()[0], version, seed, list(inputs), list(files))


# ---- what the key depends on --------------------------------------------------------------------------------------
def test_the_key_is_a_stable_sha256() -> None:
    assert key() == key() and len(key()) == 64 and int(key(), 16) >= 0


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(lambda: key(one_step("map.a")[0]), id="kind"),
        pytest.param(lambda: key(one_step(params={**PARAMS, "n": 4})[0]), id="param value"),
        pytest.param(lambda: key(one_step(params={**PARAMS, "nested": {"a": [2, 1], "b": None}})[0]), id="deep param"),
        pytest.param(lambda: key(one_step(params={**PARAMS, "extra": None})[0]), id="added param"),
        pytest.param(lambda: key(version="2"), id="VERSION"),
        pytest.param(lambda: key(seed=8), id="seed"),
        pytest.param(lambda: key(inputs=("d1", "dX")), id="input digest"),
        pytest.param(lambda: key(inputs=("d2", "d1")), id="input order"),
        pytest.param(lambda: key(inputs=("d1",)), id="fewer inputs"),
        pytest.param(lambda: key(files=(("data.jsonl", "f2"),)), id="file contents"),
        pytest.param(lambda: key(files=(("other.jsonl", "f1"),)), id="file name"),
        pytest.param(lambda: key(files=()), id="no files"),
    ],
)
def test_the_key_changes_with(changed: Any) -> None:
    assert changed() != key()


def test_the_key_ignores_the_step_name() -> None:
    """Renaming a step keeps its cached output."""
    assert key(one_step("gen.renamed")[0]) == key(one_step("gen.a")[0])


def test_the_key_ignores_where_the_step_is_written_in_the_spec() -> None:
    step = one_step()[0]
    moved = step.model_copy(update={
        "span": Span(file="elsewhere.dial", line=90, col=1, end_line=99, end_col=2),
        "locations": {"expect": ["elsewhere.dial:95:3"]},
        "fingerprint": "0" * 64,
    })
    assert key(moved) == key(step)


def test_the_key_ignores_the_order_params_are_written_in() -> None:
    reordered = dict(reversed(list(PARAMS.items())))
    assert key(one_step(params=reordered)[0]) == key()


def test_the_seed_is_the_steps_own_else_the_pipelines() -> None:
    step, plan = one_step(params={"n": 1}, seed=11)
    assert effective_seed(step, plan) == 11
    step, plan = one_step(params={"n": 1, "seed": 3}, seed=11)
    assert effective_seed(step, plan) == 3
    step, plan = one_step(params={"n": 1, "seed": 0}, seed=11)
    assert effective_seed(step, plan) == 0  # a seed of 0 is a seed, not "unset"


# ---- file digests -------------------------------------------------------------------------------------------------
def test_file_digest_follows_contents_not_metadata(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text("a\n", encoding="utf-8")
    first = file_digest(path)
    path.touch()  # a new mtime alone is not a change
    assert file_digest(path) == first
    path.write_text("b\n", encoding="utf-8")
    assert file_digest(path) != first
    assert file_digest(tmp_path / "absent.jsonl") == MISSING


def test_a_directory_digest_covers_names_and_contents(tmp_path: Path) -> None:
    root = tmp_path / "adapter"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "w.bin").write_bytes(b"\x00\x01")
    (root / "config.json").write_text("{}", encoding="utf-8")
    assert [rel for rel, _ in tree_digests(root)] == ["config.json", "sub/w.bin"]
    first = file_digest(root)
    (root / "sub" / "w.bin").write_bytes(b"\x00\x02")
    changed = file_digest(root)
    (root / "sub" / "w.bin").rename(root / "sub" / "v.bin")
    renamed = file_digest(root)
    assert len({first, changed, renamed}) == 3
    assert tree_digests(tmp_path / "nothing") == []


def test_listed_files_are_hashed_once_per_run(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("v1", encoding="utf-8")
    step, _ = one_step("files.f", {"files": [str(data), str(tmp_path / "later.txt")]})
    run = FileDigests()
    first = run(step)
    assert first == sorted(first) and dict(first)[str(tmp_path / "later.txt")] == MISSING
    data.write_text("v2", encoding="utf-8")
    (tmp_path / "later.txt").write_text("now here", encoding="utf-8")
    assert run(step) == first  # one run sees one version of each file, whatever happens meanwhile
    fresh = dict(FileDigests()(step))  # the next run sees the edits
    assert fresh[str(data)] != dict(first)[str(data)] and fresh[str(tmp_path / "later.txt")] != MISSING
    assert key(step, files=tuple(FileDigests()(step))) != key(step, files=tuple(first))


# ---- output digests -----------------------------------------------------------------------------------------------
def completed_store(tmp_path: Path, rows: dict[str, Any], files: dict[str, str] | None = None) -> Store:
    """A store holding one completed step output under key 'k'."""
    store = Store(tmp_path)
    for rkey, record in rows.items():
        store.put("k", "gen.a", rkey, record_json(record), replace=False)
    for name, text in (files or {}).items():
        path = store.artifact_dir("k") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    digest, count = output_digest(store, "k")
    store.mark_completed(Completed("k", "gen.a", digest, count))
    return store


ROWS = {"00000": {"v": 1}, "00001": {"v": 2}, "00002": {"v": 3}}


def test_an_untouched_output_verifies(tmp_path: Path) -> None:
    with completed_store(tmp_path, ROWS, {"out.txt": "x"}) as store:
        assert verify(store, "k")
        assert output_digest(store, "k")[1] == 3
        assert not verify(store, "unknown")  # nothing completed under that key


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param("UPDATE records SET data = '{\"v\":9}' WHERE rkey = '00001'", id="edited record"),
        pytest.param("DELETE FROM records WHERE rkey = '00002'", id="deleted record"),
        pytest.param("INSERT INTO records VALUES ('k', '00003', 'gen.a', '{}')", id="added record"),
        pytest.param("UPDATE records SET rkey = '00009' WHERE rkey = '00000'", id="re-keyed record"),
    ],
)
def test_tampered_records_fail_verification(tmp_path: Path, tamper: str) -> None:
    completed_store(tmp_path, ROWS).close()
    with sqlite3.connect(RunLayout(tmp_path).store) as db:
        db.execute(tamper)
    with Store(tmp_path) as store:
        assert not verify(store, "k")


@pytest.mark.parametrize("tamper", ["edit", "delete", "add"])
def test_tampered_artifact_files_fail_verification(tmp_path: Path, tamper: str) -> None:
    with completed_store(tmp_path, ROWS, {"out.txt": "x", "sub/model.bin": "w"}) as store:
        out = store.artifact_dir("k")
        if tamper == "edit":
            (out / "sub" / "model.bin").write_text("W", encoding="utf-8")
        elif tamper == "delete":
            (out / "out.txt").unlink()
        else:
            (out / "stray.txt").write_text("", encoding="utf-8")
        assert not verify(store, "k")


def test_the_output_digest_cannot_be_fooled_by_moving_bytes_between_fields(tmp_path: Path) -> None:
    """Length-prefixed hashing: ('ab', 'c') and ('a', 'bc') rows, or a row and a file, never collide."""
    with Store(tmp_path / "one") as one, Store(tmp_path / "two") as two:
        one.put("k", "s", "ab", "c", replace=False)
        two.put("k", "s", "a", "bc", replace=False)
        assert output_digest(one, "k") != output_digest(two, "k")


def test_the_output_digest_is_independent_of_write_order(tmp_path: Path) -> None:
    with Store(tmp_path / "one") as one, Store(tmp_path / "two") as two:
        for rkey in ["00000", "00001", "00002"]:
            one.put("k", "s", rkey, record_json(ROWS[rkey]), replace=False)
        for rkey in ["00002", "00000", "00001"]:  # a resumed step writes in another order
            two.put("k", "s", rkey, record_json(ROWS[rkey]), replace=False)
        assert output_digest(one, "k") == output_digest(two, "k")

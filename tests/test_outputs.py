"""Named outputs: outputs/<export name> and outputs/<finetune name>/adapter always point at the current step output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from runtime_fakes import FakeRegistry, make_plan

from dialc.plan import Plan
from dialc_runtime.engine import outputs as outputs_module
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.outputs import output_lines, read_outputs


def _export(ctx: StepContext) -> StepOutput:
    """A fake export: train.jsonl from its input, or a failure when asked to."""
    if ctx.params.get("fail"):
        raise RuntimeError("export broke")
    (src,) = ctx.step.input_ids
    rows = [json.dumps(rec) for rec in ctx.records(src)]
    (ctx.out_dir / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return StepOutput()


def _finetune(ctx: StepContext) -> StepOutput:
    """A fake fine-tune: an adapter folder whose config names the run's salt."""
    adapter = ctx.out_dir / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"salt": ctx.params.get("salt", "")}), encoding="utf-8")
    ctx.emit("result", {"adapter": "adapter"})
    return StepOutput()


def registry() -> FakeRegistry:
    reg = FakeRegistry()
    reg.modules["export"] = reg._module("export", _export)
    reg.modules["finetune"] = reg._module("finetune", _finetune)
    return reg


def plan(salt: str = "a", fail: bool = False, export: str = "dataset", finetune: str = "tuned") -> Plan:
    return make_plan([
        ("gen.rows", {"n": 3, "salt": salt}, []),
        (f"export.{export}", {"fail": fail}, ["gen.rows"]),
        (f"finetune.{finetune}", {"salt": salt}, ["gen.rows"]),
    ])


def run(run_dir: Path, p: Plan, reg: FakeRegistry | None = None, **kw: Any) -> Any:
    return execute(p, run_dir, registry=reg or registry(), quiet=True, **kw)


def test_a_run_links_each_export_and_finetune_by_name(tmp_path: Path) -> None:
    results = run(tmp_path, plan())
    layout = RunLayout(tmp_path)
    data, tuned = layout.named_output("dataset"), layout.named_output("tuned")
    assert data.is_symlink() and tuned.is_symlink()
    # relative links: the run directory can be moved or copied whole
    assert os.readlink(data) == f"../artifacts/{results.step('export.dataset').key}"
    assert os.readlink(tuned) == f"../artifacts/{results.step('finetune.tuned').key}"
    assert len((data / "train.jsonl").read_text().splitlines()) == 3
    assert json.loads((tuned / "adapter" / "adapter_config.json").read_text()) == {"salt": "a"}
    listed = {o.name: o for o in read_outputs(tmp_path)}
    assert listed["dataset"].entries == ("train.jsonl",) and listed["tuned"].entries == ("adapter",)
    assert listed["tuned"].key == results.step("finetune.tuned").key


def test_a_changed_spec_repoints_the_links(tmp_path: Path) -> None:
    first = run(tmp_path, plan("a"))
    second = run(tmp_path, plan("b"))
    tuned = RunLayout(tmp_path).named_output("tuned")
    assert second.step("finetune.tuned").key != first.step("finetune.tuned").key
    assert json.loads((tuned / "adapter" / "adapter_config.json").read_text()) == {"salt": "b"}
    assert os.readlink(tuned).endswith(second.step("finetune.tuned").key)


def test_a_cached_rerun_writes_the_links_again(tmp_path: Path) -> None:
    run(tmp_path, plan())
    layout = RunLayout(tmp_path)
    for link in layout.outputs.iterdir():
        link.unlink()
    reg = registry()
    results = run(tmp_path, plan(), reg)
    assert {s.status for s in results.steps} == {"cached"} and not reg.calls
    assert (layout.named_output("dataset") / "train.jsonl").is_file()
    assert (layout.named_output("tuned") / "adapter").is_dir()


def test_a_failed_step_loses_its_link_instead_of_keeping_a_stale_one(tmp_path: Path) -> None:
    run(tmp_path, plan("a"))
    results = run(tmp_path, plan("b", fail=True))
    layout = RunLayout(tmp_path)
    assert results.step("export.dataset").status == "failed"
    assert not layout.named_output("dataset").exists() and not layout.named_output("dataset").is_symlink()
    assert [o.name for o in read_outputs(tmp_path)] == ["tuned"]
    assert json.loads((layout.named_output("tuned") / "adapter" / "adapter_config.json").read_text()) == {"salt": "b"}


def test_a_partial_run_links_what_the_store_holds_for_the_spec(tmp_path: Path) -> None:
    """--select of one step: the other named outputs are still those of the spec, from the cache."""
    run(tmp_path, plan())
    run(tmp_path, plan(), select=["gen.rows"])
    assert {o.name for o in read_outputs(tmp_path)} == {"dataset", "tuned"}
    run(tmp_path, plan("c"), select=["gen.rows"])  # the spec changed; its export and fine-tune did not run
    assert read_outputs(tmp_path) == []
    assert not RunLayout(tmp_path).outputs.exists()  # nothing named: no empty folder left either


def test_repointing_replaces_the_link_in_one_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The link is never missing while it is re-pointed: no unlink of it, one os.replace onto it."""
    run(tmp_path, plan("a"))
    link = RunLayout(tmp_path).named_output("tuned")
    calls: list[tuple[str, str]] = []
    real_replace, real_unlink = os.replace, Path.unlink

    def replace(src: Any, dst: Any) -> None:
        calls.append(("replace", str(dst)))
        assert Path(dst).is_symlink() or Path(dst) != link  # the old link is still there until the rename
        real_replace(src, dst)

    def unlink(self: Path, missing_ok: bool = False) -> None:
        calls.append(("unlink", str(self)))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    run(tmp_path, plan("b"))
    assert ("replace", str(link)) in calls
    assert ("unlink", str(link)) not in calls
    assert not [p for p in link.parent.iterdir() if p.name.endswith(".tmp")]  # no staged link left behind


def test_without_links_the_index_names_the_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(tmp_path, plan("a"))

    def no_links(*args: Any, **kw: Any) -> None:
        raise OSError("symbolic links are not supported here")

    monkeypatch.setattr(outputs_module.os, "symlink", no_links)
    results = run(tmp_path, plan("b"))
    layout = RunLayout(tmp_path)
    assert not layout.named_output("tuned").is_symlink()  # the old link would be stale: gone
    listed = {o.name: o for o in read_outputs(tmp_path)}
    key = results.step("finetune.tuned").key
    assert listed["tuned"].linked is False and listed["tuned"].key == key
    index = json.loads(layout.outputs_index.read_text())
    target = next(o["target"] for o in index["outputs"] if o["name"] == "tuned")
    assert (tmp_path / target / "adapter" / "adapter_config.json").is_file()
    assert any(f"artifacts/{key}/adapter" in line for line in output_lines(tmp_path, listed.values(), tmp_path))


def test_an_export_and_a_finetune_of_one_name_get_their_step_ids(tmp_path: Path) -> None:
    run(tmp_path, plan(export="domain", finetune="domain"))
    layout = RunLayout(tmp_path)
    assert (layout.named_output("export.domain") / "train.jsonl").is_file()
    assert (layout.named_output("finetune.domain") / "adapter").is_dir()


def test_a_folder_a_user_put_in_outputs_is_left_alone(tmp_path: Path) -> None:
    mine = RunLayout(tmp_path).named_output("tuned")
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    run(tmp_path, plan())
    assert (mine / "notes.txt").read_text() == "mine" and not mine.is_symlink()
    assert {o.name: o.linked for o in read_outputs(tmp_path)} == {"dataset": True, "tuned": False}


def test_output_lines_name_the_paths_a_user_opens(tmp_path: Path) -> None:
    run(tmp_path, plan())
    lines = output_lines(tmp_path, read_outputs(tmp_path), tmp_path.parent)
    name = tmp_path.name
    assert f"  export dataset: {name}/outputs/dataset/ (train.jsonl)" in lines
    assert f"  finetune tuned: {name}/outputs/tuned/adapter" in lines

"""A real pipeline through the command line: named outputs printed and listed, `dialc clean`, then all cached."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pipeline_kit import SPEC, write_project
from typer.testing import CliRunner

from dialc.cli import app

KIT = SPEC + """
finetune tuned {{ base = tiny  max_steps = 1 }}
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def statuses(run_dir: Path) -> set[str]:
    return {s["status"] for s in json.loads((run_dir / "run_results.json").read_text())["steps"]}


@pytest.mark.slow
def test_outputs_are_named_listed_and_survive_a_clean(tiny_model_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path, model=tiny_model_dir, spec=KIT)
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "runs" / "kit"

    code, _, err = invoke("run", "kit.dial", "-q")
    assert code == 0, err
    assert "outputs:" in err
    assert "  export dataset: runs/kit/outputs/dataset/ (" in err and "train.jsonl" in err
    assert "  finetune tuned: runs/kit/outputs/tuned/adapter" in err
    data = run_dir / "outputs" / "dataset"
    assert (data / "train.jsonl").is_file() and (data / "dataset_info.json").is_file()
    assert (run_dir / "outputs" / "tuned" / "adapter" / "adapter_config.json").is_file()
    first = os.readlink(data)

    code, out, _ = invoke("status", "kit.dial")
    assert code == 0 and "runs/kit/outputs/tuned/adapter" in out and "changed since" not in out
    code, out, _ = invoke("show", "--spec", "kit.dial")
    assert code == 0 and "runs/kit/outputs/dataset/" in out

    # another export of the same labels: a new cache key, and the link follows it
    code, _, err = invoke("run", "kit.dial", "-q", "--set", "export.dataset.include=all")
    assert code == 0, err
    assert os.readlink(data) != first
    code, out, _ = invoke("status", "kit.dial")  # the spec as written: its export is the first one again
    assert "changed since" in out

    code, out, _ = invoke("clean", "kit.dial", "--dry-run")
    assert code == 0 and "would remove 1 cache entry" in out and "export.dataset" in out
    code, out, _ = invoke("clean", "kit.dial")
    assert code == 0 and "removed 1 cache entry" in out and "after VACUUM" in out
    assert os.readlink(data) == first  # re-pointed at the spec's export, never at the removed folder
    assert (data / "train.jsonl").is_file()

    code, _, err = invoke("run", "kit.dial", "-q")
    assert code == 0, err
    assert statuses(run_dir) == {"cached"}  # nothing the spec uses was cleaned away
    code, out, _ = invoke("clean", "kit.dial")
    assert "nothing to clean" in out

"""Command line (in-process, typer's CliRunner on dialc.cli.app) → exit codes and printed output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialc.cli import app
from dialc.codes import CODES

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/realestate.dial"
BROKEN = "tests/diagnostics/refs.dial"


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def invoke(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one in-process dialc command."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# ---- validate -------------------------------------------------------------------------------
def test_validate_clean_exits_0() -> None:
    code, out, _ = invoke("validate", SPEC)
    assert code == 0
    assert out.strip() == "Success: no issues found in 1 source file"


def test_validate_several_clean_specs() -> None:
    code, out, _ = invoke("validate", SPEC, "specs/support.dial")
    assert code == 0 and "Success" in out


def test_validate_errors_exit_1_mypy_style() -> None:
    code, out, _ = invoke("validate", BROKEN)
    assert code == 1
    assert re.search(r'^tests/diagnostics/refs\.dial:\d+:\d+: error: unknown source "dialogs"'
                     r"  \[unknown-ref\]$", out, re.M)
    note = r'^tests/diagnostics/refs\.dial:7:\d+: note: did you mean "dialogues"\?$'
    assert re.search(note, out, re.M)
    assert re.search(r"^\s+\^~+$", out, re.M)  # a caret under the offending span
    assert re.search(r"^Found \d+ errors and \d+ warnings in 1 file$", out, re.M)


def test_validate_warnings_only_exit_0() -> None:
    code, out, _ = invoke("validate", SPEC, "--set", "sample.prompts.count=100000",
                          "--set", "sample.prompts.from=dialogues * tasks * style")
    assert code == 0
    assert "[sample-too-large]" in out and "[unused]" in out and "Success: 2 warnings" in out


@pytest.mark.parametrize("args", [
    ["validate"],  # missing argument
    ["validate", "--bogus", SPEC],  # unknown option
    ["validate", "--format", "xml", SPEC],  # bad option value
    ["compile"],
    ["graph", SPEC, "--format", "png"],
    ["debug", "bytecode", SPEC],
    ["no-such-command"],
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, out, err = invoke(*args)
    assert code == 2
    assert "Usage:" in out + err


def test_missing_spec_file_is_reported() -> None:
    code, out, _ = invoke("validate", "specs/no_such_spec.dial")
    assert code == 1
    assert "file not found: specs/no_such_spec.dial  [file-error]" in out


def test_validate_json_format() -> None:
    code, out, _ = invoke("validate", "--format", "json", BROKEN)
    assert code == 1
    rows = json.loads(out)
    keys = {"severity", "code", "message", "file", "line", "column", "notes"}
    assert rows and keys <= set(rows[0])
    assert all(r["line"] >= 1 and r["column"] >= 1 and r["code"] in CODES for r in rows)
    dialogs = next(r for r in rows if 'unknown source "dialogs"' in r["message"])
    text = (ROOT / BROKEN).read_text(encoding="utf-8").splitlines()[dialogs["line"] - 1]
    assert text[dialogs["column"] - 1:].startswith("dialogs")  # 1-based column of the span
    assert dialogs["notes"][0]["line"] == 7


def test_validate_json_clean_is_an_empty_list() -> None:
    code, out, _ = invoke("validate", "--format", "json", SPEC)
    assert code == 0 and json.loads(out) == []


# ---- codes ----------------------------------------------------------------------------------
def test_codes_lists_every_code() -> None:
    code, out, _ = invoke("codes")
    assert code == 0
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert listed == set(CODES)
    assert re.search(r"^unused\s+warning\s+a declaration nothing uses$", out, re.M)


# ---- compile / graph / debug ----------------------------------------------------------------
def test_compile_prints_canonical_plan() -> None:
    code, out, _ = invoke("compile", SPEC)
    assert code == 0
    plan = json.loads(out)
    assert plan["pipeline"] == "realestate" and plan["spec"] == SPEC
    assert out == json.dumps(plan, sort_keys=True, ensure_ascii=False, indent=2) + "\n"


def test_compile_output_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "plan.json"
    code, out, err = invoke("compile", SPEC, "-o", str(target))
    assert code == 0 and out == "" and "wrote" in err
    assert target.read_text(encoding="utf-8") == invoke("compile", SPEC)[1]


def test_compile_with_errors_exits_1_without_plan() -> None:
    code, out, err = invoke("compile", BROKEN)
    assert code == 1 and out == ""
    assert "[unknown-ref]" in err


def test_compile_prints_warnings_but_succeeds() -> None:
    code, out, err = invoke("compile", SPEC, "--set", "sample.prompts.count=100000",
                            "--set", "sample.prompts.from=dialogues * tasks * style")
    assert code == 0 and json.loads(out)["pipeline"] == "realestate"
    assert "[sample-too-large]" in err


def test_set_overrides_change_the_plan() -> None:
    plain = json.loads(invoke("compile", SPEC)[1])
    code, out, _ = invoke("compile", SPEC, "--set", "sample.prompts.count=40",
                          "-s", "pipeline.seed=7")
    assert code == 0
    changed = json.loads(out)
    count = {s["id"]: s for s in changed["steps"]}["sample.prompts"]["params"]["count"]
    assert count == 40 and changed["settings"]["seed"] == 7 and plain["settings"]["seed"] == 42


@pytest.mark.parametrize("override", ["sample.prompts.cnt=40", "sample.nothing.count=4", "seed"])
def test_bad_override_reports_bad_override(override: str) -> None:
    code, out, _ = invoke("validate", SPEC, "--set", override)
    assert code == 1
    assert "<--set>:1:1: error:" in out and "[bad-override]" in out


def test_graph_mermaid() -> None:
    code, out, _ = invoke("graph", SPEC)
    assert code == 0
    assert out.startswith("flowchart TD\n")
    assert "ingest_dialogues --> sample_prompts" in out
    assert "finetune_domain --> evaluate_after" in out
    assert invoke("graph", SPEC, "--format", "mermaid")[1] == out


def test_graph_dot() -> None:
    code, out, _ = invoke("graph", SPEC, "--format", "dot")
    assert code == 0
    assert out.startswith('digraph "realestate" {') and out.rstrip().endswith("}")
    assert '"label.labels" -> "score.valid";' in out


@pytest.mark.parametrize(("form", "marker"), [
    ("tree", "include"), ("ast", '"decls"'), ("ir", '"spec_dir"'), ("plan", '"fingerprint"')])
def test_debug_forms(form: str, marker: str) -> None:
    code, out, _ = invoke("debug", form, SPEC)
    assert code == 0 and marker in out
    if form in ("ir", "plan"):
        json.loads(out)


def test_debug_tree_of_broken_syntax_exits_1(tmp_path: Path) -> None:
    spec = tmp_path / "bad.dial"
    spec.write_text("pipeline p { seed 1 }\n", encoding="utf-8")
    code, _, err = invoke("debug", "tree", str(spec))
    assert code == 1 and "expected '=' after field name 'seed'" in err


def test_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and out.startswith("dialc ")


# ---- the real entry point -------------------------------------------------------------------
def test_internal_error_exits_2(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    import dialc.compiler
    from dialc import cli

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(dialc.compiler, "compile_plan", broken)
    monkeypatch.setattr(sys, "argv", ["dialc", "compile", SPEC])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    assert "dialc: internal error: RuntimeError: boom" in capsys.readouterr().err


def test_main_usage_error_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    from dialc import cli

    monkeypatch.setattr(sys, "argv", ["dialc", "validate", "--bogus"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2


def test_python_m_dialc_help() -> None:
    out = subprocess.run([sys.executable, "-m", "dialc", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    for command in ("validate", "compile", "graph", "codes", "debug"):
        assert command in out.stdout

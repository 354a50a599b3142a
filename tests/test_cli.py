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


@pytest.mark.parametrize("argv", [["validate", "--bogus"], ["compile"], ["bogus"], ["validate", SPEC, "-f", "xml"]])
def test_main_usage_error_exits_2(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from dialc import cli

    monkeypatch.setattr(sys, "argv", ["dialc", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "Usage: " in err and "Error: " in err and "internal error" not in err


@pytest.mark.parametrize("argv", [
    ["validate", SPEC], ["validate", SPEC, "--format", "json"], ["validate", "-fjson", SPEC],
    ["validate", SPEC, "--set=sample.prompts.count=7"], ["validate", SPEC, "-s", "sample.prompts.count=-1"],
    ["validate", "--", SPEC], ["validate", "tests/diagnostics/refs.dial", SPEC], ["validate", "missing.dial"],
])
def test_fast_validate_path_matches_the_typer_command(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """main() answers a plain validate without building the typer app: same output and exit status."""
    from dialc import cli
    from dialc.cli.lint import parse_validate_args

    assert parse_validate_args(argv) is not None
    monkeypatch.setattr(sys, "argv", ["dialc", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    fast = (exit_info.value.code, *capsys.readouterr())
    code, out, err = invoke(*argv)
    assert fast == (code, out, err)


def test_python_m_dialc_help() -> None:
    out = subprocess.run([sys.executable, "-m", "dialc", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    for command in ("validate", "compile", "graph", "codes", "debug"):
        assert command in out.stdout


# ---- run and review exit codes (issue 9) --------------------------------------------------------


def _fake_run(monkeypatch: pytest.MonkeyPatch, steps: list[tuple[str, dict, list[str]]]) -> None:
    """`dialc run` on a plan of fake steps (no model, no spec compiled)."""
    from runtime_fakes import FakeRegistry, make_plan

    import dialc.cli.run_cmds as run_cmds
    import dialc_runtime.engine.executor as executor

    monkeypatch.setattr(run_cmds, "load_plan", lambda spec, overrides: make_plan(steps))
    monkeypatch.setattr(executor, "default_registry", FakeRegistry)


def test_run_stopped_at_a_gate_exits_3_and_says_blocked(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    _fake_run(monkeypatch, [("gen.a", {"n": 2}, []), ("block.review", {"message": "1 task awaits review"}, ["gen.a"]),
                            ("map.after", {}, ["block.review"]), ("map.deeper", {}, ["map.after"])])
    code, out, err = invoke("run", SPEC, "--run-dir", str(tmp_path / "run"), "-q")
    assert code == 3, err
    assert "failed" not in err.replace("0 failed", "")
    assert re.search(r"status\s*│?\s*blocked", err)
    assert 'step "block.review" blocked: 1 task awaits review' in err
    assert "stopped at a gate" in err


def test_run_with_a_failed_step_exits_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_run(monkeypatch, [("fail.f", {"message": "bad rows"}, []), ("block.review", {}, [])])
    code, _, err = invoke("run", SPEC, "--run-dir", str(tmp_path / "run"), "-q")
    assert code == 1 and 'step "fail.f" failed: bad rows' in err


def test_run_help_states_the_exit_codes() -> None:
    code, out, _ = invoke("run", "--help")
    assert code == 0 and "3 stopped at a gate" in " ".join(out.split())


def test_review_list_exits_0_with_pending_candidates_and_says_so(tmp_path: Path) -> None:
    from dialc_runtime.data.review import write_review

    path = tmp_path / "review.jsonl"
    write_review(path, [{"id": "t1~deepen1", "decision": "pending", "instruction": "Do more."},
                        {"id": "t2~deepen1", "decision": "accept", "instruction": "Do less."}])
    code, out, err = invoke("review", str(path), "--list")
    assert code == 0, err
    assert "pending  t1~deepen1" in out and "1 decided, 1 pending" in err
    code, _, err = invoke("review", str(path), "--reject-all")
    assert code == 0 and "0 pending" in err
    code, out, _ = invoke("review", "--help")
    assert "--list" in out and "exit" in out.lower()

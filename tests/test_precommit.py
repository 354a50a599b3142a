"""`dialc fmt --check` shows the diff it would apply, and .pre-commit-hooks.yaml → valid hooks whose entries
pass a clean spec and fail a broken or badly formatted one (a slow test runs them through `pre-commit try-repo`)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialc.cli import app
from dialc.scaffold import init_project

ROOT = Path(__file__).resolve().parent.parent
HOOKS = ROOT / ".pre-commit-hooks.yaml"
DIALC = Path(sys.executable).parent / "dialc"
MESSY = 'pipeline p {seed=1}\n// the labeller\nmodel m { path = "builtin:smollm2-135m-instruct"  temperature=0.5 }'
CLEAN_SPEC = ROOT / "tests" / "specs" / "minimal.dial"


def apply_unified_diff(original: str, diff: str) -> str:
    """The text a unified diff turns `original` into (hunks applied in order; enough to check fmt's diff)."""
    old = original.split("\n")
    old = [line + "\n" for line in old[:-1]] + ([old[-1]] if old[-1] else [])
    out: list[str] = []
    at, prev = 0, ""
    lines = diff.split("\n")
    i = 0
    while i < len(lines):
        hunk = re.match(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", lines[i])
        i += 1
        if not hunk:
            continue
        start = int(hunk.group(1)) - (0 if hunk.group(2) == "0" else 1)
        out.extend(old[at:start])
        at = start
        while i < len(lines) and lines[i][:1] in (" ", "-", "+", "\\"):
            line, i = lines[i], i + 1
            if line.startswith("\\"):  # "\ No newline at end of file": the previous line has no "\n"
                out[-1] = out[-1].removesuffix("\n") if out and prev in ("+", " ") else out[-1]
                continue
            prev = line[0]
            if line[0] in (" ", "-"):
                assert old[at].removesuffix("\n") == line[1:], f"context mismatch at line {at + 1}"
                at += 1
            if line[0] in (" ", "+"):
                out.append(line[1:] + "\n")
    out.extend(old[at:])
    return "".join(out)


# ---- fmt --check shows a diff --------------------------------------------------------------------------
def test_fmt_check_prints_the_diff_that_write_would_apply(tmp_path: Path) -> None:
    spec = tmp_path / "messy.dial"
    spec.write_text(MESSY, encoding="utf-8")
    runner = CliRunner()
    checked = runner.invoke(app, ["fmt", "--check", str(spec)])
    assert checked.exit_code == 1
    assert checked.stdout.startswith(f"--- {spec}\n+++ {spec} (formatted)\n@@ ")
    assert "-pipeline p {seed=1}\n" in checked.stdout and "+pipeline p { seed = 1 }\n" in checked.stdout
    assert "\\ No newline at end of file" in checked.stdout  # the original's last line has no newline
    assert f"would reformat {spec}" in checked.stderr
    assert spec.read_text(encoding="utf-8") == MESSY  # --check never writes
    formatted = runner.invoke(app, ["fmt", str(spec)]).stdout
    assert apply_unified_diff(MESSY, checked.stdout) == formatted


def test_fmt_check_prints_nothing_for_a_formatted_spec(tmp_path: Path) -> None:
    spec = tmp_path / "clean.dial"
    spec.write_text(CliRunner().invoke(app, ["fmt", str(CLEAN_SPEC)]).stdout, encoding="utf-8")
    checked = CliRunner().invoke(app, ["fmt", "--check", str(spec)])
    assert checked.exit_code == 0 and checked.stdout == ""


def test_fmt_check_diff_of_each_file_with_several_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.dial", tmp_path / "b.dial"
    first.write_text("pipeline a {seed=1}\n", encoding="utf-8")
    second.write_text("pipeline b {seed=2}\n", encoding="utf-8")
    checked = CliRunner().invoke(app, ["fmt", "--check", str(first), str(second)])
    assert checked.exit_code == 1
    assert checked.stdout.count("\n--- ") + checked.stdout.startswith("--- ") == 2
    assert "+pipeline a { seed = 1 }" in checked.stdout and "+pipeline b { seed = 2 }" in checked.stdout


def test_the_diff_splits_lines_only_at_newlines(tmp_path: Path) -> None:
    """A U+2028 inside a string is no line end: the diff still applies to the file as it is."""
    text = 'pipeline p {seed=1  description = "a\u2028b"}\n'
    spec = tmp_path / "u.dial"
    spec.write_text(text, encoding="utf-8")
    checked = CliRunner().invoke(app, ["fmt", "--check", str(spec)])
    assert checked.exit_code == 1
    assert apply_unified_diff(text, checked.stdout) == CliRunner().invoke(app, ["fmt", str(spec)]).stdout


# ---- the hooks file -----------------------------------------------------------------------------------
def hooks() -> dict[str, dict[str, object]]:
    from pre_commit.clientlib import load_manifest  # validates against pre-commit's own schema

    return {hook["id"]: hook for hook in load_manifest(str(HOOKS))}


def run_entry(hook: dict[str, object], files: list[Path]) -> subprocess.CompletedProcess[str]:
    """Run a hook's entry the way pre-commit does: the entry's words, then the matching file names."""
    words = shlex.split(str(hook["entry"]))
    assert words[0] == "dialc"
    pattern = re.compile(str(hook["files"]))
    names = [str(f) for f in files if pattern.search(str(f))]
    return subprocess.run([str(DIALC), *words[1:], *names], capture_output=True, text=True, timeout=120, check=False)


def test_hooks_file_is_valid_and_declares_both_hooks() -> None:
    found = hooks()
    assert set(found) == {"dialc-validate", "dialc-fmt"}
    assert found["dialc-validate"]["entry"] == "dialc validate"
    assert found["dialc-fmt"]["entry"] == "dialc fmt --check"
    for hook in found.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is True
        pattern = re.compile(str(hook["files"]))
        assert pattern.search("specs/x.dial") and not pattern.search("x.dial.bak") and not pattern.search("x.py")


def test_validate_hook_passes_a_valid_spec_and_fails_a_broken_one(tmp_path: Path) -> None:
    hook = hooks()["dialc-validate"]
    assert run_entry(hook, [CLEAN_SPEC, ROOT / "README.md"]).returncode == 0
    broken = tmp_path / "broken.dial"
    broken.write_text("pipeline p { seed = }\n", encoding="utf-8")
    done = run_entry(hook, [CLEAN_SPEC, broken])
    assert done.returncode == 1 and "broken.dial:1:" in done.stdout + done.stderr


def test_fmt_hook_passes_a_formatted_spec_and_fails_with_a_diff(tmp_path: Path) -> None:
    hook = hooks()["dialc-fmt"]
    clean = tmp_path / "clean.dial"
    clean.write_text(CliRunner().invoke(app, ["fmt", str(CLEAN_SPEC)]).stdout, encoding="utf-8")
    assert run_entry(hook, [clean]).returncode == 0
    messy = tmp_path / "messy.dial"
    messy.write_text(MESSY, encoding="utf-8")
    done = run_entry(hook, [clean, messy])
    assert done.returncode == 1
    assert "+pipeline p { seed = 1 }" in done.stdout and f"would reformat {messy}" in done.stderr
    assert messy.read_text(encoding="utf-8") == MESSY


# ---- through pre-commit itself ----------------------------------------------------------------------------
NETWORK = re.compile(r"Could not find a version|Failed to establish a new connection|Temporary failure in name "
                     r"resolution|No matching distribution|ProxyError|Network is unreachable", re.I)


def snapshot(into: Path) -> Path:
    """This checkout as it is now (tracked and new files, uncommitted edits included) committed in a fresh git
    repository: what a project's `rev:` would point at (try-repo on the checkout would miss new files)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=into, check=True)
    subprocess.run([*git, "add", "-A"], cwd=into, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], cwd=into, check=True)
    return into


@pytest.mark.slow
def test_pre_commit_try_repo_runs_both_hooks(tmp_path: Path) -> None:
    """pre-commit installs this repository into its own environment (dependencies from PyPI) and runs the hooks
    on a project's files; skipped when PyPI cannot be reached."""
    pre_commit = Path(sys.executable).parent / "pre-commit"
    if not pre_commit.exists() or shutil.which("git") is None:
        pytest.skip("pre-commit or git is not installed")
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (project / "messy.dial").write_text(MESSY, encoding="utf-8")
    init_project("clean", parent=project)  # a formatted spec with its corpus inside the project
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PRE_COMMIT_COLOR": "never"}

    hook_repo = snapshot(tmp_path / "hooks")

    def try_repo(hook: str, *files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(pre_commit), "try-repo", str(hook_repo), hook, "--files", *files], cwd=project,
                              env=env, capture_output=True, text=True, timeout=900, check=False)

    first = try_repo("dialc-fmt", "clean/clean.dial")
    if first.returncode != 0 and NETWORK.search(first.stdout + first.stderr):
        pytest.skip(f"pre-commit could not install the hook from PyPI: {first.stdout[-300:]}")
    assert first.returncode == 0, first.stdout + first.stderr
    messy = try_repo("dialc-fmt", "messy.dial", "clean/clean.dial")
    assert messy.returncode == 1 and "+pipeline p { seed = 1 }" in messy.stdout, messy.stdout
    assert try_repo("dialc-validate", "clean/clean.dial").returncode == 0
    (project / "broken.dial").write_text("pipeline p { seed = }\n", encoding="utf-8")
    broken = try_repo("dialc-validate", "broken.dial")
    assert broken.returncode == 1 and "broken.dial:1:" in broken.stdout, broken.stdout

"""Issue 14: hostile spec, include and source paths → positioned messages, bounded memory, never a hang."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from dialc.frontend import run_frontend

pytestmark = pytest.mark.timeout(60)  # a FIFO or /dev/zero that is read blocks or grows until killed
SOURCE = 'source dialogues {{ path = "{path}"  roles = [agent, customer] }}\n'


def messages(spec: Path) -> list[str]:
    return [f"{d.code}: {d.message}" for d in run_frontend(spec).diags.items]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.dial"
    os.mkfifo(path)
    return path


def test_dev_zero_as_the_spec_is_refused_without_reading_it() -> None:
    found = messages(Path("/dev/zero"))
    assert found == ["file-error: /dev/zero is a character device, not a regular file"]


def test_a_fifo_as_the_spec_or_an_include_does_not_hang(tmp_path: Path, fifo: Path) -> None:
    assert messages(fifo) == [f"file-error: {fifo} is a FIFO (named pipe), not a regular file"]
    spec = tmp_path / "main.dial"
    spec.write_text('include "pipe.dial"\npipeline p { seed = 1 }\n')
    assert any("FIFO (named pipe), not a regular file" in m and m.startswith("include-error") for m in messages(spec))


def test_dev_zero_and_a_fifo_as_a_source_are_refused(tmp_path: Path, fifo: Path) -> None:
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    spec = tmp_path / "s.dial"
    spec.write_text("pipeline p { seed = 1 }\n" + SOURCE.format(path="pipe.dial"))
    assert any(m.startswith("missing-file: source") and "FIFO (named pipe), not a regular file" in m
               for m in messages(spec)), messages(spec)
    spec.write_text("pipeline p { seed = 1 }\n" + SOURCE.format(path="zero.jsonl"))
    assert any(m.startswith("outside-project") for m in messages(spec))  # it is /dev/zero, really
    allowed = [f"{d.code}: {d.message}" for d in run_frontend(spec, allow=[Path("/dev")]).diags.items]
    assert any(m.startswith("missing-file") and "character device, not a regular file" in m for m in allowed)


def test_a_symlink_loop_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "a.dial").symlink_to(tmp_path / "b.dial")
    (tmp_path / "b.dial").symlink_to(tmp_path / "a.dial")
    assert messages(tmp_path / "a.dial") == [f"file-error: cannot read {tmp_path / 'a.dial'}: a symbolic link loop"]
    spec = tmp_path / "main.dial"
    spec.write_text('include "a.dial"\npipeline p { seed = 1 }\n' + SOURCE.format(path="b.dial"))
    found = messages(spec)
    assert any(m.startswith("include-error") and "symbolic link loop" in m for m in found), found


@pytest.mark.parametrize(("shape", "bound", "size"), [("string", 32, 1_000_000), ("words", 250, 200_000),
                                                     ("tasks", 120, 200_000)])
def test_front_end_memory_is_bounded_per_byte_of_input(tmp_path: Path, shape: str, bound: int, size: int) -> None:
    """Issue 14: a 7 MB spec took 1.9 GB (a long string cost ~270 bytes of memory per byte); the ratio does
    not depend on the size, so small files (fast under tracemalloc) show it."""
    if shape == "string":
        text = ('pipeline p { seed = 1 }\ntask t { category = c  instruction = "' + "x" * size
                + '"  output = text(max = 9) }\n')
    elif shape == "words":
        text = "a " * (size // 2)  # the most tokens a file can hold
    else:
        one = 'task t{i} {{ category = c  instruction = "Summarise dialogue {i}."  output = text(max = 90) }}\n'
        text = "pipeline p { seed = 1 }\n" + "".join(one.format(i=i) for i in range(size // len(one.format(i=0))))
    spec = tmp_path / "big.dial"
    spec.write_text(text)
    tracemalloc.start()
    try:
        run_frontend(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / len(text) < bound, f"{peak / len(text):.0f} bytes of memory per byte of spec"


# -- what a spec may read: the project, and nothing of a file that is not a spec is ever shown ---------

def rendered(spec: Path, allow: list[Path] | None = None) -> str:
    from dialc.diagnostics import render_json, render_text

    diags = run_frontend(spec, allow=allow).diags
    return render_text(diags) + render_json(diags)


def test_includes_and_sources_outside_the_project_are_not_read(tmp_path: Path) -> None:
    """Issue 14: `include "../../../../etc/shadow"` printed its first line."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("root:$6$hash-of-the-password:19000::::::\n")
    project = tmp_path / "project"
    project.mkdir()
    spec = project / "main.dial"
    spec.write_text('include "../elsewhere/secret.txt"\npipeline p { seed = 1 }\n'
                    + SOURCE.format(path="../elsewhere/secret.txt"))
    text = rendered(spec)
    assert "hash-of-the-password" not in text and "outside the project" in text
    assert "include-error" in text
    allowed = rendered(spec, allow=[outside])
    assert "outside the project" not in allowed and "hash-of-the-password" not in allowed  # read, not shown


def test_a_file_that_is_not_a_spec_is_never_echoed(tmp_path: Path) -> None:
    """Issue 14: a `.env` include printed an API key in the syntax error's source line."""
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-live-0123456789abcdef\n")
    spec = tmp_path / "main.dial"
    spec.write_text('include ".env"\npipeline p { seed = 1 }\n')
    text = rendered(spec)
    assert "sk-live" not in text and "OPENAI_API_KEY" not in text
    assert ".env does not parse as a .dial spec (first error at line 1" in text
    typo = tmp_path / "typo.dial"
    typo.write_text("pipeline p { seed = = 1 }\n")
    assert "seed = = 1" in rendered(typo)  # a .dial file's own errors keep their source line


def test_a_csv_source_header_is_not_echoed_when_it_names_no_mapped_column(tmp_path: Path) -> None:
    """Issue 14: a CSV source's header (the first line of any file) was saved in run_results.json."""
    from dialc.plan import FieldMapping, IngestParams
    from dialc_runtime.steps.ingest import read_dialogues

    path = tmp_path / "keys.csv"
    path.write_text("sk-live-0123456789abcdef\nother\n")
    params = IngestParams(path=str(path), format="csv", fields=FieldMapping(), roles={"agent": ["agent"]})
    _, problems = read_dialogues(path, params)
    assert problems and "sk-live" not in " ".join(problems) and "names none of the mapped columns" in problems[0]


def test_allow_path_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "models.dial").write_text('model m { path = "builtin:smollm2-135m-instruct" }\n')
    (tmp_path / "project").mkdir()
    spec = tmp_path / "project" / "main.dial"
    spec.write_text('include "../shared/models.dial"\npipeline p { seed = 1 }\n')
    base = [sys.executable, "-m", "dialc", "validate", str(spec)]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "outside the project" in refused.stdout + refused.stderr
    allowed = subprocess.run([*base, "--allow-path", str(tmp_path / "shared")], capture_output=True, text=True,
                             timeout=60)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    compiled = subprocess.run([sys.executable, "-m", "dialc", "compile", str(spec), "--allow-path",
                               str(tmp_path / "shared")], capture_output=True, text=True, timeout=60)
    assert compiled.returncode == 0, compiled.stderr


def test_the_project_root_is_the_nearest_vcs_root_or_dialc_root_marker(tmp_path: Path) -> None:
    from dialc.security import project_root

    spec = tmp_path / "a" / "specs" / "x.dial"
    spec.parent.mkdir(parents=True)
    spec.write_text("")
    assert project_root(spec) == spec.parent.resolve()  # no marker: the spec's own folder
    (tmp_path / "a" / ".dialc-root").write_text("")
    assert project_root(spec) == (tmp_path / "a").resolve()
    (tmp_path / "a" / "specs" / ".git").mkdir()
    assert project_root(spec) == spec.parent.resolve()  # the nearest one wins
    repo = Path(__file__).resolve().parent.parent
    assert (repo / ".dialc-root").is_file()  # the repository's specs read ../data even in a copy without .git

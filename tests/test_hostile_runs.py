"""Issue 14: runs under stress → leftover attempt files, damaged stores, concurrent runs, failing servers."""

from __future__ import annotations

from pathlib import Path

from runtime_fakes import FakeRegistry, make_plan

from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.store import Store

FILES_PLAN = [("gen.a", {"n": 3}, []), ("files.f", {}, ["gen.a"])]


def run_fake(plan_steps: list, run_dir: Path, **kw: object) -> object:
    return execute(make_plan(plan_steps), run_dir, registry=FakeRegistry(), quiet=True, **kw)  # type: ignore[arg-type]


def digest_of(run_dir: Path, key: str) -> str:
    with Store(run_dir) as store:
        done = store.completed(key)
        assert done is not None
        return done.digest


def test_leftover_files_of_an_interrupted_attempt_are_not_part_of_the_output(tmp_path: Path) -> None:
    clean = run_fake(FILES_PLAN, tmp_path / "clean")
    key = clean.step("files.f").key  # type: ignore[attr-defined]
    run_fake(FILES_PLAN, tmp_path / "dirty", select=["gen.a"])
    layout = RunLayout(tmp_path / "dirty")
    layout.artifact_dir(key).mkdir(parents=True)  # what an attempt killed half-way left behind
    (layout.artifact_dir(key) / "partial.bin").write_bytes(b"half a file")
    (layout.artifact_dir(key) / "out.txt").write_text("stale")
    dirty = run_fake(FILES_PLAN, tmp_path / "dirty")
    assert dirty.step("files.f").status == "ok"  # type: ignore[attr-defined]
    assert sorted(p.name for p in layout.artifact_dir(key).iterdir()) == ["out.txt"]
    assert digest_of(tmp_path / "dirty", key) == digest_of(tmp_path / "clean", key)
    assert [p.name for p in layout.artifacts.iterdir() if p.name.startswith(key)] == [key]  # no staging left


# -- a failing server: transport failures are never final answers ------------------------------

def openai_project(root: Path, url: str, extra: str = "") -> Path:
    """The kit's pipeline with its model served by an OpenAI-compatible server at `url`."""
    from pipeline_kit import SPEC, write_project

    model = (f'model tiny {{{{ backend = openai  path = "test-model"  base_url = "{url}"  retries = 0  '
             f'timeout = 5  batch_size = 4  max_tokens = 48 {extra} }}}}')
    spec = SPEC.replace('model tiny {{ path = "{model}"  max_tokens = 48  batch_size = 4  temperature = 0.7 }}', model)
    return write_project(root, spec=spec)


def label_run(spec: Path, run_dir: Path) -> object:
    from pipeline_kit import run

    return run(spec, run_dir, select=["+label.labels"]).step("label.labels")


def server_on(port: int, *args: str) -> object:
    from test_backend_openai import Scripted

    return Scripted("--port", str(port), *args)


def chats(server: object) -> int:
    return sum(1 for b in server.stats()["bodies"] if "messages" in b)  # type: ignore[attr-defined]


def stored(run_dir: Path, key: str) -> tuple[int, bool]:
    with Store(run_dir) as store:
        return store.count(key), store.completed(key) is not None


def test_a_server_outage_is_not_cached_as_finished_labels(tmp_path: Path) -> None:
    """Issue 14: with every request failing, label ended ok with 0% valid and the next run reused that."""
    from test_backend_openai import free_port

    port = free_port()
    spec = openai_project(tmp_path, f"http://127.0.0.1:{port}/v1")
    down = server_on(port, "--fail-first", "1000")
    try:
        step = label_run(spec, tmp_path / "run")
    finally:
        down.close()  # type: ignore[attr-defined]
    assert step.status == "failed" and "every request of a batch" in step.message, step.message  # type: ignore[attr-defined]
    assert stored(tmp_path / "run", step.key) == (0, False)  # type: ignore[attr-defined]
    up = server_on(port)
    try:
        again = label_run(spec, tmp_path / "run")
        assert again.status == "ok" and chats(up) == 12  # type: ignore[attr-defined]
    finally:
        up.close()  # type: ignore[attr-defined]
    assert stored(tmp_path / "run", again.key) == (12, True)  # type: ignore[attr-defined]


def test_a_failure_share_over_max_failed_fails_and_the_rerun_asks_only_for_the_failed(tmp_path: Path) -> None:
    from test_backend_openai import free_port

    port = free_port()
    spec = openai_project(tmp_path, f"http://127.0.0.1:{port}/v1")
    flaky = server_on(port, "--fail-every", "3")  # 4 of 12: above the default max_failed = 0.2
    try:
        step = label_run(spec, tmp_path / "run")
    finally:
        flaky.close()  # type: ignore[attr-defined]
    assert step.status == "failed" and "4 of 12" in step.message and "max_failed" in step.message, step.message  # type: ignore[attr-defined]
    assert stored(tmp_path / "run", step.key) == (8, False)  # type: ignore[attr-defined]
    up = server_on(port)
    try:
        again = label_run(spec, tmp_path / "run")
        assert again.status == "ok" and chats(up) == 4  # type: ignore[attr-defined]
    finally:
        up.close()  # type: ignore[attr-defined]


def test_a_few_failures_leave_a_usable_output_and_the_next_run_fills_them_in(tmp_path: Path) -> None:
    from test_backend_openai import free_port

    port = free_port()
    spec = openai_project(tmp_path, f"http://127.0.0.1:{port}/v1")
    flaky = server_on(port, "--fail-every", "6")  # 2 of 12: within max_failed = 0.2
    try:
        step = label_run(spec, tmp_path / "run")
    finally:
        flaky.close()  # type: ignore[attr-defined]
    assert step.status == "ok" and step.records == 10, step.message  # type: ignore[attr-defined]
    assert any("2 of 12" in w and "no answer" in w for w in step.warnings), step.warnings  # type: ignore[attr-defined]
    up = server_on(port)
    try:
        again = label_run(spec, tmp_path / "run")
        assert again.status == "ok" and again.records == 12 and chats(up) == 2  # type: ignore[attr-defined]
        assert label_run(spec, tmp_path / "run").status == "cached"  # type: ignore[attr-defined]
    finally:
        up.close()  # type: ignore[attr-defined]


# -- damaged stores: explained, with a way out, never a traceback ----------------------------------

import os  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from dialc_runtime.engine.executor import status  # noqa: E402
from dialc_runtime.engine.lock import run_lock  # noqa: E402
from dialc_runtime.errors import RunLocked, StoreDamaged  # noqa: E402

GEN_PLAN = [("gen.a", {"n": 40}, []), ("map.b", {"salt": "x"}, ["gen.a"])]


def zero_header(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"\0" * 100)


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def garble_pages(path: Path) -> None:
    page = int.from_bytes(path.read_bytes()[16:18], "big") or 65536  # the page size in the header
    with path.open("r+b") as f:
        for number in range(1, path.stat().st_size // page):
            f.seek(number * page)
            f.write(b"\xa5" * page)


def checkpointed(run_dir: Path) -> Path:
    """The store with its WAL folded in, as it is on disk after a run."""
    path = RunLayout(run_dir).store
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.mark.parametrize("damage", [zero_header, truncate, garble_pages])
def test_a_damaged_store_is_explained_and_rebuilt(tmp_path: Path, damage: object) -> None:
    """Issue 14: a damaged store.sqlite gave tracebacks in `run` and `status`."""
    first = run_fake(GEN_PLAN, tmp_path)
    damage(checkpointed(tmp_path))  # type: ignore[operator]
    plan = make_plan(GEN_PLAN)
    with pytest.raises(StoreDamaged, match="--rebuild-store"):
        status(plan, tmp_path, registry=FakeRegistry())
    with pytest.raises(StoreDamaged, match="is damaged"):
        run_fake(GEN_PLAN, tmp_path)
    rebuilt = run_fake(GEN_PLAN, tmp_path, rebuild_store=True)
    assert rebuilt.ok and [s.status in ("ok", "cached") for s in rebuilt.steps] == [True, True]  # type: ignore[attr-defined]
    assert list(tmp_path.glob("store.sqlite.damaged-*"))
    assert digest_of(tmp_path, first.step("map.b").key) == digest_of(tmp_path, rebuilt.step("map.b").key)  # type: ignore[attr-defined]


def test_a_store_left_by_a_killed_run_is_checked_before_it_is_trusted(tmp_path: Path) -> None:
    run_fake(GEN_PLAN, tmp_path)
    garble_pages(checkpointed(tmp_path))
    RunLayout(tmp_path).lock.write_text("99999999")  # the PID of a run that never ended cleanly
    with pytest.raises(StoreDamaged, match="quick_check|malformed|damaged"):
        run_fake(GEN_PLAN, tmp_path)


def test_the_cli_explains_a_damaged_store_without_a_traceback(tmp_path: Path) -> None:
    from pipeline_kit import write_project

    spec = write_project(tmp_path)
    cli = [sys.executable, "-m", "dialc", "run", str(spec), "--select", "ingest.dialogues", "--quiet"]
    assert subprocess.run(cli, capture_output=True, timeout=120).returncode == 0
    zero_header(checkpointed(tmp_path / "runs" / "kit"))
    for args in (cli, [sys.executable, "-m", "dialc", "status", str(spec)]):
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "store.sqlite is damaged" in done.stderr and "--rebuild-store" in done.stderr
    fixed = subprocess.run([*cli, "--rebuild-store"], capture_output=True, text=True, timeout=120)
    assert fixed.returncode == 0, fixed.stderr


# -- two runs of one spec at once ------------------------------------------------------------------

def test_a_second_run_in_the_same_directory_is_refused_naming_the_first(tmp_path: Path) -> None:
    """Issue 14: the later run died on a UNIQUE constraint and the last to finish overwrote the results."""
    with run_lock(tmp_path), pytest.raises(RunLocked, match=f"PID {os.getpid()}"):
        run_fake(GEN_PLAN, tmp_path)
    assert run_fake(GEN_PLAN, tmp_path).ok  # type: ignore[attr-defined]


def test_result_files_are_written_atomically(tmp_path: Path) -> None:
    from dialc_runtime.engine.results import write_atomic

    target = tmp_path / "run_results.json"
    target.write_text("old")
    write_atomic(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["run_results.json"]


# -- Ctrl-C with a hung server ---------------------------------------------------------------------

import signal  # noqa: E402
import time  # noqa: E402


def stored_labels(run_dir: Path) -> int:
    with sqlite3.connect(RunLayout(run_dir).store) as db:
        return int(db.execute("SELECT COUNT(*) FROM records WHERE step_id = 'label.labels'").fetchone()[0])


def test_ctrl_c_with_a_hung_server_stops_at_once_and_keeps_every_finished_record(tmp_path: Path) -> None:
    """Issue 14: Ctrl-C with a hung server took 76 s to stop (timeout 40, retries 1)."""
    from test_backend_openai import free_port

    port = free_port()
    spec = openai_project(tmp_path, f"http://127.0.0.1:{port}/v1", extra="")
    spec.write_text(spec.read_text().replace("timeout = 5", "timeout = 40"))  # no retry: 6 answers stay 6
    server = server_on(port, "--hang-after", "6")  # 6 answers, then silence with the connections open
    proc = subprocess.Popen([sys.executable, "-m", "dialc", "run", str(spec), "--select", "+label.labels",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while chats(server) < 8 and time.monotonic() < deadline:  # 4 + 2 answered, 2 hanging
            time.sleep(0.1)
        time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        stopped = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()  # type: ignore[attr-defined]
    assert proc.returncode == 130, err
    assert stopped < 3.0, f"took {stopped:.1f} s to stop"
    assert stored_labels(tmp_path / "runs" / "kit") == 6  # the 2 answers of the batch in flight too


def test_a_second_ctrl_c_exits_at_once() -> None:
    script = ("import os, signal, time\n"
              "from dialc_runtime.engine.interrupt import interrupts\n"
              "with interrupts():\n"
              "    try:\n"
              "        os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
              "    except KeyboardInterrupt:\n"
              "        os.kill(os.getpid(), signal.SIGINT); time.sleep(30)  # a slow cleanup\n")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and time.monotonic() - start < 10, done.stderr
    assert "interrupted again" in done.stderr


# -- API keys: never in clear to another machine, never in a message ------------------------------

def test_a_key_echoed_by_the_server_is_redacted_everywhere(tmp_path: Path) -> None:
    """Issue 14: a server echoing the key in a 401 got it printed and saved in run_results.json and report.html."""
    from test_backend_openai import free_port

    secret = "sk-wrong-0123456789abcdef"
    port = free_port()
    spec = openai_project(tmp_path, f"http://127.0.0.1:{port}/v1", extra='api_key_env = "DIALC_TEST_KEY"')
    server = server_on(port, "--api-key", "sk-right", "--echo-key")
    try:
        done = subprocess.run([sys.executable, "-m", "dialc", "run", str(spec), "--select", "+label.labels"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "DIALC_TEST_KEY": secret, "COLUMNS": "200"})
    finally:
        server.close()  # type: ignore[attr-defined]
    run_dir = tmp_path / "runs" / "kit"
    assert done.returncode == 1 and "HTTP 401" in done.stdout + done.stderr, done.stderr
    assert f"the API key in $DIALC_TEST_KEY is sent to 127.0.0.1:{port} (http)" in done.stderr
    for text in (done.stdout, done.stderr, (run_dir / "run_results.json").read_text(),
                 (run_dir / "report.html").read_text()):
        assert secret not in text
    assert "Authorization: [REDACTED]" in done.stdout + done.stderr  # what the server said, minus the key


def test_redaction_of_keys_and_authorization_values() -> None:
    from dialc_runtime.secrets import redact, register

    register("sk-registered-key-42")
    text = 'bad key sk-registered-key-42; "Authorization": "Bearer abc.def-123" and authorization=Basic Zm9vOmJhcg=='
    assert redact(text) == ('bad key [REDACTED]; "Authorization": "[REDACTED]" and authorization=[REDACTED]')


def test_a_key_is_never_sent_in_clear_to_another_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from dialc_runtime.models.openai_backend import BackendUnavailable, OpenAIBackend

    monkeypatch.setenv("DIALC_TEST_KEY", "sk-test-key-0000")
    remote = {"base_url": "http://10.0.0.7:8000/v1", "path": "m", "api_key_env": "DIALC_TEST_KEY"}
    with pytest.raises(BackendUnavailable, match="sent in clear .* 10.0.0.7.*allow_insecure"):
        OpenAIBackend(remote)
    OpenAIBackend({**remote, "allow_insecure": True}).close()
    OpenAIBackend({**remote, "base_url": "https://10.0.0.7/v1"}).close()
    OpenAIBackend({**remote, "base_url": "http://127.0.0.1:8000/v1"}).close()  # this machine


# -- judges: a server error is no verdict ----------------------------------------------------------

def test_a_judge_never_stores_a_server_outage_as_verdicts() -> None:
    from dialc_runtime.errors import StepFailed
    from dialc_runtime.models.base import GenResult
    from dialc_runtime.models.openai_backend import BackendUnavailable
    from dialc_runtime.quality.judge import judge_choice, judge_expected

    class Down:
        def generate(self, requests: list) -> list:
            raise BackendUnavailable("cannot reach http://127.0.0.1:1/v1: connection refused")

        def loglikelihood(self, requests: list) -> list:
            raise BackendUnavailable("cannot reach http://127.0.0.1:1/v1: connection refused")

    class Failing:
        def generate(self, requests: list) -> list:
            return [GenResult(text="", ok=False, error="HTTP 500", transport=True) for _ in requests]

    spec = type("Spec", (), {"values": [1, 2, 3], "max_tokens": 4, "lo": 1, "hi": 3})()
    prompts = [({"role": "user", "content": "rate"},)]
    with pytest.raises(StepFailed, match="cannot reach"):
        judge_choice(Down(), spec, prompts, [0])  # type: ignore[arg-type]
    with pytest.raises(StepFailed, match="cannot reach"):
        judge_expected(Down(), spec, prompts)  # type: ignore[arg-type]
    with pytest.raises(StepFailed, match="no answer"):
        judge_choice(Failing(), spec, prompts, [0])  # type: ignore[arg-type]

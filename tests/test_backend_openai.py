"""OpenAIBackend against real servers: tests/openai_server.py (scripted), `transformers serve`."""

from __future__ import annotations

import math
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from dialc_runtime.models import BACKENDS, clear_backends, get_backend
from dialc_runtime.models.base import Constraint, GenRequest, ScoreRequest
from dialc_runtime.models.openai_backend import BackendUnavailable, OpenAIBackend, ScoringUnsupported
from dialc_runtime.models.validation import schema_errors

SERVER = Path(__file__).with_name("openai_server.py")
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
          "additionalProperties": False}
YES_NO = Constraint(kind="choice", options=("yes", "no"))


def ask(text: str, constraint: Constraint | None = None, **kw: Any) -> GenRequest:
    return GenRequest(messages=({"role": "user", "content": text},),
                      constraint=constraint or Constraint(), **kw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen) -> None:
    """End a server process this test started (terminate, then kill)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float, log: Path | None = None) -> None:
    """Poll GET `url` until it answers 200; fail with the server's log if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log else ""
            pytest.fail(f"server exited with {proc.returncode} before it was ready:\n{tail}")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(proc)
    pytest.fail(f"server at {url} not ready after {timeout:g} s")


class Scripted:
    """A running tests/openai_server.py: its base URL and what it received."""

    def __init__(self, *args: str, timeout: float = 20) -> None:
        # the server's stderr (model loading is chatty); closed by close()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, str(SERVER), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            stop(self.proc)
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-2000:]
            pytest.fail(f"test server did not start: {line!r}\n{tail}")
        self.root = f"http://127.0.0.1:{int(line.split()[1])}"
        self.url = f"{self.root}/v1"
        wait_ready(f"{self.root}/health", self.proc, timeout)

    def close(self) -> None:
        stop(self.proc)
        self.log.close()

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.root}/stats", trust_env=False).json())

    def backend(self, **cfg: Any) -> OpenAIBackend:
        return OpenAIBackend({"base_url": self.url, "path": "test-model", **cfg})


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    """Start scripted servers on free ports; every one is stopped when the test ends."""
    started: list[Scripted] = []

    def start(*args: str, **kw: Any) -> Scripted:
        started.append(Scripted(*args, **kw))
        return started[-1]

    yield start
    for server in started:
        server.close()


# -- scripted server: validation, retries, constraints, batching, errors ----------------------


def test_registered_as_openai_backend(scripted: Callable[..., Scripted]) -> None:
    server = scripted()
    clear_backends()
    try:
        backend = get_backend({"backend": "openai", "base_url": server.url, "path": ""})
        assert "openai" in BACKENDS and isinstance(backend, OpenAIBackend)
        assert backend.generate([ask("hi")])[0].text == "ok"
        assert backend.model == "test-model"  # no path: the server's first listed model
    finally:
        clear_backends()


def test_json_request_sends_schema_and_validates(scripted: Callable[..., Scripted]) -> None:
    server = scripted("--reply", '{"a": 1}')
    result = server.backend().generate([ask("q", Constraint(kind="json", schema=SCHEMA))])[0]
    assert (result.ok, result.value, result.attempts, result.error) == (True, {"a": 1}, 1, None)
    body = server.stats()["bodies"][0]
    assert body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA, "strict": True}}
    assert (body["model"], body["seed"], body["temperature"]) == ("test-model", 0, 0.0)
    assert server.stats()["headers"][0]["authorization"] == "Bearer EMPTY"


def test_invalid_output_is_retried_with_a_new_seed(scripted: Callable[..., Scripted]) -> None:
    server = scripted("--reply", "not json", "--reply", '{"a": "x"}', "--reply", '{"a": 2}')
    backend = server.backend(retries=2)
    result = backend.generate([ask("q", Constraint(kind="json", schema=SCHEMA), seed=7)])[0]
    assert (result.ok, result.value, result.attempts) == (True, {"a": 2}, 3)
    assert (result.prompt_tokens, result.completion_tokens) == (3, 6)  # summed over attempts
    bodies = server.stats()["bodies"]
    assert len({b["seed"] for b in bodies}) == 3 and bodies[0]["seed"] == 7
    assert [b["temperature"] for b in bodies] == [0.0, 0.7, 0.7]  # greedy retries sample


def test_retries_exhausted_returns_reason(scripted: Callable[..., Scripted]) -> None:
    server = scripted("--reply", "{not json")
    json_request = ask("q", Constraint(kind="json", schema=SCHEMA))
    result = server.backend(retries=1).generate([json_request])[0]
    assert (result.ok, result.attempts, result.text) == (False, 2, "{not json")
    assert result.error is not None and result.error.startswith("invalid JSON")
    schema_bad = scripted("--reply", '{"a": 1, "b": 2}').backend(retries=0)
    result = schema_bad.generate([ask("q", Constraint(kind="json", schema=SCHEMA))])[0]
    assert not result.ok and "unexpected field 'b'" in str(result.error)


def test_truncated_output_is_not_ok(scripted: Callable[..., Scripted]) -> None:
    server = scripted("--reply", "one two three four five")
    result = server.backend(retries=0).generate([ask("q", max_tokens=2)])[0]
    assert (result.ok, result.text) == (False, "one two")
    assert str(result.error).startswith("truncated: max_tokens=2")


def test_choice_enforced_by_a_server_that_supports_it(scripted: Callable[..., Scripted]) -> None:
    server = scripted("--reply", "maybe")
    for guided, field in [("structured_outputs",) * 2, ("guided", "guided_choice")]:
        result = server.backend(guided=guided).generate([ask(f"q {guided}", YES_NO)])[0]
        assert (result.ok, result.value, result.attempts) == (True, "yes", 1)
        assert field in server.stats()["bodies"][-1]
    result = server.backend(guided="none").generate([ask("plain", YES_NO)])[0]
    assert (result.ok, result.attempts) == (False, 3)  # "maybe" each time: validated, retried
    assert "not one of the options" in str(result.error)


def test_refused_constraint_falls_back_and_is_remembered(scripted: Callable[..., Scripted]) -> None:
    server = scripted("--reply", " no\n", "--reject-fields", "structured_outputs")
    backend = server.backend()
    first = backend.generate([ask("q1", YES_NO)])[0]
    assert (first.ok, first.value, first.attempts) == (True, "no", 1)  # whitespace stripped
    assert backend.unsupported == {"structured_outputs"}
    second = backend.generate([ask("q2", YES_NO), ask("q3", YES_NO)])
    assert all(r.ok for r in second)
    sent = [("structured_outputs" in b) for b in server.stats()["bodies"]]
    assert sent == [True, False, False, False]  # refused once, then never sent again


def test_batch_of_8_runs_concurrently_in_order(scripted: Callable[..., Scripted]) -> None:
    # 3 s a request: on a loaded machine starting eight requests can take more than one second
    server = scripted("--latency", "3.0", "--reply", "done")
    requests = [ask(f"question {i}", seed=i) for i in range(8)]
    results = server.backend(batch_size=8).generate(requests)
    assert [r.text for r in results] == ["done"] * 8
    stats = server.stats()
    assert stats["peak"] == 8  # all eight in flight at once
    assert sorted(b["seed"] for b in stats["bodies"]) == list(range(8))
    limited = scripted("--latency", "0.3")
    limited.backend(batch_size=3).generate(requests)
    assert limited.stats()["peak"] == 3  # batch_size bounds the requests in flight


def test_http_500_is_retried_and_counted(scripted: Callable[..., Scripted]) -> None:
    server = scripted("--fail-first", "1", "--reply", "fine")
    result = server.backend(retries=2).generate([ask("q")])[0]
    assert (result.ok, result.text, result.attempts) == (True, "fine", 2)
    broken = scripted("--fail-first", "100").backend(retries=1)
    result = broken.generate([ask("q")])[0]
    assert (result.ok, result.attempts) == (False, 2)
    assert result.error == f"HTTP 500 from {broken.base_url}/chat/completions: injected failure"


def test_server_down_fails_with_a_clear_message() -> None:
    port = free_port()  # nothing listens there
    backend = OpenAIBackend({"base_url": f"http://127.0.0.1:{port}/v1", "path": "m"})
    with pytest.raises(BackendUnavailable) as info:
        backend.generate([ask("q") for _ in range(3)])
    assert str(info.value) == (
        f"cannot reach http://127.0.0.1:{port}/v1: connection refused — is the server running?")
    with pytest.raises(BackendUnavailable, match="cannot reach"):
        backend.loglikelihood([ScoreRequest(continuation="x", prefix="y")])


def test_timeout_becomes_a_message(scripted: Callable[..., Scripted]) -> None:
    server = scripted("--latency", "2")
    result = server.backend(timeout=0.5, retries=1).generate([ask("q")])[0]
    assert (result.ok, result.attempts) == (False, 2)
    assert result.error == (f"no answer from {server.url}/chat/completions within 0.5 s "
                            "(raise the model's `timeout` for a slow server)")


def test_api_key_and_url_mistakes(scripted: Callable[..., Scripted],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server = scripted("--api-key", "s3cret")
    monkeypatch.setenv("DIALC_TEST_KEY", "s3cret")
    assert server.backend(api_key_env="DIALC_TEST_KEY").generate([ask("q")])[0].ok
    monkeypatch.setenv("DIALC_TEST_KEY", "wrong")
    with pytest.raises(BackendUnavailable, match="HTTP 401 .*invalid API key — check the API key"):
        server.backend(api_key_env="DIALC_TEST_KEY").generate([ask("q")])
    with pytest.raises(BackendUnavailable, match=r"\$DIALC_UNSET_KEY, which is not set"):
        server.backend(api_key_env="DIALC_UNSET_KEY")
    monkeypatch.setenv("DIALC_TEST_KEY", "s3cret")
    no_v1 = OpenAIBackend({"base_url": server.root, "path": "m", "api_key_env": "DIALC_TEST_KEY"})
    with pytest.raises(BackendUnavailable, match="HTTP 404 .*does base_url end in /v1"):
        no_v1.generate([ask("q")])


def test_scoring_unsupported_is_a_clear_error(scripted: Callable[..., Scripted]) -> None:
    backend = scripted().backend()  # no --model: /v1/completions refuses echo scoring
    with pytest.raises(ScoringUnsupported, match="cannot score text: .*HTTP 400") as info:
        backend.loglikelihood([ScoreRequest(continuation=" b", prefix="a")])
    assert isinstance(info.value, NotImplementedError)
    with pytest.raises(ScoringUnsupported):  # remembered: no second round trip
        backend.loglikelihood([ScoreRequest(continuation=" b", prefix="a")])
    with pytest.raises(ScoringUnsupported, match="needs the model's chat template"):
        scripted().backend().loglikelihood([ScoreRequest(continuation="x", messages=(
            {"role": "user", "content": "q"},))])


# -- real log-probabilities: the scripted server scoring with the tiny model ------------------


@pytest.fixture(scope="module")
def scoring_server(tiny_model_dir: Path) -> Iterator[Scripted]:
    server = Scripted("--model", str(tiny_model_dir), "--name", str(tiny_model_dir), timeout=120)
    yield server
    server.close()


@pytest.mark.slow
def test_loglikelihood_matches_transformers_backend(scoring_server: Scripted,
                                                    tiny_model_dir: Path) -> None:
    from dialc_runtime.models.transformers_backend import TransformersBackend

    chat = ({"role": "user", "content": "Rate it from 1 to 5."},)
    requests = [ScoreRequest(continuation=" Paris", prefix="The capital of France is"),
                ScoreRequest(continuation=" no", prefix="Is it raining? The answer is"),
                *[ScoreRequest(continuation=str(v), messages=chat) for v in range(1, 7)]]
    backend = scoring_server.backend(path=str(tiny_model_dir), batch_size=8)
    got = backend.loglikelihood(requests)
    local = TransformersBackend({"path": str(tiny_model_dir), "device": "cpu"})
    want = local.loglikelihood(requests)
    assert all(math.isfinite(x) and x < 0 for x in got)
    assert got == pytest.approx(want, abs=1e-3)
    assert scoring_server.stats()["peak"] >= 1


# -- `transformers serve`: the real third-party server with the tiny model --------------------


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`transformers serve` on a free port, offline, serving the tiny model; stopped afterwards."""
    for module in ("fastapi", "uvicorn", "openai"):
        pytest.importorskip(module, reason="transformers serve needs transformers[serving]")
    port, log = free_port(), tmp_path_factory.mktemp("serve") / "serve.log"
    command = [sys.executable, "-c", "from transformers.cli.transformers import main; main()",
               "serve", str(tiny_model_dir), "--host", "127.0.0.1", "--port", str(port),
               "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", proc, 180, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


def served_backend(url: str, model_dir: Path, **cfg: Any) -> OpenAIBackend:
    return OpenAIBackend({"base_url": url, "path": str(model_dir), "retries": 2, **cfg})


@pytest.mark.slow
def test_transformers_serve_json_is_validated(served: str, tiny_model_dir: Path) -> None:
    backend = served_backend(served, tiny_model_dir)
    result = backend.generate([ask("Give a JSON object.", Constraint(kind="json", schema=SCHEMA),
                                   max_tokens=8)])[0]
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    if result.ok:  # the server ignores response_format; a random model almost never gets here
        assert schema_errors(result.value, SCHEMA) == []
    else:
        assert result.attempts == 3
        assert str(result.error).startswith(("invalid JSON", "truncated", "schema violation"))


@pytest.mark.slow
def test_transformers_serve_choice_falls_back(served: str, tiny_model_dir: Path) -> None:
    backend = served_backend(served, tiny_model_dir, retries=0)
    results = backend.generate([ask("Yes or no?", YES_NO, max_tokens=4)] * 2)
    assert backend.unsupported == {"structured_outputs"}  # HTTP 422 "Unexpected fields"
    assert results[0].text == results[1].text  # greedy, same seed
    for result in results:
        assert result.ok == (result.value in ("yes", "no"))
        assert result.ok or str(result.error).startswith(("not one of the options", "truncated"))


@pytest.mark.slow
def test_transformers_serve_batch_and_errors(served: str, tiny_model_dir: Path) -> None:
    backend = served_backend(served, tiny_model_dir, batch_size=8)
    requests = [ask(f"Say something about {i % 4}.", max_tokens=4, seed=i % 4) for i in range(8)]
    results = backend.generate(requests)
    assert len(results) == 8 and all(r.completion_tokens > 0 for r in results)
    assert [r.text for r in results[:4]] == [r.text for r in results[4:]]  # same request, same text
    broken = GenRequest(messages=({"content": "no role"},), max_tokens=2)  # server raises → 500
    result = backend.generate([broken])[0]
    assert (result.ok, result.attempts) == (False, 3)
    assert str(result.error).startswith(f"HTTP 500 from {served}/chat/completions")
    with pytest.raises(ScoringUnsupported, match="cannot score text"):
        backend.loglikelihood([ScoreRequest(continuation=" b", prefix="a")])


def test_a_model_without_a_timeout_gets_the_default() -> None:
    """A spec that sets no `timeout` compiles to timeout None; the backend must not crash on it."""
    from dialc.plan import ModelSpec

    spec = ModelSpec(name="served", backend="openai", path="m", base_url="http://127.0.0.1:9/v1")
    assert spec.config().get("timeout", None) is None
    assert OpenAIBackend(spec.config()).timeout == 120.0

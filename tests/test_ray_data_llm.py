"""--engine ray through ray.data.llm (engine/ray_llm.py): the HTTP route against a real test server gives the
local engine's records and sends the very same request bodies; the vLLM route's processor config and sampling
parameters are built from the plan's model and constraint (vLLM itself is not installed here: never run);
a vllm model is refused, with where the spec declares it, by an engine that cannot run it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_kit import SPEC, compile_spec, write_project
from typer.testing import CliRunner

from dialc.cli import app
from dialc.plan import LabelParams, Plan, resolve_paths
from dialc_runtime.data.seeds import attempt_seed
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.results import RunResults
from dialc_runtime.engine.store import Store
from dialc_runtime.errors import StepFailed
from dialc_runtime.models.base import Constraint, GenRequest, GenResult
from dialc_runtime.models.generation import json_request
from dialc_runtime.models.openai_backend import validate_choice

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data.llm")

from dialc_runtime.engine.ray_engine import RayEngine  # noqa: E402
from dialc_runtime.engine.ray_llm import request_row, vllm_route  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "openai_server.py"
JUDGE = ('dimension helpful judge {{ model = tiny  rubric = "Is it helpful?"  method = choice }}'
         '\n  keep when score >= 0')
OPENAI_MODEL = ('model tiny {{ backend = openai  path = "served"  base_url = "{model}"  max_tokens = 48  '
                'batch_size = 4  temperature = 0.7 }}')
VLLM_MODEL = 'model tiny {{ backend = vllm  path = "{model}"  max_tokens = 48  batch_size = 4  temperature = 0.7 }}'
KIT_MODEL = 'model tiny {{ path = "{model}"  max_tokens = 48  batch_size = 4  temperature = 0.7 }}'


def spec_with(model_line: str) -> str:
    return SPEC.replace(KIT_MODEL, model_line).replace("keep when score >= 0", JUDGE)


@pytest.fixture
def server() -> Iterator[Any]:
    """A factory of test servers (tests/openai_server.py) whose answers quote the prompt and the seed, so
    every record depends on the request's seed; killed at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start() -> str:
        proc = subprocess.Popen([sys.executable, str(SERVER), "--port", "0", "--echo-prompt", "--name", "served"],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        return f"http://127.0.0.1:{int(line.split()[1])}"

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def bodies(url: str) -> list[str]:
    """The chat request bodies a server received, sorted (their order depends on scheduling)."""
    with urllib.request.urlopen(f"{url}/stats") as answer:
        stats = json.loads(answer.read())
    return sorted(json.dumps(b, sort_keys=True) for b in stats["bodies"])


def digests(run_dir: Path, results: RunResults) -> dict[str, Any]:
    with Store(run_dir) as store:
        done = {s.id: store.completed(s.key or "") for s in results.steps}
    return {step_id: c.digest if c else None for step_id, c in done.items()}


@pytest.mark.slow
def test_http_route_gives_the_records_and_requests_of_the_local_openai_backend(tmp_path: Path, server: Any) -> None:
    """The same spec against two identical servers: the local engine (openai backend) and the Ray engine with
    the model's generation as Ray Data jobs (HttpRequestProcessor). The JSON tasks' answers are invalid (the
    server echoes text), so their retries with the next attempts' seeds are compared too."""
    local_url, data_url = server(), server()
    local_plan = compile_spec(write_project(tmp_path / "a", model=f"{local_url}/v1", count=12,
                                            spec=spec_with(OPENAI_MODEL)))
    data_plan = compile_spec(write_project(tmp_path / "b", model=f"{data_url}/v1", count=12,
                                           spec=spec_with(OPENAI_MODEL)))
    local = execute(local_plan, tmp_path / "local", quiet=True)
    assert local.ok, [(s.id, s.message) for s in local.steps]

    os.environ["RAY_DISABLE_USAGE_STATS"] = "1"
    engine = RayEngine(init={"num_cpus": 2}, http_data={"tiny"})
    try:
        out = execute(data_plan, tmp_path / "data", quiet=True, engine=engine)
        jobs = sum(b.jobs for b in engine.data_backends.values())
        pools = len(engine.pools)
        # a server that is down: the job fails, and so does the step, with a message (not a traceback)
        params = data_plan.step("label.labels").params
        assert isinstance(params, LabelParams)
        down = {**params.model.config(), "base_url": "http://127.0.0.1:9/v1", "retries": 0}
        with pytest.raises(StepFailed, match=r"model 'tiny': a Ray Data job .* failed: a request got no answer"):
            engine.data_backend(down).generate([GenRequest(({"role": "user", "content": "hello"},))])
    finally:
        engine.close()
    assert out.ok, [(s.id, s.message) for s in out.steps]
    assert jobs >= 3 and pools == 0  # label (and its retries) and the judge ran as Ray Data jobs, on no actor
    assert out.step("label.labels").model_calls == local.step("label.labels").model_calls > 0
    assert out.step("score.helpful").model_calls == local.step("score.helpful").model_calls > 0
    assert digests(tmp_path / "data", out) == digests(tmp_path / "local", local)
    local_bodies = bodies(local_url)
    assert len(local_bodies) > 12 and bodies(data_url) == local_bodies  # seeds, retries, constraint fields


def _vllm_plan(tmp_path: Path) -> Plan:
    model_dir = tmp_path / "weights"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}", encoding="utf-8")
    return compile_spec(write_project(tmp_path, model="weights", count=4, spec=spec_with(VLLM_MODEL)))


def test_vllm_route_config_and_sampling_params_come_from_the_plan(tmp_path: Path) -> None:
    """Never run against vLLM (not installed here): what the processor would be given."""
    already = "vllm" in sys.modules
    plan = _vllm_plan(tmp_path)
    params = plan.step("label.labels").params
    assert isinstance(params, LabelParams)
    model = resolve_paths(params, plan.spec_dir()).model.config()  # as the executor hands it to the step
    assert model["backend"] == "vllm"
    route = vllm_route(model, workers=3)
    config = route.config
    assert type(config).__name__ == "vLLMEngineProcessorConfig"
    assert config.model_source == str(tmp_path / "weights")  # resolved against the spec's folder
    assert config.concurrency == 3 and config.batch_size == 4 and config.should_continue_on_error
    assert config.engine_kwargs["enable_prefix_caching"] is True

    schema = {"type": "object", "properties": {"budget": {"type": ["integer", "null"]}}, "required": ["budget"]}
    messages = [{"role": "user", "content": "Extract the budget."}]
    cases = [
        (json_request(messages, schema, params.model, seed=11), {"json": json.dumps(schema, sort_keys=True)}),
        (GenRequest(tuple(messages), Constraint(kind="choice", options=("yes", "no")), 48, 0.7, 1.0, 12),
         {"choice": ["yes", "no"]}),
        (GenRequest(tuple(messages), Constraint(kind="regex", pattern="[0-9]+"), 48, 0.0, 1.0, 13),
         {"regex": "[0-9]+"}),
        (GenRequest(tuple(messages), Constraint(kind="text", max_chars=80), 48, 0.7, 1.0, 14), None),
    ]
    # what the processor's stages require of a row (Ray 2.60's chat template and vLLM engine stages)
    from ray.llm._internal.batch.stages import ChatTemplateStage, vLLMEngineStage

    chat = ChatTemplateStage(fn_constructor_kwargs={"model": "x"}, map_batches_kwargs={})
    engine = vLLMEngineStage(fn_constructor_kwargs={"model": "x", "engine_kwargs": {}, "task_type": "generate"},
                             map_batches_kwargs={})
    required = {*chat.get_required_input_keys(), *engine.get_required_input_keys()}
    assert required == {"messages", "sampling_params"}
    for request, structured in cases:
        for attempt in (0, 1):
            row = request_row(5, request, attempt, retry_temperature=0.7)
            stage = route.stage_input(json.loads(row["request"]))
            assert required <= set(stage)
            sampling = stage["sampling_params"]
            assert stage["messages"] == messages
            assert sampling["seed"] == attempt_seed(request.seed, attempt)
            assert sampling["max_tokens"] == 48 and sampling["top_p"] == 1.0
            assert sampling["temperature"] == (0.7 if attempt or request.temperature else 0.0)
            assert sampling.get("structured_outputs") == structured

    # the engine's output row → a chat choice, validated as the openai backend validates one
    request = cases[1][0]
    full = route.answer({"generated_text": "yes", "num_generated_tokens": 48, "num_input_tokens": 9},
                        json.loads(request_row(0, request, 0, 0.7)["request"]))
    short = route.answer({"generated_text": "yes", "num_generated_tokens": 1, "num_input_tokens": 9},
                         json.loads(request_row(0, request, 0, 0.7)["request"]))
    assert full["choice"]["finish_reason"] == "length" and short["choice"]["finish_reason"] == "stop"
    assert short["usage"] == {"prompt_tokens": 9, "completion_tokens": 1}
    result = GenResult(text="", ok=False)
    validate_choice(request, short["choice"], result)
    assert result.ok and result.value == "yes"
    assert already or "vllm" not in sys.modules  # building the config imports no vLLM


def test_a_vllm_model_is_refused_where_it_cannot_run(tmp_path: Path) -> None:
    spec = _vllm_plan(tmp_path).spec
    line = next(i for i, text in enumerate(Path(spec).read_text().splitlines(), 1) if text.startswith("model tiny"))
    result = CliRunner().invoke(app, ["run", spec, "--quiet"])
    assert result.exit_code == 2, result.output
    assert f"{spec}:{line}: model 'tiny' has backend = vllm" in result.stderr and "--engine ray" in result.stderr
    assert "Traceback" not in result.output
    if importlib.util.find_spec("vllm") is None:
        result = CliRunner().invoke(app, ["run", spec, "--quiet", "--engine", "ray"])
        assert result.exit_code == 2, result.output
        assert f"{spec}:{line}:" in result.stderr and "pip install vllm" in result.stderr

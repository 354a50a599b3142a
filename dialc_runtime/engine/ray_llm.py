"""`--engine ray`: a model's generation as Ray Data jobs through `ray.data.llm` — vLLM engines or a server.

A model with `backend = vllm` is served by vLLM engines that Ray Data starts (`vLLMEngineProcessorConfig`,
`--workers` engines, default one per GPU of the cluster); the HTTP variant sends the same requests to an
OpenAI-compatible server (`HttpRequestProcessorConfig`; `RayEngine(http_data={model name})`). One code
path: the step runs on the driver as under the local engine (its requests, seeds, records, store
transactions, resume and cache are the local engine's); each call of its backend (`DataBackend`) becomes
a dataset of requests, which the processor answers, and the answers come back to the driver, which
validates them as the openai backend does (models/openai_backend.py `validate_choice`) and asks again for
invalid ones with the next attempt's seed. What differs between the two is a `Route`: the processor's
config, a request's input for the processor's stage, and the stage's output as a chat-completion choice.

Rows carry requests and answers as JSON strings: Ray Data stores rows as Arrow tables, which would merge
different JSON schemas of one block into one struct (adding null keys to each). For the same reason the
HTTP route sends each request's own body bytes (`RawBodySession`) and hands back the server's answer as
text. Ray is imported only when a job runs; vLLM only in the engines (`ray.data.llm`'s stage).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dialc_runtime.errors import StepFailed
from dialc_runtime.models.base import Constraint, GenRequest, GenResult
from dialc_runtime.models.openai_backend import (
    DEFAULT_BASE_URL,
    TRANSIENT,
    chat_body,
    constraint_fields,
    validate_choice,
)

PAGE = 4096  # requests per Ray Data job: a judge's page, a label step's chunk (vLLM engines start once per job)


@dataclass(frozen=True)
class Route:
    """What differs between vLLM engines and an HTTP server (see the module docstring)."""

    kind: str  # "vllm" or "http"
    config: Any  # the ray.data.llm processor config
    stage_input: Callable[[dict[str, Any]], dict[str, Any]]  # a request (row["request"], decoded) → stage input
    answer: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]  # (stage output row, request) → answer


# -- the request every route starts from -----------------------------------------------------------

def request_row(index: int, request: GenRequest, attempt: int, retry_temperature: float) -> dict[str, Any]:
    """A dataset row: the request's index and attempt `attempt` of it as an OpenAI chat body (its seed
    `attempt_seed(seed, attempt)`, as the openai backend sends it), with its constraint, as JSON."""
    body = chat_body(request, attempt, "", retry_temperature)
    c = request.constraint
    constraint = {"kind": c.kind, "schema": c.schema, "pattern": c.pattern, "options": list(c.options)}
    return {"i": index, "request": json.dumps({"body": body, "constraint": constraint})}


def sampling_params(body: dict[str, Any], constraint: dict[str, Any]) -> dict[str, Any]:
    """vLLM SamplingParams of a chat body; the constraint as `structured_outputs` (guided decoding: a JSON
    schema as its text, a choice's options, a regex); free text is bounded by max_tokens and validated after."""
    params = {k: body[k] for k in ("temperature", "top_p", "max_tokens", "seed")}
    kind = constraint.get("kind")
    if kind == "json" and constraint.get("schema") is not None:
        params["structured_outputs"] = {"json": json.dumps(constraint["schema"], sort_keys=True)}
    elif kind == "choice" and constraint.get("options"):
        params["structured_outputs"] = {"choice": list(constraint["options"])}
    elif kind == "regex" and constraint.get("pattern"):
        params["structured_outputs"] = {"regex": str(constraint["pattern"])}
    return params


# -- routes ------------------------------------------------------------------------------------------

def vllm_route(model: dict[str, Any], workers: int) -> Route:
    """vLLM engines (`workers` of them, one GPU each) loading the model's `path` (a builtin or GGUF model as
    the HF directory it converts to, as for the transformers backend)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    from dialc_runtime.models.locate import resolve_model

    config = vLLMEngineProcessorConfig(
        model_source=str(resolve_model(str(model["path"]))),
        engine_kwargs={"enable_prefix_caching": True},  # dialc's prompts share their instructions and dialogue
        concurrency=max(1, workers),
        batch_size=max(1, int(model.get("batch_size") or 8)),
        should_continue_on_error=True,  # a request that fails is a failed answer, not a failed job
    )

    def stage_input(request: dict[str, Any]) -> dict[str, Any]:
        return {"messages": request["body"]["messages"],
                "sampling_params": sampling_params(request["body"], request["constraint"])}

    def answer(row: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        generated = int(row.get("num_generated_tokens") or 0)
        # the stage reports no finish reason: an answer that used every token it was allowed ran out of them
        finish = "length" if generated >= int(request["body"]["max_tokens"]) else "stop"
        return {"choice": {"message": {"content": str(row.get("generated_text") or "")}, "finish_reason": finish},
                "usage": {"prompt_tokens": int(row.get("num_input_tokens") or 0), "completion_tokens": generated}}

    return Route("vllm", config, stage_input, answer)


def http_route(model: dict[str, Any], workers: int, headers: dict[str, str]) -> Route:
    """An OpenAI-compatible server's /chat/completions (`workers` request actors), bodies as the openai
    backend sends them (constraint fields per the model's `guided`)."""
    from ray.data.llm import HttpRequestProcessorConfig

    base_url = str(model.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    served, guided = str(model.get("path") or ""), str(model.get("guided", "structured_outputs"))
    config = HttpRequestProcessorConfig(
        url=f"{base_url}/chat/completions", headers=headers, concurrency=max(1, workers),
        batch_size=max(1, int(model.get("batch_size") or 8)), max_retries=max(0, int(model.get("retries", 2))),
        base_retry_wait_time_in_s=0.25, session_factory=RawBodySession,
    )

    def stage_input(request: dict[str, Any]) -> dict[str, Any]:
        constraint = Constraint.from_dict(request["constraint"])
        body = {**request["body"], "model": served, **constraint_fields(constraint, guided)}
        return {"payload": {"body": json.dumps(body)}}

    def answer(row: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        response = row.get("http_response") or {}
        status, text = int(response.get("status") or 0), str(response.get("text") or "")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if status >= 400 or not isinstance(parsed, dict) or not parsed.get("choices"):
            why = f"HTTP {status} from {base_url}/chat/completions: {text[:200]}"
            return {"error": why, "status": status}
        return {"choice": parsed["choices"][0], "usage": parsed.get("usage") or {}}

    return Route("http", config, stage_input, answer)


class RawBodySession:
    """The HTTP route's client session: sends a row's own body bytes (`payload["body"]`, not the payload
    re-encoded from Arrow) and answers `{"status", "text"}` (the server's answer, parsed on the way back)."""

    def __init__(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession()

    async def __aenter__(self) -> RawBodySession:
        await self._session.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._session.__aexit__(*exc)

    def post(self, url: str, headers: dict[str, str] | None = None, data: Any = None) -> _Posted:
        body = json.loads(data)["body"] if isinstance(data, str | bytes) else data
        return _Posted(self._session.post(url, headers=headers, data=body))


class _Posted:
    """A request in flight: awaited, the response (used as `async with`)."""

    def __init__(self, request: Any) -> None:
        self._request = request

    def __await__(self) -> Any:
        return self._open().__await__()

    async def _open(self) -> _Answer:
        return _Answer(await self._request)


class _Answer:
    def __init__(self, response: Any) -> None:
        self._response = response
        self.status, self.reason = response.status, response.reason

    async def __aenter__(self) -> _Answer:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._response.release()

    async def json(self) -> dict[str, Any]:
        return {"status": self.status, "text": await self._response.text()}


# -- the job (shared) ---------------------------------------------------------------------------------

def _preprocess(stage_input: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], Any]:
    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        return {"i": row["i"], "request": row["request"], **stage_input(json.loads(row["request"]))}

    return preprocess


def _postprocess(answer: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
    def postprocess(row: dict[str, Any]) -> dict[str, Any]:
        return {"i": int(row["i"]), "answer": json.dumps(answer(row, json.loads(row["request"])))}

    return postprocess


def build(route: Route) -> Any:
    """The route's `ray.data.llm` processor: requests rows in, `{"i", "answer"}` rows out."""
    from ray.data.llm import build_processor

    return build_processor(route.config, preprocess=_preprocess(route.stage_input),
                           postprocess=_postprocess(route.answer))


def quiet_ray_data() -> None:
    """No Ray Data progress bars or execution logs on the driver's terminal (dialc shows its own)."""
    import ray.data

    for name in ("ray.data", "ray.llm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # a failed job: the step's message says why
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_auto_log_stats = False


def job_failure(exc: BaseException) -> str:
    """Why a Ray Data job failed, in one line: a request that got no answer, else the error's last line."""
    text = str(exc)
    stuck = re.search(r"Reached maximum retries of (\d+) .*?Previous Exception: (.*?)\. Full Traceback", text, re.S)
    if stuck:
        return f"a request got no answer in {int(stuck.group(1)) + 1} attempts ({stuck.group(2).strip()[:200]})"
    lines = [line.strip() for line in text.splitlines() if line.strip() and "DataContext" not in line]
    return (lines[-1] if lines else type(exc).__name__)[:500]


class DataBackend:
    """The Backend protocol over Ray Data jobs of one route (see the module docstring); `page`: requests per
    job (generation steps hand it that many at a time)."""

    def __init__(self, model: dict[str, Any], route: Route, fallback: Any = None, page: int = PAGE) -> None:
        self.model, self.route, self.page = model, route, page
        self.name = f"ray.data.llm ({route.kind})"
        self.retries = max(0, int(model.get("retries", 2)))
        self.retry_temperature = float(model.get("retry_temperature", 0.7))
        self.fallback = fallback  # scoring: the actors' backend (an openai model), or none (vllm)
        self.jobs = 0  # Ray Data jobs run (tests, bench)
        self._processor: Any = None

    def processor(self) -> Any:
        if self._processor is None:
            quiet_ray_data()
            self._processor = build(self.route)
        return self._processor

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        results: list[GenResult | None] = [None] * len(requests)
        for index, result in self.generate_stream(requests):
            results[index] = result
        return [r for r in results if r is not None]

    def generate_stream(self, requests: list[GenRequest]) -> Iterator[tuple[int, GenResult]]:
        """(index, result) in request order, each once it and those before it are final: a job per
        attempt over the requests still without a valid answer (an invalid answer is asked again with the
        next attempt's seed, as the openai backend does, `retries` times at most)."""
        results = [GenResult(text="", ok=False, attempts=0) for _ in requests]
        final = [False] * len(requests)
        answered = [False] * len(requests)
        pending = list(range(len(requests)))
        next_out = 0
        for attempt in range(self.retries + 1):
            if not pending:
                break
            retry: list[int] = []
            for index, answer in self._job(requests, pending, attempt):
                if self._settle(requests[index], results[index], answer, answered, index) or attempt == self.retries:
                    final[index] = True
                else:
                    retry.append(index)
                while next_out < len(requests) and final[next_out]:
                    yield next_out, results[next_out]
                    next_out += 1
            pending = sorted(retry)
        for index in range(next_out, len(requests)):
            yield index, results[index]

    def _job(self, requests: list[GenRequest], indices: list[int], attempt: int) -> Iterator[tuple[int, Any]]:
        """One Ray Data job: the requests' answers as they come (any order)."""
        import ray.data

        rows = [request_row(i, requests[i], attempt, self.retry_temperature) for i in indices]
        self.jobs += 1
        try:
            for row in self.processor()(ray.data.from_items(rows)).iter_rows():
                if row.get("__inference_error__"):  # vLLM: the engine failed this request
                    yield int(row["i"]), {"error": str(row["__inference_error__"])[:500], "status": None}
                else:
                    yield int(row["i"]), json.loads(row["answer"])
        except Exception as exc:  # the job failed as a whole: the server is down, an engine did not start
            raise StepFailed(f"model '{self.model.get('name')}': a Ray Data job ({self.name}) failed: "
                             f"{job_failure(exc)}; the answers stored so far are kept, and `dialc run` again "
                             "asks only for the rest (Ray Data's own log: /tmp/ray/session_latest/logs/ray-data)"
                             ) from None

    def _settle(self, request: GenRequest, result: GenResult, answer: dict[str, Any], answered: list[bool],
                index: int) -> bool:
        """One attempt's answer into the result, as the openai backend's generate_one does; True when the
        result is final (valid, or a failure that asking again would not cure)."""
        result.attempts += 1
        if "error" in answer:
            status = answer.get("status")
            transient = status is None or status == 0 or status in TRANSIENT
            if not answered[index]:
                result.text, result.value, result.error = "", None, str(answer["error"])
                result.transport = transient
            return not transient
        answered[index], result.transport = True, False
        usage = answer.get("usage") or {}
        result.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        result.completion_tokens += int(usage.get("completion_tokens") or 0)
        validate_choice(request, answer["choice"], result)
        return result.ok

    def loglikelihood(self, requests: list[Any]) -> list[float]:
        if self.fallback is not None:
            return list(self.fallback.loglikelihood(requests))
        raise StepFailed(f"model '{self.model.get('name')}' (backend = vllm) cannot score text: its engines "
                         "generate only; use a transformers or openai model for log-likelihood judges")

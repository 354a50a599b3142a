"""OpenAI-compatible server: GenRequests → validated GenResults, ScoreRequests → log-likelihoods.

Talks to vLLM, llama.cpp server, `transformers serve` … over `/v1/chat/completions` and
`/v1/completions`. Model settings (the model config dict; decoding settings travel in each request):
  path              the served model name (default: the first model the server lists)
  base_url          the server's API root (default http://127.0.0.1:8000/v1)
  api_key_env       name of the environment variable holding the API key (none: "EMPTY")
  batch_size        requests in flight at once unless `concurrency` says (default 8)
  concurrency       requests kept in flight: a sliding window, a new request starts as soon as one
                    ends (default: batch_size)
  rpm, tpm          requests / tokens per minute at most (default: no limit); tokens are estimated
                    (prompt characters / 4 + max_tokens) and corrected by the answer's usage
  retries           extra attempts for an invalid output or a failed request (default 2)
  retry_temperature temperature of retries of a greedy request (default 0.7)
  timeout           seconds to wait for one response (default 120)
  guided            how choice/regex constraints are sent: "structured_outputs" (vLLM >= 0.10.2,
                    default), "guided" (vLLM guided_choice/guided_regex, removed in 0.12) or "none"
  tokenizer         a local HF directory whose chat template renders messages for scoring
                    (default: `path` when it is a local directory)
JSON constraints go as `response_format` json_schema. A server that refuses a constraint field
(HTTP 400/422) is asked again without it, and the fallback is remembered; every output is
validated with dialc_runtime.models.validation whatever the server claims to enforce. An HTTP 429
pauses every request for the server's Retry-After (models/throttle.py) and is asked again without
using a retry; results carry how many 429s they met (`throttled`).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

from dialc.security import insecure_key_problem
from dialc_runtime.data.seeds import attempt_seed
from dialc_runtime.errors import StepFailed
from dialc_runtime.models.base import BatchInterrupted, Constraint, GenRequest, GenResult, Message, ScoreRequest
from dialc_runtime.models.http_json import Answer, Dropped, NoAnswer, Unreachable, open_client
from dialc_runtime.models.throttle import Throttle, estimate_tokens, retry_after_seconds
from dialc_runtime.models.validation import settle_text, validate_output
from dialc_runtime.secrets import redact, register

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})  # worth asking again
REFUSED = frozenset({400, 422})  # the server rejected the request's fields
MAX_429 = 8  # 429s one request waits out (Retry-After) before it counts as a failed attempt
QUEUED_PER_SLOT = 8  # a stream submits at most this many requests per window slot ahead of the one it yields next


class BackendUnavailable(StepFailed):
    """The server cannot be used at all (down, wrong URL, bad key): the step fails with this."""


class ScoringUnsupported(StepFailed, NotImplementedError):
    """The server returns no prompt log-probabilities, so log-likelihood scoring is impossible."""


class HTTPFailure(Exception):
    """One request failed (HTTP error status or timeout); the server itself was reachable."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        message = redact(message)  # it may quote the server's answer, which may echo the key
        super().__init__(message)
        self.message, self.status = message, status
        self.retry_after = retry_after  # a 429's Retry-After, in seconds
        self.throttled = 0  # 429s met before this failure

    @property
    def transient(self) -> bool:
        return self.status is None or self.status in TRANSIENT


def _api_key(env_name: str | None) -> str:
    if not env_name:
        return "EMPTY"
    key = os.environ.get(str(env_name))
    if key is None:
        raise BackendUnavailable(f"api_key_env names ${env_name}, which is not set")
    register(key)  # never shown again: every message is redacted (dialc_runtime.secrets)
    return key


def _detail(response: Answer) -> str:
    """The server's own error message (OpenAI/vLLM `error.message`, FastAPI `detail`, or text), with any
    API key or Authorization value it echoes redacted."""
    return redact(_server_text(response))


def _server_text(response: Answer) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        for key in ("detail", "error", "message"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


class OpenAIBackend:
    """The Backend protocol on an OpenAI-compatible HTTP server (see the module docstring)."""

    name = "openai"

    def __init__(self, model_cfg: dict[str, Any]) -> None:
        self.base_url = str(model_cfg.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.model = str(model_cfg.get("path") or "")
        self.batch_size = max(1, int(model_cfg.get("batch_size", 8)))
        self.concurrency = max(1, int(model_cfg.get("concurrency") or self.batch_size))
        self.throttle = Throttle(model_cfg.get("rpm"), model_cfg.get("tpm"))
        self.retries = max(0, int(model_cfg.get("retries", 2)))
        self.retry_temperature = float(model_cfg.get("retry_temperature", 0.7))
        self.timeout = float(model_cfg.get("timeout") or 120)  # None: not set in the spec
        self.guided = str(model_cfg.get("guided", "structured_outputs"))
        self.tokenizer_path = model_cfg.get("tokenizer")
        self.unsupported: set[str] = set()  # request fields this server refused (remembered)
        self.scoring_error: str | None = None  # why this server cannot score (remembered)
        self._lock = threading.Lock()
        self._template: Callable[[tuple[Message, ...]], str] | None = None
        insecure = insecure_key_problem(self.base_url, model_cfg.get("api_key_env"),
                                        bool(model_cfg.get("allow_insecure", False)))
        if insecure:
            raise BackendUnavailable(f"refusing to start: {insecure}")
        self._client = open_client(self.base_url, {"Authorization": f"Bearer {_api_key(model_cfg.get('api_key_env'))}"},
                                   self.timeout, min(self.timeout, 10.0))  # keep-alive, one connection per thread
        self._pool = DaemonPool(self.concurrency)
        self._cancel = threading.Event()  # set by Ctrl-C: no new attempt, retry or wait starts

    def close(self) -> None:
        """Close the connections and the worker threads."""
        self._cancel.set()
        self._pool.shutdown()
        self._client.close()

    # -- HTTP --------------------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """POST JSON (GET when body is None); unreachable → BackendUnavailable, HTTP error or
        timeout → HTTPFailure."""
        url = f"{self.base_url}{path}"
        try:
            response = self._client.request(path, body)
        except Unreachable as exc:
            if exc.timed_out:
                raise BackendUnavailable(f"cannot reach {self.base_url}: connection timed out "
                                         "— is the server running and base_url right?") from None
            raise BackendUnavailable(
                f"cannot reach {self.base_url}: {exc.reason} — is the server running?") from None
        except NoAnswer:
            raise HTTPFailure(f"no answer from {url} within {self.timeout:g} s "
                              "(raise the model's `timeout` for a slow server)") from None
        except Dropped as exc:  # connection dropped mid-answer: the server crashed?
            raise HTTPFailure(f"{url}: {exc}") from None
        if response.status_code >= 400:
            self._raise_fatal(response, url)
            raise HTTPFailure(f"HTTP {response.status_code} from {url}: {_detail(response)}",
                              response.status_code, retry_after_seconds(response.headers.get("retry-after")))
        try:
            return dict(response.json())
        except ValueError:
            raise HTTPFailure(f"{url} answered with something that is not JSON: "
                              f"{response.text[:100]!r}") from None

    def send(self, path: str, body: dict[str, Any], tokens: int) -> tuple[dict[str, Any], int]:
        """POST once the rpm/tpm limits and any 429 pause allow (`tokens`: the request's estimate);
        a 429 pauses every request for its Retry-After and asks again, MAX_429 times at most.
        Returns the answer and how many 429s it met."""
        throttled = 0
        while True:
            if not self.throttle.acquire(tokens, self._cancel):
                raise HTTPFailure("cancelled (Ctrl-C)")
            try:
                answer = self.post(path, body)
            except HTTPFailure as exc:
                if exc.status == 429:
                    self.throttle.used(tokens, 0)  # refused: it used nothing
                    if throttled < MAX_429:
                        self.throttle.backoff(exc.retry_after, throttled)
                        throttled += 1
                        continue
                exc.throttled = throttled
                raise
            usage = answer.get("usage") or {}
            actual = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
            self.throttle.used(tokens, actual if usage else None)
            return answer, throttled

    def _raise_fatal(self, response: Answer, url: str) -> None:
        """Errors that no request could get past: bad key, wrong URL or model name."""
        status = response.status_code
        if status in (401, 403):
            raise BackendUnavailable(f"HTTP {status} from {url}: {_detail(response)} "
                                     "— check the API key (api_key_env)")
        if status == 404:
            raise BackendUnavailable(f"HTTP 404 from {url}: {_detail(response)} — does base_url "
                                     f"end in /v1, and does the server serve '{self.model}'?")

    def served_model(self) -> str:
        """The model name to send: `path`, or else the first model the server lists."""
        if not self.model:
            try:
                self.model = str(self.post("/models", None)["data"][0]["id"])
            except (HTTPFailure, KeyError, IndexError, TypeError) as exc:
                raise BackendUnavailable(f"no model `path` given and {self.base_url}/models "
                                         f"names none ({exc})") from None
        return self.model

    # -- generation --------------------------------------------------------------------------

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        """Every result, in request order, `concurrency` requests kept in flight (see generate_stream)."""
        results: list[GenResult | None] = [None] * len(requests)
        try:
            for index, result in self.generate_stream(requests):
                results[index] = result
        except KeyboardInterrupt:  # the requests that finished are kept
            raise BatchInterrupted(results) from None
        return [r for r in results if r is not None]

    def generate_stream(self, requests: list[GenRequest]) -> Iterator[tuple[int, GenResult]]:
        """(index, result) in request order, each as soon as it and those before it are done, while a
        sliding window keeps `concurrency` requests in flight: a new one starts as soon as any ends, not
        when the slowest of a batch does (results that finish early wait, QUEUED_PER_SLOT × concurrency at
        most, for the one before them). Ctrl-C abandons the requests in flight; an exception (the server is
        down) cancels those not started."""
        if not requests:
            return
        self.served_model()
        self._cancel.clear()  # a new stream after an interrupt (requests hung then stay abandoned)
        ahead = self.concurrency * QUEUED_PER_SLOT
        futures: dict[int, Future[GenResult]] = {}
        submitted = next_out = 0
        try:
            while next_out < len(requests):
                while submitted < len(requests) and submitted - next_out < ahead:
                    futures[submitted] = self._pool.submit(self.generate_one, requests[submitted])
                    submitted += 1
                head = futures[next_out]
                if not head.done():  # the pool works through the queue meanwhile; a timeout, so that Ctrl-C
                    wait([head], timeout=0.2)  # (raised in any thread) is seen at once
                    continue
                del futures[next_out]
                next_out += 1
                yield next_out - 1, head.result()
        except KeyboardInterrupt:  # stop now: abandon the requests in flight, hand over those that finished
            self._cancel.set()
            finished = sorted(i for i, f in futures.items() if f.done() and not f.cancelled() and not f.exception())
            for index in finished:
                yield index, futures.pop(index).result()
            raise
        finally:  # server down, the consumer stopped or Ctrl-C: do not start the requests still queued
            for future in futures.values():
                future.cancel()

    def generate_one(self, request: GenRequest) -> GenResult:
        """Decode, validate, and retry an invalid output or failed request with a new seed."""
        result = GenResult(text="", ok=False, attempts=0)
        answered = False  # an attempt got an answer (valid or not): a later transport failure keeps it
        for attempt in range(self.retries + 1):
            if self._cancel.is_set():  # Ctrl-C: no answer, and none may be stored for it
                result.transport = not answered
                result.error = result.error or "cancelled (Ctrl-C)"
                break
            result.attempts += 1
            try:
                choice, usage, throttled = self._complete(request, attempt)
            except HTTPFailure as exc:
                result.throttled += exc.throttled
                if not answered:
                    result.text, result.value, result.error = "", None, exc.message
                    result.transport = exc.transient
                if not exc.transient:
                    break
                if attempt < self.retries:
                    self._cancel.wait(min(0.25 * 2**attempt, 4.0))
                continue
            answered, result.transport = True, False
            result.throttled += throttled
            result.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            result.completion_tokens += int(usage.get("completion_tokens") or 0)
            self._validate(request, choice, result)
            if result.ok:
                break
        return result

    def _validate(self, request: GenRequest, choice: dict[str, Any], result: GenResult) -> None:
        validate_choice(request, choice, result)

    def _complete(self, request: GenRequest, attempt: int) -> tuple[dict[str, Any], dict, int]:
        """One chat completion (its choice, usage and 429s met); a constraint field the server refuses
        is dropped and remembered."""
        extras = self.constraint_fields(request.constraint)
        body = {**self.chat_body(request, attempt), **extras}
        tokens = estimate_tokens([m.get("content", "") for m in request.messages], request.max_tokens)
        try:
            answer, throttled = self.send("/chat/completions", body, tokens)
        except HTTPFailure as exc:
            if exc.status not in REFUSED or not extras:
                raise
            answer, throttled = self.send("/chat/completions", self.chat_body(request, attempt), tokens)
            throttled += exc.throttled
            with self._lock:  # the plain request went through: the constraint field was the cause
                self.unsupported.update(extras)
        choices = answer.get("choices") or []
        if not choices:
            raise HTTPFailure(f"{self.base_url}/chat/completions returned no choices: "
                              f"{str(answer)[:200]}")
        return dict(choices[0]), dict(answer.get("usage") or {}), throttled

    def chat_body(self, request: GenRequest, attempt: int) -> dict[str, Any]:
        """The request body without constraint fields; retries of greedy requests sample."""
        return chat_body(request, attempt, self.served_model(), self.retry_temperature)

    def constraint_fields(self, constraint: Constraint) -> dict[str, Any]:
        """Body fields asking the server to enforce `constraint` (minus those it refused)."""
        fields = constraint_fields(constraint, self.guided)
        return {k: v for k, v in fields.items() if k not in self.unsupported}

    # -- scoring -----------------------------------------------------------------------------

    def loglikelihood(self, requests: list[ScoreRequest]) -> list[float]:
        """Sum of log-probs of each continuation's tokens, from the server's echoed prompt."""
        if self.scoring_error is not None:
            raise ScoringUnsupported(self.scoring_error)
        if not requests:
            return []
        self.served_model()
        texts = [(self.context_text(r), r.continuation) for r in requests]
        futures = [self._pool.submit(self.score_one, c, x) for c, x in texts]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    def score_one(self, context: str, continuation: str) -> float:
        """log P(continuation | context) via /completions with echo=true, logprobs=1."""
        prompt = context + continuation
        body = {"model": self.served_model(), "prompt": prompt, "echo": True, "logprobs": 1,
                "max_tokens": 1, "temperature": 0.0}
        answer: dict[str, Any] = {}
        for attempt in range(self.retries + 1):
            try:
                answer, _ = self.send("/completions", body, estimate_tokens([prompt], 1))
                break
            except HTTPFailure as exc:
                if exc.status in REFUSED | {500, 501}:  # the server cannot do echo + logprobs
                    self._unsupported_scoring(exc.message)
                if attempt == self.retries:  # overloaded or timed out: fail, but do not remember
                    raise StepFailed(f"scoring failed: {exc.message}") from None
                time.sleep(min(0.25 * 2**attempt, 4.0))
        logprobs = ((answer.get("choices") or [{}])[0] or {}).get("logprobs") or {}
        if not logprobs.get("token_logprobs"):
            self._unsupported_scoring("its answer has no prompt log-probabilities")
        return _continuation_logprob(logprobs, len(context), len(prompt))

    def _unsupported_scoring(self, why: str) -> None:
        message = (f"the server at {self.base_url} cannot score text: /completions with "
                   f"echo=true, logprobs=1 failed ({why}); use a server that returns prompt "
                   "log-probabilities (vLLM) or the transformers backend for this step")
        with self._lock:
            self.scoring_error = message
        raise ScoringUnsupported(message)

    def context_text(self, request: ScoreRequest) -> str:
        """The text the continuation follows: the raw prefix, or the chat-templated messages."""
        if not request.messages:
            return request.prefix
        with self._lock:
            if self._template is None:
                self._template = self._load_template()
        return self._template(request.messages)

    def _load_template(self) -> Callable[[tuple[Message, ...]], str]:
        """The served model's chat template, from a local copy of its tokenizer."""
        source = self.tokenizer_path or self.model
        if not source or not Path(str(source)).is_dir():
            raise ScoringUnsupported(
                "scoring chat messages over HTTP needs the model's chat template: set the model's "
                "`tokenizer` to a local HF directory of the served model")
        from dialc_runtime.models.loading import load_tokenizer  # heavy: only for scoring chat prompts

        tokenizer = load_tokenizer(str(source))

        def render(messages: tuple[Message, ...]) -> str:
            text = tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True)
            return str(text)

        return render


def chat_body(request: GenRequest, attempt: int, model: str, retry_temperature: float) -> dict[str, Any]:
    """A chat completion's body without constraint fields (also the Ray Data HTTP route's, engine/ray_llm.py):
    attempt `attempt` of the request, with its seed; retries of greedy requests sample."""
    temperature = request.temperature
    if attempt > 0 and temperature <= 0:
        temperature = retry_temperature  # greedy would only repeat the failed output
    return {
        "model": model,
        "messages": [dict(m) for m in request.messages],
        "max_tokens": max(1, request.max_tokens),
        "temperature": temperature,
        "top_p": request.top_p,
        "seed": attempt_seed(request.seed, attempt),
    }


def constraint_fields(constraint: Constraint, guided: str = "structured_outputs") -> dict[str, Any]:
    """Body fields asking an OpenAI-compatible server to enforce `constraint` (`guided`: see the module
    docstring)."""
    fields: dict[str, Any] = {}
    if constraint.kind == "json" and constraint.schema is not None:
        schema = {"name": "output", "schema": constraint.schema, "strict": True}
        fields["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif constraint.kind in ("choice", "regex"):
        value = list(constraint.options) if constraint.kind == "choice" else constraint.pattern
        if guided == "structured_outputs":
            fields["structured_outputs"] = {constraint.kind: value}
        elif guided == "guided":
            fields[f"guided_{constraint.kind}"] = value
    return fields


def validate_choice(request: GenRequest, choice: dict[str, Any], result: GenResult) -> None:
    """A chat completion's choice (`message.content`, `finish_reason`) → the result's text, ok, value and
    error under the request's constraint (also the Ray Data routes', engine/ray_llm.py)."""
    message = choice.get("message") or {}
    text = str(message.get("content") or "")
    result.text, result.trimmed = text, 0
    constraint = request.constraint
    if constraint.kind == "text" and constraint.max_chars is not None:
        # servers do not enforce max_chars: an answer that runs into it (or into max_tokens)
        # ends at a sentence end or is truncated, as with the transformers backend
        limit = f"max_tokens={request.max_tokens}" if choice.get("finish_reason") == "length" else None
        settled, error = settle_text(text, constraint, limit)
        result.text, result.trimmed = settled, len(text) - len(settled)
        result.ok, result.value, result.error = (
            (False, None, error) if error else validate_output(settled, constraint))
        return
    if choice.get("finish_reason") == "length":
        result.ok, result.value = False, None
        result.error = (f"truncated: max_tokens={request.max_tokens} reached before the "
                        "output was complete")
        return
    if request.constraint.kind == "choice":
        text = text.strip()  # an unconstrained model pads its answer with whitespace
    result.ok, result.value, result.error = validate_output(text, request.constraint)


class DaemonPool:
    """Worker threads that never keep the process alive: after Ctrl-C, a request hung on a silent server
    is abandoned (its thread ends with the process) instead of being waited for until its timeout."""

    def __init__(self, workers: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue())
        self._threads = [threading.Thread(target=self._work, name=f"openai-backend-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, fn, args))
        return future

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the waiting thread
                future.set_exception(exc)


def _continuation_logprob(logprobs: dict[str, Any], start: int, end: int) -> float:
    """Sum the log-probs of the echoed tokens that cover characters start..end of the prompt."""
    tokens = list(logprobs.get("tokens") or [])
    values = list(logprobs["token_logprobs"])
    offsets = list(logprobs.get("text_offset") or [])
    if len(offsets) != len(values):  # no offsets: the tokens' lengths add up to them
        offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(values))]
    total, counted = 0.0, 0
    for i, value in enumerate(values):
        token_end = offsets[i + 1] if i + 1 < len(offsets) else end
        if offsets[i] >= end or token_end <= start:
            continue  # a context token, or the one token generated after the prompt
        if value is None:  # the very first token has nothing to be predicted from
            continue
        total, counted = total + float(value), counted + 1
    if not counted and end > start:
        raise ScoringUnsupported("the server returned no log-probabilities for the continuation")
    return total

"""A real OpenAI-compatible test server: scripted chat replies, fault injection, real logprobs.

Run as a process: `python tests/openai_server.py --port 0 [options]`; it prints `PORT <n>` once
it listens. Chat completions answer from `--reply` scripts (the k-th request with the same messages
gets the k-th reply, the last one repeating), so tests of validation, retries and error handling
are deterministic; `structured_outputs.choice` / `guided_choice` are enforced (the first option).
With `--model DIR`, `/v1/completions` with echo=true and logprobs scores the prompt with that
transformers model, as vLLM does. `GET /stats` tells what the server received, and `events`: per chat
request its arrival and end on the server's monotonic clock and the status it got (so tests of pacing
read the server's timestamps, not their own). `--throttle-first N --retry-after S` answers the first N
chats HTTP 429 with `Retry-After: S`; `--slow-first S` makes the first chat take S seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class State:
    """What the server was told to do and what it has seen (shared by the handler threads)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.seen: Counter[str] = Counter()
        self.in_flight = self.peak = self.failed = self.chats = self.throttled = self.arrived = 0
        self.events: list[dict[str, Any]] = []  # chat requests: {"start", "end", "status"} (monotonic s)
        self.scorer = Scorer(args.model) if args.model else None
        self.rng = random.Random(0)

    def latency(self) -> float:
        """--latency, or with --jitter J a latency drawn evenly from latency × (1 ± J) (seeded)."""
        if not self.args.jitter:
            return float(self.args.latency)
        with self.lock:
            return float(self.args.latency * (1 + self.args.jitter * (2 * self.rng.random() - 1)))


class Scorer:
    """Prompt log-probabilities from a local causal LM, in the legacy completions format."""

    def __init__(self, path: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.lock = threading.Lock()

    def logprobs(self, prompt: str) -> tuple[str, dict[str, Any]]:
        """(generated text, logprobs{tokens, token_logprobs, text_offset}) of prompt + 1 token."""
        enc = self.tokenizer(prompt, return_offsets_mapping=True)
        ids, spans = list(enc["input_ids"]), [tuple(s) for s in enc["offset_mapping"]]
        with self.lock, self.torch.inference_mode():
            logits = self.model(input_ids=self.torch.tensor([ids])).logits[0].float()
        logp = self.torch.log_softmax(logits, dim=-1)
        values: list[float | None] = [None]
        values += [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]
        nxt = int(logp[-1].argmax())
        generated = str(self.tokenizer.decode([nxt]))
        tokens = [prompt[a:b] for a, b in spans] + [generated]
        return generated, {
            "tokens": tokens,
            "token_logprobs": values + [float(logp[-1, nxt])],
            "text_offset": [a for a, _ in spans] + [len(prompt)],
            "top_logprobs": None,
        }


def chat_answer(state: State, body: dict[str, Any]) -> dict[str, Any]:
    """The scripted chat completion for one request body."""
    key = json.dumps(body.get("messages"), sort_keys=True)
    with state.lock:
        k = state.seen[key]
        state.seen[key] += 1
    replies = state.args.reply or ["ok"]
    text = replies[min(k, len(replies) - 1)]
    if state.args.echo_prompt:  # each answer tells which request it answers
        text = f"{body['messages'][-1].get('content', '')} seed={body.get('seed')}"
    options = (body.get("structured_outputs") or {}).get("choice") or body.get("guided_choice")
    if options:
        text = options[0]
    words, limit = text.split(" "), int(body.get("max_tokens") or 16)
    finish = "length" if len(words) > limit else "stop"
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
    return {
        "id": f"chatcmpl-{k}",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [{"index": 0, "finish_reason": finish,
                     "message": {"role": "assistant", "content": " ".join(words[:limit])}}],
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": min(len(words), limit)},
    }


def completion_answer(state: State, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Legacy completions: only prompt scoring (echo + logprobs) is implemented."""
    if state.scorer is None or not body.get("echo") or body.get("logprobs") is None:
        return 400, {"error": {"message": "this test server only scores prompts (echo+logprobs)"}}
    generated, logprobs = state.scorer.logprobs(str(body["prompt"]))
    choice = {"index": 0, "text": str(body["prompt"]) + generated, "logprobs": logprobs,
              "finish_reason": "length"}
    return 200, {"object": "text_completion", "model": body.get("model"), "choices": [choice]}


class Handler(BaseHTTPRequestHandler):
    """Routes: GET /health, /v1/models, /stats; POST /v1/chat/completions, /v1/completions."""

    state: State
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        s = self.state
        if self.path == "/health":
            self.send_json(200, {"status": "ok"})
        elif self.path == "/v1/models":
            models = [{"id": s.args.name, "object": "model"}]
            self.send_json(200, {"object": "list", "data": models})
        elif self.path == "/stats":
            with s.lock:
                self.send_json(200, {"bodies": s.bodies, "headers": s.headers, "peak": s.peak,
                                     "events": s.events})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        s = self.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with s.lock:
            s.bodies.append(body)
            s.headers.append({k.lower(): v for k, v in self.headers.items()})
            s.in_flight += 1
            s.peak = max(s.peak, s.in_flight)
            self.first = not s.arrived and self.path == "/v1/chat/completions"
            s.arrived += self.path == "/v1/chat/completions"
        start, wall, headers = time.monotonic(), time.time(), {}
        try:
            status, payload = self.answer(body)
            if status == 429:
                headers["Retry-After"] = s.args.retry_after
        finally:
            with s.lock:
                s.in_flight -= 1
                if self.path == "/v1/chat/completions":
                    s.events.append({"start": start, "end": time.monotonic(), "wall": wall, "status": status,
                                     "seed": body.get("seed")})
        self.send_json(status, payload, headers)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        s = self.state
        time.sleep(s.args.slow_first if self.first and s.args.slow_first else s.latency())
        if s.args.api_key and self.headers.get("Authorization") != f"Bearer {s.args.api_key}":
            if s.args.echo_key:  # a careless server: its error text repeats what it was sent
                return 401, {"error": {"message": f"invalid API key; got Authorization: "
                                                  f"{self.headers.get('Authorization')}"}}
            return 401, {"error": {"message": "invalid API key"}}
        refused = set(body) & set(s.args.reject_fields.split(",")) - {""}
        if refused:
            return 422, {"detail": f"Unexpected fields in the request: {sorted(refused)}"}
        if self.path == "/v1/completions":
            return completion_answer(s, body)
        if self.path != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {self.path}"}}
        with s.lock:
            s.chats += 1
            fail = s.failed < s.args.fail_first or (s.args.fail_every and s.chats % s.args.fail_every == 0)
            s.failed += fail
            hang = s.args.hang_after >= 0 and s.chats > s.args.hang_after
            throttle = s.throttled < s.args.throttle_first
            s.throttled += throttle
        if throttle:
            return 429, {"error": {"message": "rate limit reached, slow down", "code": 429}}
        if hang:
            time.sleep(3600)  # a hung server: the connection stays open, no answer comes
        if fail:
            return 500, {"error": {"message": "injected failure", "code": 500}}
        return 200, chat_answer(s, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="test-model", help="the served model name")
    parser.add_argument("--model", help="a local HF directory for /v1/completions scoring")
    parser.add_argument("--reply", action="append", help="scripted chat replies, in order")
    parser.add_argument("--fail-first", type=int, default=0, help="answer HTTP 500 to N chats")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering")
    parser.add_argument("--jitter", type=float, default=0.0, help="latency varies by up to this share (0..1)")
    parser.add_argument("--reject-fields", default="", help="comma-separated fields → HTTP 422")
    parser.add_argument("--api-key", default="", help="require this bearer token")
    parser.add_argument("--echo-key", action="store_true", help="a 401 repeats the Authorization header sent")
    parser.add_argument("--fail-every", type=int, default=0, help="answer HTTP 500 to every N-th chat")
    parser.add_argument("--hang-after", type=int, default=-1, help="never answer chats after the first N")
    parser.add_argument("--throttle-first", type=int, default=0, help="answer HTTP 429 to the first N chats")
    parser.add_argument("--retry-after", default="1", help="the 429's Retry-After header (seconds or an HTTP date)")
    parser.add_argument("--echo-prompt", action="store_true", help="answer with the last message and the seed")
    parser.add_argument("--slow-first", type=float, default=0.0, help="the first chat takes this many seconds")
    args = parser.parse_args()
    Handler.state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

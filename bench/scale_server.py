"""A zero-latency OpenAI-compatible server for benchmarks: deterministic, varied, constraint-valid answers.

    python bench/scale_server.py [--port 0] [--latency 0.0]

Prints `PORT <n>` once it listens (localhost only). Chat completions answer at once (or after
`--latency` seconds): a choice constraint gets one of its options, a JSON schema a valid instance, free
text a short sentence; the pick depends on a hash of the messages, so answers vary (dedup has work to
do) and repeat exactly for the same request. It keeps no per-request state: its memory stays flat.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_VOCABULARY = ("the customer wants a flat near the station with two bedrooms and a budget that is firm "
               "agent offers viewing on saturday morning lease deposit parking pets allowed quiet street "
               "school district balcony renovated kitchen north facing garden mortgage approval deadline")
WORDS = tuple(_VOCABULARY.split())


def pick(seed: bytes, i: int, n: int) -> int:
    """A deterministic index in [0, n) from the request hash and a position."""
    return int.from_bytes(hashlib.blake2b(seed + i.to_bytes(2, "big"), digest_size=4).digest(), "big") % n


def instance(schema: dict[str, Any], seed: bytes) -> Any:
    """A value valid under a (dialc-generated) JSON schema: nullable → null, else the smallest value."""
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "enum" in schema:
        return schema["enum"][pick(seed, 1, len(schema["enum"]))]
    if "null" in kinds:
        return None
    if "object" in kinds:
        props = schema.get("properties") or {}
        return {name: instance(sub, seed + name.encode()) for name, sub in props.items()}
    if "array" in kinds:
        return []
    if "integer" in kinds or "number" in kinds:
        return int(schema.get("minimum", 0))
    if "boolean" in kinds:
        return False
    return WORDS[pick(seed, 2, len(WORDS))]


def sentence(seed: bytes, limit: int) -> str:
    """Free text: 8–20 words drawn from WORDS, ending with a full stop."""
    n = min(8 + pick(seed, 0, 13), max(1, limit - 1))
    return " ".join(WORDS[pick(seed, i + 1, len(WORDS))] for i in range(n)).capitalize() + "."


def answer(body: dict[str, Any]) -> str:
    seed = hashlib.blake2b(json.dumps(body.get("messages"), sort_keys=True).encode(), digest_size=16).digest()
    options = (body.get("structured_outputs") or {}).get("choice") or body.get("guided_choice")
    if options:
        return str(options[pick(seed, 0, len(options))])
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return json.dumps(instance(fmt["json_schema"]["schema"], seed))
    return sentence(seed, int(body.get("max_tokens") or 16))


class Handler(BaseHTTPRequestHandler):
    """GET /v1/models, /health; POST /v1/chat/completions."""

    protocol_version = "HTTP/1.1"
    latency = 0.0
    # TCP_NODELAY, as model servers set it (uvicorn, vLLM): the headers and the body go out as two writes, and
    # with Nagle's algorithm the body waited for the client's delayed ACK, ~40 ms per request
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.endswith("/models"):
            self.send_json(200, {"object": "list", "data": [{"id": "bench", "object": "model"}]})
        else:
            self.send_json(200, {"ok": True})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if not self.path.endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if self.latency:
            time.sleep(self.latency)
        text = answer(body)
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        self.send_json(200, {
            "id": "bench", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(text.split())},
        })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    args = parser.parse_args()
    Handler.latency = args.latency
    ThreadingHTTPServer.request_queue_size = 128  # a listen backlog like a model server's (socketserver: 5)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

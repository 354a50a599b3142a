"""A zero-latency OpenAI-compatible server for benchmarks: deterministic, varied, constraint-valid answers.

    python bench/scale_server.py [--port 0] [--latency 0.0]

Prints `PORT <n>` once it listens (localhost only). Chat completions answer at once (or after
`--latency` seconds): a choice constraint gets one of its options, a JSON schema a valid instance, free
text a short sentence; the pick depends on a hash of the messages, so answers vary (dedup has work to
do) and repeat exactly for the same request. It keeps no per-request state: its memory stays flat.

One thread, an asyncio event loop and httptools' parser (as uvicorn serves vLLM's API), so the server spends
~0.1 ms of CPU per request and a request waiting out `--latency` holds no thread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import socket
from typing import Any

import httptools
import orjson

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


class Connection(asyncio.Protocol):
    """One client connection: requests parsed by httptools (llhttp, uvicorn's parser), answered in order;
    kept alive unless the request says otherwise. GET /v1/models, /health; POST /v1/chat/completions."""

    latency = 0.0

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url, self.body = b"", bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # as model servers do (uvicorn, vLLM): no Nagle delay on small answers
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.send(400, {"error": {"message": "malformed request"}}, keep_alive=False)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method, path, body = self.parser.get_method(), self.url.decode("latin-1"), bytes(self.body)
        keep_alive = self.parser.should_keep_alive()
        self.url, self.body = b"", bytearray()
        status, payload = route(method, path, body)
        if self.latency and method == b"POST":
            asyncio.get_running_loop().call_later(self.latency, self.send, status, payload, keep_alive)
        else:
            self.send(status, payload, keep_alive)

    def send(self, status: int, payload: dict[str, Any], keep_alive: bool = True) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        data = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "")
        close = "" if keep_alive else "Connection: close\r\n"
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n{close}\r\n")
        self.transport.write(head.encode() + data)
        if not keep_alive:
            self.transport.close()


def route(method: bytes, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """(status, JSON answer) of one request."""
    if method == b"GET":
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "bench", "object": "model"}]}
        return 200, {"ok": True}
    if not path.endswith("/chat/completions"):
        return 404, {"error": {"message": f"no route {path}"}}
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return 400, {"error": {"message": "the body is not JSON"}}
    text = answer(body)
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    return 200, {
        "id": "bench", "object": "chat.completion", "model": body.get("model"),
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(text.split())},
    }


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    # a listen backlog like a model server's (socketserver's 5 reset connections when 32 opened at once)
    server = await loop.create_server(Connection, "127.0.0.1", port, backlog=128)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    args = parser.parse_args()
    Connection.latency = args.latency
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()

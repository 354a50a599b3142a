"""The openai backend's JSON client (models/http_json.py): kept-alive connections, and the same three errors
from the http.client and the httpx route."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dialc_runtime.models.http_json import (
    Dropped,
    JsonClient,
    KeepAlive,
    NoAnswer,
    Unreachable,
    ViaHttpx,
    open_client,
)


class Handler(BaseHTTPRequestHandler):
    """Echoes a POSTed body; `sleep` delays the answer, `die` closes the connection without one. An idle
    kept-alive connection is closed after 0.2 s."""

    protocol_version = "HTTP/1.1"
    timeout = 0.2
    connections: list[int] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        time.sleep(body.get("sleep", 0))
        if body.get("die"):
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = json.dumps({"echo": body, "auth": self.headers.get("Authorization")}).encode()
        self.send_response(429 if body.get("busy") else 200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Retry-After", "3")
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up waiting
            self.wfile.write(data)


@pytest.fixture
def url() -> Iterator[str]:
    Handler.connections = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind", [KeepAlive, ViaHttpx])
def test_answers_errors_and_a_connection_the_server_closed(kind: type[JsonClient], url: str) -> None:
    client = kind(url, {"Authorization": "Bearer k"}, 1.0, 1.0)  # type: ignore[call-arg]
    answer = client.request("/chat", {"a": 1})
    assert answer.json() == {"echo": {"a": 1}, "auth": "Bearer k"}
    answer = client.request("/chat", {"busy": True})
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "3")
    time.sleep(0.5)  # the server closes the idle connection: the next request goes out on a new one
    assert client.request("/chat", {"a": 2}).json()["echo"] == {"a": 2}
    with pytest.raises(NoAnswer):
        client.request("/chat", {"sleep": 2})
    with pytest.raises(Dropped):
        client.request("/chat", {"die": True})
    assert client.request("/chat", {"a": 3}).json()["echo"] == {"a": 3}
    client.close()


def test_one_connection_is_kept_for_many_requests(url: str) -> None:
    client = KeepAlive(url, {}, 5.0, 5.0)
    for i in range(20):
        assert client.request("/chat", {"i": i}).json()["echo"] == {"i": i}
    assert len(Handler.connections) == 1
    client.close()


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for kind in (KeepAlive, ViaHttpx):
        with pytest.raises(Unreachable, match="connection refused"):
            kind(f"http://127.0.0.1:{port}/v1", {}, 1.0, 1.0).request("/chat", {})


def test_https_and_proxied_servers_go_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    assert isinstance(open_client("http://127.0.0.1:8000/v1", {}, 1, 1), KeepAlive)  # never proxied
    assert isinstance(open_client("http://10.1.2.3:8000/v1", {}, 1, 1), ViaHttpx)
    assert isinstance(open_client("https://api.example.com/v1", {}, 1, 1), ViaHttpx)
    monkeypatch.delenv("http_proxy")
    assert isinstance(open_client("http://10.1.2.3:8000/v1", {}, 1, 1), KeepAlive)

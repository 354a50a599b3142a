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


# -- the kept-alive client against a server that answers with scripted bytes -----------------------------------


class Scripted:
    """A TCP server that answers the n-th request it reads (on any connection) with `answers[n]`: byte strings
    sent one after the other with a pause between them, then the connection is closed if `close_after` holds n.
    It records each request's raw bytes and the number of the connection it came on."""

    def __init__(self, answers: list[list[bytes]], close_after: tuple[int, ...] = ()) -> None:
        self.answers, self.close_after = answers, close_after
        self.requests: list[tuple[int, bytes]] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                sock, _ = self.listener.accept()
                self.connections += 1
                threading.Thread(target=self.serve, args=(sock, self.connections), daemon=True).start()

    def serve(self, sock: socket.socket, number: int) -> None:
        with sock, contextlib.suppress(OSError):
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, rest = pending.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(rest) < length:
                    rest += sock.recv(65536)
                self.requests.append((number, head + b"\r\n\r\n" + rest[:length]))
                pending = rest[length:]
                n = len(self.requests) - 1
                for i, part in enumerate(self.answers[n]):
                    if i:
                        time.sleep(0.05)
                    sock.sendall(part)
                if n in self.close_after:
                    return

    def close(self) -> None:
        self.listener.close()


OK = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"]


def test_the_request_goes_out_with_exact_headers_and_body() -> None:
    server = Scripted([OK, OK])
    client = KeepAlive(server.url, {"Authorization": "Bearer sk-1"}, 5.0, 5.0)
    client.request("/chat/completions", {"a": "é"})
    client.request("/models", None)
    port = server.url.split(":")[2].split("/")[0]
    body = '{"a":"é"}'.encode()
    assert server.requests == [
        (1, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode() + b"\r\nAccept-Encoding: identity"
            b"\r\nAuthorization: Bearer sk-1\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body),
        (1, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode() + b"\r\nAccept-Encoding: identity"
            b"\r\nAuthorization: Bearer sk-1\r\nContent-Type: application/json\r\nAccept: application/json\r\n\r\n"),
    ]
    client.close()
    server.close()


def test_a_chunked_answer_is_read_whole_and_the_connection_kept() -> None:
    chunked = [b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n5\r\n{\"a\":",
               b"\r\n7\r\n [1,", b"2]}\r\n0\r\n\r\n"]  # a chunk split across two writes
    server = Scripted([chunked, OK])
    client = KeepAlive(server.url, {}, 5.0, 5.0)
    answer = client.request("/chat", {})
    assert (answer.status_code, answer.reason_phrase, answer.json()) == (429, "Too Many Requests", {"a": [1, 2]})
    assert answer.headers["retry-after"] == "7"  # names in lower case
    assert client.request("/chat", {}).content == b"{}"
    assert [number for number, _ in server.requests] == [1, 1]
    server.close()


@pytest.mark.parametrize("closing", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
])
def test_an_answer_that_closes_the_connection_is_followed_by_a_new_one(closing: bytes) -> None:
    server = Scripted([[closing], OK])  # the server keeps the socket open: only the client can tell
    client = KeepAlive(server.url, {}, 5.0, 5.0)
    assert client.request("/chat", {}).json() == {}
    assert client.request("/chat", {}).json() == {}
    assert [number for number, _ in server.requests] == [1, 2]
    server.close()


def test_a_body_without_length_runs_until_the_server_closes() -> None:
    server = Scripted([[b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nab", b"cd"], OK], close_after=(0,))
    client = KeepAlive(server.url, {}, 5.0, 5.0)
    assert client.request("/chat", {}).content == b"abcd"
    assert client.request("/chat", {}).content == b"{}"
    assert [number for number, _ in server.requests] == [1, 2]
    server.close()


def test_an_interim_answer_is_skipped() -> None:
    server = Scripted([[b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"]])
    answer = KeepAlive(server.url, {}, 5.0, 5.0).request("/chat", {})
    assert (answer.status_code, answer.reason_phrase, answer.content) == (201, "Created", b"{}")
    server.close()


@pytest.mark.parametrize("broken", [
    [b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}"],  # a malformed status line
    [b"<html>not http</html>\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"],
])
def test_a_malformed_answer_is_dropped_and_the_next_request_gets_a_new_connection(broken: list[bytes]) -> None:
    server = Scripted([broken, OK])
    client = KeepAlive(server.url, {}, 5.0, 5.0)
    with pytest.raises(Dropped, match="malformed answer"):
        client.request("/chat", {})
    assert client.request("/chat", {}).json() == {}
    assert [number for number, _ in server.requests] == [1, 2]
    server.close()


def test_an_answer_cut_mid_body_is_dropped_and_not_sent_again() -> None:
    cut = [b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"partial"]
    server = Scripted([OK, cut, OK], close_after=(1,))
    client = KeepAlive(server.url, {}, 5.0, 5.0)
    client.request("/chat", {})
    with pytest.raises(Dropped, match="mid-answer"):  # on a kept-alive connection: the answer had begun
        client.request("/chat", {})
    assert len(server.requests) == 2
    assert client.request("/chat", {}).json() == {}
    server.close()


def test_a_line_break_in_a_header_is_a_clear_error_that_does_not_show_the_key() -> None:
    client = KeepAlive("http://127.0.0.1:9/v1", {"Authorization": "Bearer sk-secret\r\nX-Evil: 1"}, 1.0, 1.0)
    with pytest.raises(Unreachable, match="'Authorization' has a line break") as caught:
        client.request("/chat", {})
    assert "sk-secret" not in str(caught.value)


def test_bytes_after_the_answer_close_the_connection() -> None:
    server = Scripted([[OK[0] + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"], OK])  # an answer not asked for
    client = KeepAlive(server.url, {}, 5.0, 5.0)
    assert client.request("/chat", {}).json() == {}
    assert client.request("/chat", {}).json() == {}  # not the stray [] left on the first connection
    assert [number for number, _ in server.requests] == [1, 2]
    server.close()

"""JSON requests to an OpenAI-compatible server: one keep-alive HTTP/1.1 connection per worker thread.

The openai backend sends every request through `JsonClient.request(path, body)`. A plain-http server with no
proxy in the way (a server on this machine or on the cluster) is talked to over a plain socket per thread, kept
open between requests: the request goes out in one write and the answer is read by httptools' parser (llhttp,
as uvicorn uses; chunked bodies, keep-alive, strict about malformed answers). It costs ~0.07 ms of client CPU
per label-sized request, against ~0.16-0.23 ms with http.client and ~0.8 ms with httpx (bench/bench_http.py),
which bounds dialc's throughput on a fast server. An https server, or one reached through a proxy, goes
through httpx (its certificate stores, proxy and environment settings). Both raise the same three errors:
`Unreachable` (no connection), `NoAnswer` (timed out waiting), `Dropped` (connection lost, malformed answer).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson

from dialc.security import is_loopback


class Unreachable(Exception):
    """No connection to the server (refused, unknown host, unsupported URL, or it timed out)."""

    def __init__(self, reason: str, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.timed_out = reason, timed_out


class NoAnswer(Exception):
    """Connected, but no (complete) answer within the timeout."""


class Dropped(Exception):
    """The connection was lost before the answer was complete (the server crashed?)."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, reason, headers (names in lower case) and body."""

    status_code: int
    reason_phrase: str
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError:
            return json.loads(self.content)  # what orjson refuses and json reads (an integer past 64 bits)


def open_client(base_url: str, headers: dict[str, str], timeout: float, connect_timeout: float) -> JsonClient:
    """The client for a server: kept-alive http.client connections, or httpx for https and proxied servers."""
    url = urlsplit(base_url)
    if url.scheme == "http" and (is_loopback(base_url) or not _proxied(url.scheme, url.hostname or "")):
        return KeepAlive(base_url, headers, timeout, connect_timeout)
    return ViaHttpx(base_url, headers, timeout, connect_timeout)


def _proxied(scheme: str, host: str) -> bool:
    """Whether the environment names a proxy for this server (as httpx's trust_env reads it)."""
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


class JsonClient:
    """`request(path, body)`: POST the body as JSON (GET when it is None) to base_url + path."""

    def request(self, path: str, body: dict[str, Any] | None) -> Answer:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class KeepAlive(JsonClient):
    """A plain socket per calling thread, kept open: each request goes out in one write, its answer is read by
    httptools' parser (llhttp); a connection the server closed meanwhile is reopened and the request re-sent."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float, connect_timeout: float) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "localhost", url.port or 80
        self.root = url.path.rstrip("/")
        self.headers = {**headers, "Content-Type": "application/json", "Accept": "application/json"}
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._header_lines, self._header_problem = _header_lines(self.host, self.port, self.headers)
        self._heads: dict[tuple[str, bool], bytes] = {}  # (path, has a body) → request line and headers
        self._local = threading.local()
        self._open: set[_Connection] = set()  # every connection, to close them all
        self._lock = threading.Lock()

    def request(self, path: str, body: dict[str, Any] | None) -> Answer:
        message = self._message(path, None if body is None else orjson.dumps(body))
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock.fileno() >= 0:  # kept open since an earlier request (not by close())
            try:
                return self._exchange(conn, message)
            except _Stale:  # the server closed it meanwhile: ask again on a new connection
                self._discard(conn)
        conn = self._connect()
        try:
            return self._exchange(conn, message)
        except _Stale as exc:
            self._discard(conn)
            raise Dropped(str(exc)) from None

    def _message(self, path: str, data: bytes | None) -> bytes:
        """The whole request, ready for one write: request line, headers, Content-Length, body."""
        head = self._heads.get((path, data is not None))
        if head is None:
            head = self._head(path, data is not None)
        if data is None:
            return head + b"\r\n"
        return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(data), data)

    def _head(self, path: str, post: bool) -> bytes:
        if self._header_problem:
            raise Unreachable(self._header_problem)
        target = self.root + path
        if not target.isascii() or _DISALLOWED_IN_URL.search(target):
            raise Dropped(f"InvalidURL: the path {target!r} has a space, a control or a non-ASCII character")
        head = f"{'POST' if post else 'GET'} {target} HTTP/1.1\r\n".encode("ascii") + self._header_lines
        self._heads[(path, post)] = head
        return head

    def _connect(self) -> _Connection:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except TimeoutError:
            raise Unreachable("connection timed out", timed_out=True) from None
        except OSError as exc:  # refused, unknown host, no route
            raise Unreachable(str(exc).split("] ")[-1].lower() or type(exc).__name__) from None
        sock.settimeout(self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(sock)
        self._local.conn = conn
        with self._lock:
            self._open.add(conn)
        return conn

    def _exchange(self, conn: _Connection, message: bytes) -> Answer:
        """One request and its whole answer. `_Stale` when the server closed the connection before answering
        (the caller knows whether it was fresh); any other failure closes it (its state is unknown)."""
        conn.received = 0
        try:
            conn.sock.sendall(message)
            answer = conn.read_answer()
        except _RESET as exc:
            if conn.received == 0:
                raise _Stale(f"{type(exc).__name__}: {exc}") from None
            self._discard(conn)
            raise Dropped(f"the connection was lost mid-answer ({type(exc).__name__}: {exc})") from None
        except _Stale:
            raise
        except TimeoutError:
            self._discard(conn)
            raise NoAnswer() from None
        except OSError as exc:
            self._discard(conn)
            raise Dropped(f"{type(exc).__name__}: {exc}") from None
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._discard(conn)
            raise Dropped(f"malformed answer from the server ({type(exc).__name__}: {exc})") from None
        except Dropped:
            self._discard(conn)
            raise
        if not conn.reusable:
            self._discard(conn)
        return answer

    def _discard(self, conn: _Connection) -> None:
        conn.sock.close()
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            self._open.discard(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.sock.close()


# what a connection kept open since its last request raises when the server has closed it meanwhile
_RESET = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
# what http.client refuses in a request target
_DISALLOWED_IN_URL = re.compile("[\x00-\x20\x7f]")


class _Stale(Exception):
    """The server closed the connection before sending any byte of the answer."""


def _header_lines(host: str, port: int, headers: dict[str, str]) -> tuple[bytes, str]:
    """The request's header lines (Host and Accept-Encoding first, as http.client sends them), and why they
    cannot be sent ('' when they can): a line break or a character outside Latin-1 in a name or value."""
    names = {name.lower() for name in headers}
    lines = []
    if "host" not in names:
        host_text = host if host.isascii() else host.encode("idna").decode("ascii")
        host_text = f"[{host_text}]" if ":" in host_text else host_text  # an IPv6 address
        lines.append(("Host", host_text if port == 80 else f"{host_text}:{port}"))
    if "accept-encoding" not in names:
        lines.append(("Accept-Encoding", "identity"))  # no compressed answer: the body is read as it comes
    lines.extend(headers.items())
    out = bytearray()
    for name, value in lines:
        if not _LEGAL_HEADER_NAME.fullmatch(name) or "\r" in value or "\n" in value:
            return b"", f"the request header {name!r} has a line break or an invalid character (check the API key)"
        try:
            out += b"%s: %s\r\n" % (name.encode("ascii"), value.encode("latin-1"))
        except UnicodeEncodeError:
            return b"", f"the request header {name!r} has a character outside Latin-1 (check the API key)"
    return bytes(out), ""


_LEGAL_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _Connection:
    """A socket and the httptools parser that reads its answers, one after the other (kept alive)."""

    __slots__ = ("sock", "parser", "buffer", "received", "reusable", "answer", "headers_done",
                 "_reason", "_headers", "_body", "_keep_alive")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = httptools.HttpResponseParser(self)
        self.parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)  # as http.client: bare LF
        self.buffer = memoryview(bytearray(_READ_SIZE))
        self.received = 0  # bytes of the current answer so far
        self.reusable = True  # False after an answer that closes the connection, or extra bytes after it
        self.answer: Answer | None = None
        self.headers_done = False
        self._reason: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._keep_alive = True

    def read_answer(self) -> Answer:
        """Read until the answer is complete: its last byte, or the end of the stream for one without a length."""
        self.answer, self.headers_done = None, False
        recv_into, feed, buffer = self.sock.recv_into, self.parser.feed_data, self.buffer
        while self.answer is None:
            n = recv_into(buffer)
            if n == 0:
                self._end_of_stream()
                continue
            self.received += n
            try:
                feed(buffer[:n])
            except httptools.HttpParserError:
                if self.answer is None:
                    raise
                self.reusable = False  # garbage after the answer: the next answer could not be found
        return self.answer

    def _end_of_stream(self) -> None:
        if self.received == 0:
            raise _Stale("the server closed the connection without answering")
        if not (self.headers_done and self._until_closed()):
            raise Dropped(f"the server closed the connection mid-answer (after {self.received} bytes)")
        self._keep_alive = False
        self._complete()

    def _until_closed(self) -> bool:
        """Whether the answer's body runs until the connection closes (no Content-Length, not chunked)."""
        headers = {name.lower(): value.lower() for name, value in self._headers}
        return b"content-length" not in headers and not headers.get(b"transfer-encoding", b"").endswith(b"chunked")

    def _complete(self) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self._headers}
        reason = b"".join(self._reason).decode("latin-1").strip()
        self.answer = Answer(self.parser.get_status_code(), reason, headers, b"".join(self._body))
        self.reusable = self._keep_alive

    # httptools' callbacks
    def on_message_begin(self) -> None:
        if self.answer is not None:  # bytes after the answer that were not asked for
            self.reusable = False
        self.headers_done = False
        self._reason, self._headers, self._body = [], [], []

    def on_status(self, reason: bytes) -> None:
        self._reason.append(reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.answer is not None:
            return
        if 100 <= self.parser.get_status_code() < 200:  # an interim answer (100 Continue): the answer follows
            self.headers_done = False
            return
        self._keep_alive = self.parser.should_keep_alive()
        self._complete()


_READ_SIZE = 65536


class ViaHttpx(JsonClient):
    """httpx: https servers and servers behind a proxy (certificate stores, proxies and the environment)."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float, connect_timeout: float) -> None:
        import httpx2 as httpx

        self._httpx = httpx
        self._client = httpx.Client(
            base_url=base_url, headers=headers, timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),  # the callers bound them
            trust_env=not is_loopback(base_url),  # proxies only for remote servers
        )

    def request(self, path: str, body: dict[str, Any] | None) -> Answer:
        httpx = self._httpx
        try:
            response = self._client.get(path) if body is None else self._client.post(path, json=body)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise Unreachable("connection timed out", timed_out=True) from None
            raise NoAnswer() from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise Unreachable(str(exc).split("] ")[-1].lower() or type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise Dropped(f"{type(exc).__name__}: {exc}") from None
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Answer(response.status_code, response.reason_phrase, headers, response.content)

    def close(self) -> None:
        self._client.close()

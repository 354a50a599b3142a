"""JSON requests to an OpenAI-compatible server: one keep-alive HTTP/1.1 connection per worker thread.

The openai backend sends every request through `JsonClient.request(path, body)`. A plain-http server with no
proxy in the way (a server on this machine or on the cluster) is talked to with the standard library's
http.client, one connection per thread kept open between requests: about a quarter of httpx's CPU per request
(~0.15 ms against ~0.5 ms), which bounds dialc's throughput on a fast server. An https server, or one reached
through a proxy, goes through httpx (its certificate stores, proxy and environment settings). Both raise the
same three errors: `Unreachable` (no connection), `NoAnswer` (timed out waiting), `Dropped` (connection lost).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from dialc.security import is_loopback

# what a connection kept open since its last request raises when the server has closed it meanwhile
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


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
    """http.client, one connection per calling thread, reopened when the server closed it."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float, connect_timeout: float) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "localhost", url.port or 80
        self.root = url.path.rstrip("/")
        self.headers = {**headers, "Content-Type": "application/json", "Accept": "application/json"}
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._local = threading.local()
        self._open: list[http.client.HTTPConnection] = []  # every connection, to close them all
        self._lock = threading.Lock()

    def request(self, path: str, body: dict[str, Any] | None) -> Answer:
        data = None if body is None else orjson.dumps(body)
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None:  # kept open since an earlier request: the server may have closed it meanwhile
            try:
                return self._exchange(conn, path, data)
            except _STALE:  # then ask again on a new connection
                self._discard(conn)
        conn = self._connect()
        try:
            return self._exchange(conn, path, data)
        except _STALE as exc:
            self._discard(conn)
            raise Dropped(f"{type(exc).__name__}: {exc}") from None

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except TimeoutError:
            raise Unreachable("connection timed out", timed_out=True) from None
        except OSError as exc:  # refused, unknown host, no route
            raise Unreachable(str(exc).split("] ")[-1].lower() or type(exc).__name__) from None
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.conn = conn
        with self._lock:
            self._open.append(conn)
        return conn

    def _exchange(self, conn: http.client.HTTPConnection, path: str, data: bytes | None) -> Answer:
        """One request and its whole answer; a fresh connection's failure closes it (its state is unknown)."""
        try:
            conn.request("GET" if data is None else "POST", self.root + path, body=data, headers=self.headers)
            response = conn.getresponse()
            content = response.read()
        except _STALE:  # the caller knows whether the connection was fresh
            raise
        except TimeoutError:
            self._discard(conn)
            raise NoAnswer() from None
        except (OSError, http.client.HTTPException) as exc:
            self._discard(conn)
            raise Dropped(f"{type(exc).__name__}: {exc}") from None
        headers = {name.lower(): value for name, value in response.getheaders()}
        if response.will_close:
            self._discard(conn)
        return Answer(response.status, response.reason, headers, content)

    def _discard(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()


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

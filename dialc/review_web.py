"""A review file → a local web page (127.0.0.1 only, a secret token in its URL) to accept, reject or edit
candidates; every decision is merged into the file at once (the one review-file writer, under its lock)."""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dialc.review_page import PAGE
from dialc.review_ui import load_rows, pending_summary
from dialc_runtime.data.review import Decision, ReviewFileError, read_review, record_decision

HOST = "127.0.0.1"  # never another interface: the page can change a file on this machine
MAX_BODY = 1 << 20  # a decision is a few hundred bytes; a larger request body is refused
TOKEN_HEADER = "X-Dialc-Token"


class ReviewServer(ThreadingHTTPServer):
    """One review file served to whoever holds the token (page and API alike)."""

    daemon_threads = True

    def __init__(self, path: Path, port: int = 0, token: str | None = None) -> None:
        self.review_path = path
        self.token = token or secrets.token_urlsafe(24)
        self.nonce = secrets.token_urlsafe(16)
        super().__init__((HOST, port), ReviewHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/?token={self.token}"

    def authorised(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "dialc-review"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        route = self._route()
        if route == "/":
            self._send(HTTPStatus.OK, PAGE.replace("__NONCE__", self.server.nonce).encode(), "text/html; charset=utf-8")
        elif route == "/api/state":
            self._state()
        elif route is not None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {route}"})

    def do_POST(self) -> None:  # noqa: N802
        route = self._route()
        if route == "/api/decide":
            self._decide()
        elif route is not None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {route}"})

    def _route(self) -> str | None:
        """The request's path once its token is checked; None after answering 403 to a wrong or missing one."""
        url = urlsplit(self.path)
        given = self.headers.get(TOKEN_HEADER) or next(iter(parse_qs(url.query).get("token", [])), None)
        if not self.server.authorised(given):
            self._json(HTTPStatus.FORBIDDEN, {"error": "forbidden: open the URL `dialc review --web` printed"})
            return None
        return url.path

    def _state(self) -> None:
        try:
            rows = read_review(self.server.review_path)
        except ReviewFileError as exc:
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})
            return
        self._json(HTTPStatus.OK, {"file": str(self.server.review_path),
                                   "rows": sorted(rows.values(), key=lambda r: r["id"])})

    def _decide(self) -> None:
        body = self._body()
        if body is None:
            return
        try:
            decision = parse_decision(body)
            outcome = record_decision(self.server.review_path, decision)
        except ValueError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        except (ReviewFileError, OSError) as exc:
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"not saved: {exc}"})
            return
        if outcome.conflict:
            self._json(HTTPStatus.CONFLICT, {"row": outcome.row, "conflict": True})
            return
        print(f"{decision.decision:<8} {decision.id}" + (" (edited)" if decision.instruction else ""),
              file=sys.stderr, flush=True)
        self._json(HTTPStatus.OK, {"row": outcome.row, "conflict": False})

    def _body(self) -> Any:
        """The request's JSON body, or None after answering 400/413."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
            return None
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except (ValueError, UnicodeDecodeError):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "the request body is not JSON"})
            return None

    def _json(self, status: HTTPStatus, value: Any) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                         f"script-src 'nonce-{self.server.nonce}'; connect-src 'self'; img-src data:; "
                         "frame-ancestors 'none'")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: decisions are printed, not every request (the polling page asks every few seconds)."""


def parse_decision(body: Any) -> Decision:
    """A decision request `{id, decision, instruction?, seen?: {decision, instruction}}` → a Decision."""
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise ValueError('a decision needs a candidate "id"')
    instruction, seen = body.get("instruction"), body.get("seen")
    if instruction is not None and not isinstance(instruction, str):
        raise ValueError('"instruction" must be text')
    if seen is not None and not (isinstance(seen, dict) and set(seen) == {"decision", "instruction"}):
        raise ValueError('"seen" must hold the candidate\'s "decision" and "instruction"')
    return Decision(body["id"], str(body.get("decision")), instruction, seen)


def serve(path: Path, port: int = 0, open_browser: bool = True) -> int:
    """Serve the page until Ctrl-C; then the terminal review's summary and exit status
    (0 nothing pending, 3 some pending, 1 unreadable file, 2 the port cannot be used)."""
    if load_rows(path) is None:
        return 1
    try:
        server = ReviewServer(path, port)
    except OSError as exc:
        print(f"dialc: error: cannot listen on {HOST}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"Reviewing {path} at {server.url}\n(Ctrl-C to stop; every decision is saved at once)", flush=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print(file=sys.stderr)
    finally:
        server.server_close()
    rows = load_rows(path)
    return 1 if rows is None else pending_summary(path, rows)

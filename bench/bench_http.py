"""Client CPU per request and requests/s of the openai backend's kept-alive client against http.client.

Starts bench/scale_server.py (localhost, instant answers), then sends N label-sized chat requests from
`--concurrency` threads through the current `KeepAlive` (a plain socket, one write per request, httptools'
parser) and through the previous client (http.client, one kept-alive connection per thread, copied below
as the baseline), alternating rounds in the same run. Prints client CPU per request (this process:
user + system), the server's CPU per request, requests/s, and the ratios new / old.

    .venv/bin/python bench/bench_http.py [--n 10000] [--concurrency 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from servers import SCALE_SERVER, start_server  # noqa: E402

from dialc_runtime.models.http_json import Answer, JsonClient, KeepAlive  # noqa: E402

# a label request as dialc sends it: a system prompt, a ~1.8 KB user prompt, a choice constraint
BODY: dict[str, Any] = {
    "model": "bench", "max_tokens": 64, "temperature": 0.0, "seed": 1,
    "messages": [{"role": "system", "content": "You label dialogues carefully."},
                 {"role": "user", "content": "Agent: how can I help? Customer: " + "a flat near the station " * 75}],
    "structured_outputs": {"choice": ["booking", "complaint", "question"]},
}


class HttpClientKeepAlive(JsonClient):
    """The baseline: the previous KeepAlive, http.client with one kept-alive connection per thread (its
    request path; errors are not classified here)."""

    _STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float, connect_timeout: float) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "localhost", url.port or 80
        self.root = url.path.rstrip("/")
        self.headers = {**headers, "Content-Type": "application/json", "Accept": "application/json"}
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._local = threading.local()
        self._open: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(self, path: str, body: dict[str, Any] | None) -> Answer:
        data = None if body is None else orjson.dumps(body)
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                return self._exchange(conn, path, data)
            except self._STALE:
                conn.close()
        conn = self._connect()
        return self._exchange(conn, path, data)

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.conn = conn
        with self._lock:
            self._open.append(conn)
        return conn

    def _exchange(self, conn: http.client.HTTPConnection, path: str, data: bytes | None) -> Answer:
        conn.request("GET" if data is None else "POST", self.root + path, body=data, headers=self.headers)
        response = conn.getresponse()
        content = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        if response.will_close:
            conn.close()
        return Answer(response.status, response.reason, headers, content)

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(client: JsonClient, n: int, concurrency: int, server_pid: int) -> tuple[float, float, float]:
    """(client CPU ms per request, server CPU ms per request, requests/s) of n requests, all answered 200."""
    def one(i: int) -> int:
        answer = client.request("/chat/completions", {**BODY, "seed": i})
        answer.json()
        return answer.status_code

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(concurrency * 4)))  # warm: every thread has its connection
        cpu, server, start = own_cpu(), process_cpu(server_pid), time.perf_counter()
        statuses = list(pool.map(one, range(n)))
        wall = time.perf_counter() - start
        cpu, server = own_cpu() - cpu, process_cpu(server_pid) - server
    if statuses.count(200) != n:
        raise SystemExit(f"{n - statuses.count(200)} requests were not answered 200")
    return 1000 * cpu / n, 1000 * server / n, n / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    proc, port = start_server(SCALE_SERVER)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        old, new = HttpClientKeepAlive(url, {"Authorization": "Bearer EMPTY"}, 60, 10), \
            KeepAlive(url, {"Authorization": "Bearer EMPTY"}, 60, 10)
        a, b = old.request("/chat/completions", BODY), new.request("/chat/completions", BODY)
        if (a.status_code, a.reason_phrase, a.content) != (b.status_code, b.reason_phrase, b.content):
            raise SystemExit(f"the two clients read different answers: {a} / {b}")
        results: dict[str, list[tuple[float, float, float]]] = {"http.client (old)": [], "KeepAlive (new)": []}
        print(f"{args.n} chat requests of {len(orjson.dumps(BODY))} bytes, concurrency {args.concurrency}, "
              f"{args.rounds} rounds each (alternating)")
        for _ in range(args.rounds):
            for name, client in (("http.client (old)", old), ("KeepAlive (new)", new)):
                results[name].append(run(client, args.n, args.concurrency, proc.pid))
                cpu, server, rate = results[name][-1]
                print(f"  {name:18s} client CPU {cpu:.3f} ms/req  server CPU {server:.3f} ms/req  {rate:7.0f} req/s")
        old.close()
        new.close()
    finally:
        proc.kill()
        proc.wait()
    medians = {name: [statistics.median(r[i] for r in rows) for i in range(3)] for name, rows in results.items()}
    (old_cpu, _, old_rate), (new_cpu, _, new_rate) = medians["http.client (old)"], medians["KeepAlive (new)"]
    print(f"median client CPU per request: old {old_cpu:.3f} ms, new {new_cpu:.3f} ms "
          f"→ new/old = {new_cpu / old_cpu:.2f} ({old_cpu / new_cpu:.1f}x less)")
    print(f"median requests/s: old {old_rate:.0f}, new {new_rate:.0f} → new/old = {new_rate / old_rate:.2f}")


if __name__ == "__main__":
    main()

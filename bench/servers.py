"""The benchmarks' model servers: start one in a subprocess and take the port it prints (`PORT <n>`)."""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCALE_SERVER = ROOT / "bench" / "scale_server.py"  # instant (or fixed-latency), constraint-valid answers
TEST_SERVER = ROOT / "tests" / "openai_server.py"  # the tests' scripted server (latency, jitter, echo)


def start_server(script: Path, *args: str, wait_s: float = 20.0) -> tuple[subprocess.Popen[str], int]:
    """The server process and its port; its start failing (no port within `wait_s`) stops the bench."""
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], wait_s)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"{script.relative_to(ROOT)} did not start: {line!r}")
    return proc, int(line.split()[1])

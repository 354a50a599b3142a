"""`dialc run` at scale against a zero-latency OpenAI-compatible server → wall, records/s, CPU, peak RSS, store size.

    python bench/bench_scale.py [--prompts 5000 50000 200000] [--keep DIR]

For each prompt count: a corpus multiplied from data/realestate (count/10 dialogues, ids made unique),
a spec running ingest → sample → label (openai backend on bench/scale_server.py) → four quality
dimensions (schema and length rules, minhash dedup, a choice judge on the same server) → filter →
export, and one fresh `dialc run` in a subprocess. Peak RSS and CPU time are the dialc process's own
(os.wait4's rusage, cross-checked with /proc VmHWM), the CPU of the child processes it runs steps in
included; the process tree's peak RSS is the sum over dialc and its children, sampled every 0.1 s; the server
runs in another process. Store bytes are
store.sqlite (+ WAL) per production prompt, with the stored JSON per step. The last line is the RSS
ratio largest/smallest run, of dialc alone and of its process tree (target ≤ 1.5). CPU seconds per record stay
comparable on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from servers import SCALE_SERVER, start_server

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "realestate" / "dialogues.jsonl"
PROMPTS_PER_DIALOGUE = 10  # the corpus holds count / 10 dialogues (48 distinct prompts each: ample)

SPEC = """\
pipeline scale {{ seed = 7 }}

model served {{
  backend = openai
  path = "bench"
  base_url = "http://127.0.0.1:{port}/v1"
  temperature = 0.0
  max_tokens = 64
  retries = 1
  batch_size = 32
  timeout = 120  # set: an unset timeout reaches the backend as None
}}

source dialogues {{ path = "dialogues.jsonl"  roles = [agent, customer]  scenario = field("scenario") }}

task extract {{
  category = information_extraction
  instruction = "Extract the customer's housing requirements from the dialogue."
  output {{ budget_max: int? [0..100_000_000]  district: str? (max 40)  purpose: enum(rent, buy)? }}
}}
task summary {{ category = summarization  instruction = "Summarise the conversation."  output = text(max = 300) }}
task reply {{ category = reply_generation  instruction = "Write the agent's next reply."  output = text(max = 300) }}
task intent {{
  category = analysis
  instruction = "Classify how ready the customer is to act."
  output = choice([ready_to_sign, comparing_options, just_browsing, unhappy])
}}

expressions style {{
  tone = {{formal: 2, friendly: 2, terse: 1}}
  persona = {{"new agent": 1, "store manager": 1}}
  detail = {{brief: 1, thorough: 1}}
}}

sample prompts {{
  from = dialogues * tasks * style
  count = {count}
  balance = [scenario, category]
  template = \"\"\"
    You are assisting a {{persona}} at a real-estate agency. Use a {{tone}}, {{detail}} style.
    Dialogue ({{scenario}}):
    {{dialogue}}

    Task: {{instruction}}
  \"\"\"
}}

label labels {{ from = prompts  model = served }}

quality {{
  dimension valid    rule  {{ check = schema  gate = true }}
  dimension sane_len rule  {{ check = length  min = 1  max = 200 }}
  dimension novel    dedup {{ method = minhash  threshold = 0.85 }}
  dimension helpful  judge {{ model = served  scale = 1..5  method = choice  rubric = "Is the answer useful?" }}
  keep when score >= 0.4
}}

export dataset {{ formats = [chat_jsonl] }}
"""


def write_corpus(path: Path, dialogues: int) -> None:
    """`dialogues` dialogues: the real-estate corpus repeated, each copy with its own ids."""
    base = [json.loads(line) for line in CORPUS.read_text("utf-8").splitlines() if line.strip()]
    with path.open("w", encoding="utf-8") as f:
        for i in range(dialogues):
            d = dict(base[i % len(base)])
            d["id"] = f"{d['id']}-x{i // len(base):05d}"
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


def vm_hwm(pid: int) -> int:
    """Peak resident set size of a live process, in bytes (/proc/PID/status VmHWM), 0 once it is gone."""
    return _status_kb(pid, "VmHWM:") * 1024


def tree_rss(pid: int) -> int:
    """Resident set size now of a process and all its descendants (dialc runs CPU-bound steps beside others in
    child processes, engine/offload.py), in bytes."""
    return sum(_status_kb(p, "VmRSS:") for p in [pid, *_descendants(pid)]) * 1024


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            todo += children
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (/proc/PID/stat), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_dialc(spec: Path, run_dir: Path) -> dict[str, Any]:
    """One `dialc run` in a subprocess: wall, CPU seconds and peak RSS (its own, exact; and of the process tree,
    its children included: the sum sampled every 0.1 s), exit status."""
    launcher = "import sys; from dialc.cli import main; sys.argv[0] = 'dialc'; main()"
    cmd = [sys.executable, "-c", launcher, "run", str(spec), "--run-dir", str(run_dir), "-q"]
    log = (run_dir.parent / "dialc.log").open("w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    hwm = tree = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        hwm, tree = max(hwm, vm_hwm(proc.pid)), max(tree, tree_rss(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    log.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    # wait4's usage is the process's and its waited-for children's (CPU summed, maxrss the largest of them)
    rss = max(hwm, usage.ru_maxrss * 1024)
    return {"wall": wall, "rc": proc.returncode, "cpu": usage.ru_utime + usage.ru_stime, "rss": rss,
            "tree_rss": max(tree, rss)}


def store_bytes(run_dir: Path) -> tuple[int, dict[str, int]]:
    """store.sqlite (+ WAL) size, and the stored record bytes per step id (JSON, compressed where long)."""
    files = [run_dir / "store.sqlite", run_dir / "store.sqlite-wal"]
    total = sum(f.stat().st_size for f in files if f.is_file())
    with sqlite3.connect(run_dir / "store.sqlite") as db:
        per_step = dict(db.execute("SELECT step_id, SUM(LENGTH(data)) FROM records GROUP BY step_id").fetchall())
    return total, per_step


def bench(count: int, work: Path, server_port: int, server_pid: int) -> dict[str, Any]:
    here = work / f"n{count}"
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(parents=True)
    write_corpus(here / "dialogues.jsonl", max(72, -(-count // PROMPTS_PER_DIALOGUE)))
    spec = here / "scale.dial"
    spec.write_text(SPEC.format(port=server_port, count=count), encoding="utf-8")
    server_cpu = cpu_seconds(server_pid)
    out = run_dialc(spec, here / "run")
    out["server_cpu"] = cpu_seconds(server_pid) - server_cpu
    if out["rc"] not in (0, 3):
        tail = (here / "dialc.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"dialc run failed (exit {out['rc']}) at {count} prompts:\n{tail}")
    out["store"], out["per_step"] = store_bytes(here / "run")
    results = json.loads((here / "run" / "run_results.json").read_text("utf-8"))
    out["steps"] = {s["id"]: (s["status"], s["records"], s["seconds"]) for s in results["steps"]}
    out["count"] = count
    return out


def report(row: dict[str, Any]) -> None:
    n = row["count"]
    print(f"{n:>8,} prompts  wall {row['wall']:7.1f} s  {n / row['wall']:7.0f} records/s  "
          f"dialc CPU {row['cpu']:7.1f} s = {1000 * row['cpu'] / n:.2f} ms/record "
          f"(server {1000 * row['server_cpu'] / n:.2f} ms/record)  peak RSS {row['rss'] / 2**20:6.0f} MB "
          f"(with its children {row['tree_rss'] / 2**20:.0f} MB)  "
          f"store {row['store'] / 2**20:6.1f} MB = {row['store'] / n / 1024:.2f} KB/prompt", flush=True)
    steps = "  ".join(f"{sid} {status} {recs} {sec:.1f}s" for sid, (status, recs, sec) in row["steps"].items())
    print(f"          steps: {steps}")
    per = "  ".join(f"{sid} {b / n:.0f}" for sid, b in sorted(row["per_step"].items()))
    print(f"          stored record bytes per prompt: {per}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, nargs="+", default=[5000, 50000, 200000])
    parser.add_argument("--latency", type=float, default=0.0, help="server seconds per request")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp dir)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="dialc-scale-"))
    server, port = start_server(SCALE_SERVER, "--latency", str(args.latency))
    rows = []
    try:
        for count in args.prompts:
            rows.append(bench(count, work, port, server.pid))
            report(rows[-1])
            if not args.keep:
                shutil.rmtree(work / f"n{count}", ignore_errors=True)
    finally:
        server.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if len(rows) > 1:
        small, large = min(rows, key=lambda r: r["count"]), max(rows, key=lambda r: r["count"])
        print(f"peak RSS {large['count']:,} / {small['count']:,} prompts: {large['rss'] / small['rss']:.2f}; "
              f"of the process tree (children included): {large['tree_rss'] / small['tree_rss']:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()

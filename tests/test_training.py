"""Fine-tuning: loss masks, replay, packing, adapter output, resume after interruption, the step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from runtime_fakes import MemoryContext  # noqa: E402

from dialc.plan import Suite  # noqa: E402
from dialc_runtime.train.trainer import (  # noqa: E402
    IGNORE,
    TrainConfig,
    build_examples,
    mix_replay,
    pack,
    tokenize_chat,
    train,
)

CHAT = [
    {"role": "system", "content": "You extract facts."},
    {"role": "user", "content": "Budget?"},
    {"role": "assistant", "content": "3000 a month"},
    {"role": "user", "content": "District?"},
    {"role": "assistant", "content": "Chaoyang"},
]


def records(n: int = 16) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"Say the number {i}."},
                {"role": "assistant", "content": f"The number is {i}."},
            ]
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_loss_is_on_assistant_tokens_only(tokenizer: Any) -> None:
    example = tokenize_chat(tokenizer, CHAT, max_len=512)
    text = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert example["input_ids"] == tokenizer(text, add_special_tokens=False)["input_ids"]
    targets = [t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE]
    assert tokenizer.decode(targets) == "3000 a month<|im_end|>\nChaoyang<|im_end|>\n"
    # every supervised token is its own label, and the prompt (system, users, headers) is masked
    kept = [(t, label) for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE]
    assert all(t == label for t, label in kept)
    prompt = tokenizer.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert all(label == IGNORE for label in example["labels"][:n_prompt])


def test_truncated_examples_without_targets_are_dropped(tokenizer: Any) -> None:
    examples, dropped = build_examples(tokenizer, [{"messages": CHAT}], max_len=8)
    assert examples == [] and dropped == 1
    examples, dropped = build_examples(tokenizer, [{"messages": CHAT}], max_len=512)
    assert len(examples) == 1 and dropped == 0


def test_replay_mix_is_seeded_and_sized() -> None:
    domain, general = (
        records(10),
        [{"messages": [{"role": "user", "content": str(i)}]} for i in range(50)],
    )
    mixed = mix_replay(domain, general, 0.3, seed=1)
    assert len(mixed) == 13 and mixed[:10] == domain
    assert mixed == mix_replay(domain, general, 0.3, seed=1)
    assert mix_replay(domain, general, 0.0, seed=1) == domain
    assert len(mix_replay(domain, general[:2], 0.5, seed=1)) == 15  # with replacement when short


def test_packing_restarts_positions_and_keeps_labels(tokenizer: Any) -> None:
    examples, _ = build_examples(tokenizer, records(6), max_len=128)
    rows = pack(examples, max_len=128, seed=0)
    assert len(rows) < len(examples)
    assert all(len(r["input_ids"]) <= 128 for r in rows)
    assert sum(len(r["input_ids"]) for r in rows) == sum(len(e["input_ids"]) for e in examples)
    starts = sum(r["position_ids"].count(0) for r in rows)
    assert starts == len(examples)


def test_packed_examples_do_not_attend_to_each_other(tiny_model_dir: Path, tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    first, second = (e["input_ids"] for e in build_examples(tokenizer, records(2), 128)[0])
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([second])).logits[0]
        packed = model(
            input_ids=torch.tensor([first + second]),
            position_ids=torch.tensor([list(range(len(first))) + list(range(len(second)))]),
            use_cache=False,  # as in training: packed masks are only built without a KV cache
        ).logits[0, len(first) :]
    assert torch.allclose(alone, packed, atol=1e-4)


def fast_config(**overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = dict(max_steps=4, batch_size=4, lr=1e-2, save_steps=2, warmup=0)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_lora_adapter_loads_with_peft_and_changes_outputs(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    reports: list[dict[str, Any]] = []
    result = train(tiny_model_dir, records(), tmp_path, fast_config(), progress=reports.append)
    assert result.steps == 4 and result.adapter_dir == tmp_path / "adapter"
    assert [r["step"] for r in reports] == [1, 2, 3, 4]
    assert {"loss", "tokens_per_s", "eta_s", "total_steps"} <= set(reports[-1])
    assert reports[-1]["tokens_per_s"] > 0 and reports[-1]["eta_s"] == 0
    log = json.loads((tmp_path / "train_log.json").read_text())
    assert [e["step"] for e in log] == [1, 2, 3, 4] and log[-1]["loss"] < log[0]["loss"]
    meta = json.loads((tmp_path / "train_meta.json").read_text())
    assert meta["steps"] == 4 and meta["records"] == 16 and "seconds" not in meta
    assert json.loads((tmp_path / ".meta" / "train_timing.json").read_text())["device"] == "cpu"
    assert not (tmp_path / "checkpoints").exists()  # removed after a finished run

    ids = torch.tensor([[1, 2, 3, 4, 5]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, result.adapter_dir).eval()
        after = tuned(ids).logits
    assert not torch.allclose(before, after, atol=1e-4)


def test_interrupted_training_resumes_to_the_same_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    cfg = fast_config(dropout=0.1)
    whole = train(tiny_model_dir, records(), tmp_path / "whole", cfg)

    class Interrupt(Exception):
        pass

    def crash_at_step_3(info: dict[str, Any]) -> None:
        if info["step"] == 3:
            raise Interrupt  # after the step-2 checkpoint, as a Ctrl-C would

    with pytest.raises(Interrupt):
        train(tiny_model_dir, records(), tmp_path / "cut", cfg, progress=crash_at_step_3)
    assert (tmp_path / "cut" / "checkpoints" / "checkpoint-2").is_dir()
    resumed = train(tiny_model_dir, records(), tmp_path / "cut", cfg)
    assert resumed.resumed_from == 2 and resumed.steps == 4
    assert [e["step"] for e in resumed.log] == [1, 2, 3, 4]
    assert [e["loss"] for e in resumed.log] == pytest.approx([e["loss"] for e in whole.log])
    a = load_file(whole.adapter_dir / "adapter_model.safetensors")
    b = load_file(resumed.adapter_dir / "adapter_model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_checkpoints_of_other_settings_are_not_resumed(tiny_model_dir: Path, tmp_path: Path) -> None:
    cfg = fast_config(keep_checkpoints=True)
    train(tiny_model_dir, records(), tmp_path, cfg)
    again = train(tiny_model_dir, records(), tmp_path, fast_config(lr=5e-3))
    assert again.resumed_from is None and again.steps == 4


def test_merged_weights_equal_base_plus_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = train(tiny_model_dir, records(), tmp_path, fast_config(max_steps=2, merge=True))
    ids = torch.tensor([[5, 6, 7, 8]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    merged = AutoModelForCausalLM.from_pretrained(result.model_dir).eval()
    with torch.no_grad():
        expected = PeftModel.from_pretrained(base, result.adapter_dir).eval()(ids).logits
        assert torch.allclose(merged(ids).logits, expected, atol=1e-4)


def test_full_fine_tuning_with_packing_writes_a_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    cfg = fast_config(method="full", packing=True, max_len=128, max_steps=2, lr=1e-3)
    result = train(tiny_model_dir, records(), tmp_path, cfg)
    assert result.adapter_dir is None and result.model_dir == tmp_path / "model"
    assert result.steps == 2 and result.tokens > 0
    AutoModelForCausalLM.from_pretrained(result.model_dir)


# ---------------------------------------------------------------- the finetune step


def FakeContext(params: dict, inputs: dict[str, list], out_dir: Path, seed: int = 7) -> Any:  # noqa: N802
    """A finetune (or evaluate) step's context over in-memory records."""
    kind = "evaluate" if "finetune.domain" in inputs else "finetune"
    return MemoryContext(f"{kind}.domain", {"seed": seed, **params}, inputs, out_dir=out_dir, seed=seed)


def labelled(n: int) -> list[dict[str, Any]]:
    """Filter-step records: prompt messages, the label, kept or not."""
    return [
        {
            "id": f"r{i:03d}",
            "dialogue_id": f"d{i}",
            "messages": [{"role": "user", "content": f"Extract the budget from dialogue {i}."}],
            "answer": json.dumps({"budget": 1000 + i}),
            "output": {"kind": "json", "schema": {}},
            "value": {"budget": 1000 + i},
            "kept": i % 5 != 0,
        }
        for i in range(n)
    ]


def test_finetune_step_trains_on_kept_training_records(tiny_model_dir: Path, tmp_path: Path) -> None:
    from dialc_runtime.data.split import is_holdout
    from dialc_runtime.steps import finetune

    params = {
        "base": {"name": "tiny", "path": str(tiny_model_dir)},
        "method": {"kind": "lora", "r": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]},
        "max_steps": 2,
        "batch_size": 4,
        "lr": 1e-3,
        "holdout": {"fraction": 0.3, "seed": 7},
    }
    data = labelled(20)
    ctx = FakeContext(params, {"filter.quality": data}, tmp_path / "finetune.domain")
    output = finetune.run(ctx)  # type: ignore[arg-type]
    expected_held = sum(1 for r in data if r["kept"] and is_holdout(r["dialogue_id"], 0.3, 7))
    summary = ctx.emitted["result"]
    assert summary["held_out"] == expected_held > 0
    assert summary["records"] == 16 - expected_held
    assert summary["steps"] == 2 and ctx.advanced == 2
    assert output.metrics["adapter"] == "adapter"
    assert (ctx.out_dir / "adapter" / "adapter_config.json").is_file()
    assert json.loads((ctx.out_dir / "adapter" / "adapter_config.json").read_text())["r"] == 4


def test_finetune_step_fails_clearly_without_records(tiny_model_dir: Path, tmp_path: Path) -> None:
    from dialc_runtime.errors import StepFailed
    from dialc_runtime.steps import finetune

    data = [dict(r, kept=False) for r in labelled(4)]
    ctx = FakeContext({"base": {"name": "tiny", "path": str(tiny_model_dir)}, "method": {"kind": "lora"}},
                      {"filter.q": data}, tmp_path)
    with pytest.raises(StepFailed, match="no training records"):
        finetune.run(ctx)  # type: ignore[arg-type]


def test_replay_suite_samples_come_from_the_suite(tmp_path: Path) -> None:
    from dialc_runtime.steps.finetune import replay_samples

    probe = tmp_path / "probe.jsonl"
    rows = [{"id": f"p{i}", "question": f"Q{i}?", "choices": ["a", "b", "c", "d"], "answer": i % 4} for i in range(8)]
    probe.write_text("\n".join(json.dumps(r) for r in rows))
    drawn = replay_samples([Suite(path=str(probe), ratio=0.5)], count=10, seed=0)
    assert len(drawn) == 5
    assert all(s["messages"][1]["content"] in "abcd" for s in drawn)


def test_a_max_len_too_small_for_any_example_fails_clearly(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Issue 14: `finetune { max_len = 64 }` ended as an internal error (ValueError in the trainer)."""
    from dialc_runtime.errors import StepFailed
    from dialc_runtime.steps import finetune

    data = labelled(8)
    for record in data:
        record["messages"] = [{"role": "system", "content": "You are careful. " * 20}, *record["messages"]]
    params = {"base": {"name": "tiny", "path": str(tiny_model_dir)}, "method": {"kind": "lora"}, "max_len": 64,
              "max_steps": 1}
    ctx = FakeContext(params, {"filter.quality": data}, tmp_path)
    with pytest.raises(StepFailed, match="max_len = 64"):
        finetune.run(ctx)  # type: ignore[arg-type]


def test_a_recomputed_adapter_keeps_its_output_digest(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Issue 14: wall-clock timings in the output gave a byte-identical adapter a new digest, so every
    step downstream of a recomputed fine-tune ran again. Timings are metadata outside the digest."""
    from dialc_runtime.engine.cache import tree_digests
    from dialc_runtime.engine.layout import META_DIR
    from dialc_runtime.steps import finetune

    params = {"base": {"name": "tiny", "path": str(tiny_model_dir)}, "method": {"kind": "lora", "r": 4},
              "max_steps": 2, "batch_size": 4}
    outputs = []
    for attempt in ("a", "b"):
        ctx = FakeContext(params, {"filter.quality": labelled(12)}, tmp_path / attempt)
        finetune.run(ctx)  # type: ignore[arg-type]
        files = [(rel, d) for rel, d in tree_digests(ctx.out_dir) if META_DIR not in rel.split("/")]
        outputs.append((ctx.emitted, files))
    assert outputs[0] == outputs[1]
    timing = json.loads((tmp_path / "a" / META_DIR / "train_timing.json").read_text())
    assert timing["seconds"] > 0 and "tokens_per_s" in timing

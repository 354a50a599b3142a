"""The chat export as trainers read it: datasets, LLaMA-Factory's dataset_info.json, axolotl's config and TRL."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml
from runtime_fakes import MemoryContext

from dialc_runtime.data.trainer_formats import AXOLOTL, DATASET_INFO, HOLDOUT_DATASET, TRAIN_DATASET, TRL_SCRIPT
from dialc_runtime.steps import export as export_step

HOLDOUT = {"fraction": 0.3, "seed": 5}
SYSTEM = "You are a careful assistant for estate agents."
# LLaMA-Factory's sharegpt tags (data/parser.py): a tag dataset_info leaves out is None there, not a default
TAG_NAMES = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")


def answer(i: int) -> str:
    return json.dumps({"budget": 2000 + i, "district": None}) if i % 2 else f"The customer wants a flat ({i})."


def kept(i: int) -> dict[str, Any]:
    return {"id": f"p{i}", "dialogue_id": f"d{i:02d}", "scenario": "rental", "category": "summary",
            "task_id": "summary", "ok": True, "kept": True, "aggregate": 0.9, "answer": answer(i),
            "scores": {"valid": 1.0, "grounded": None if i % 3 else 0.5},
            "messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": f"Dialogue {i}: I need a flat.\nTask: summarise."}]}


def export(tmp_path: Path, holdout: dict[str, Any] | None = HOLDOUT) -> Path:
    out = tmp_path / "export"
    ctx = MemoryContext("export.dataset", {"formats": ["chat_jsonl"], "holdout": holdout},
                        {"filter.quality": [kept(i) for i in range(20)]}, out_dir=out)
    export_step.run(ctx)  # type: ignore[arg-type]
    return out


def llamafactory_rows(dataset_dir: Path, name: str) -> list[dict[str, Any] | None]:
    """What LLaMA-Factory makes of dataset `name` of <dataset_dir>/dataset_info.json: its parser's reading of
    the entry (file_name under dataset_dir, sharegpt formatting, columns, tags) and its sharegpt converter's
    rules (a leading system turn is the system prompt; then user/assistant alternate; an even count).
    None for a row it would skip as abnormal."""
    from datasets import load_dataset

    entry = json.loads((dataset_dir / DATASET_INFO).read_text(encoding="utf-8"))[name]
    assert not {"hf_hub_url", "ms_hub_url", "script_url"} & set(entry), "a local file, not a hub dataset"
    assert entry["formatting"] == "sharegpt"
    tags = {tag: entry.get("tags", {}).get(tag) for tag in TAG_NAMES}
    column = entry["columns"]["messages"]
    data = load_dataset("json", data_files=str(dataset_dir / entry["file_name"]), split=entry.get("split", "train"))
    accept = ((tags["user_tag"], tags["observation_tag"]), (tags["assistant_tag"], tags["function_tag"]))
    rows: list[dict[str, Any] | None] = []
    for row in data:
        messages, system = row[column], ""
        if tags["system_tag"] and messages and messages[0][tags["role_tag"]] == tags["system_tag"]:
            system, messages = messages[0][tags["content_tag"]], messages[1:]
        broken = len(messages) % 2 != 0 or any(m[tags["role_tag"]] not in accept[i % 2] for i, m in enumerate(messages))
        rows.append(None if broken else {"system": system, "prompt": messages[:-1], "response": messages[-1],
                                         "metadata": row["metadata"]})
    return rows


def test_the_chat_jsonl_loads_with_datasets(tmp_path: Path) -> None:
    from datasets import load_dataset

    folder = export(tmp_path)
    data = load_dataset("json", data_files={"train": str(folder / "train.jsonl"),
                                            "holdout": str(folder / "holdout.jsonl")})
    assert data["train"].num_rows + data["holdout"].num_rows == 20
    first = data["train"][0]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["metadata"]["split"] == "train"


def test_llamafactory_reads_every_train_row_with_its_system_prompt(tmp_path: Path) -> None:
    folder = export(tmp_path)
    train = llamafactory_rows(folder, TRAIN_DATASET)
    assert train and None not in train
    assert len(train) == len((folder / "train.jsonl").read_text().splitlines())
    for row in train:
        assert row is not None
        assert row["system"] == SYSTEM and [m["role"] for m in row["prompt"]] == ["user"]
        i = int(row["metadata"]["id"][1:])
        assert row["response"] == {"role": "assistant", "content": answer(i)}


def test_llamafactory_gets_the_holdout_as_its_own_eval_only_dataset(tmp_path: Path) -> None:
    folder = export(tmp_path)
    info = json.loads((folder / DATASET_INFO).read_text())
    assert set(info) == {TRAIN_DATASET, HOLDOUT_DATASET}
    assert info[HOLDOUT_DATASET]["file_name"] == "holdout.jsonl" and "eval_only" in HOLDOUT_DATASET
    assert "train" not in HOLDOUT_DATASET
    train, held = llamafactory_rows(folder, TRAIN_DATASET), llamafactory_rows(folder, HOLDOUT_DATASET)
    assert held and None not in held
    dialogues = {r["metadata"]["dialogue_id"] for r in train if r}
    assert dialogues.isdisjoint(r["metadata"]["dialogue_id"] for r in held if r)
    assert len(train) + len(held) == 20


def test_without_a_holdout_only_the_train_dataset_is_declared(tmp_path: Path) -> None:
    folder = export(tmp_path, holdout=None)
    assert set(json.loads((folder / DATASET_INFO).read_text())) == {TRAIN_DATASET}
    config = yaml.safe_load((folder / AXOLOTL).read_text())
    assert "test_datasets" not in config and "holdout.jsonl" not in (folder / TRL_SCRIPT).read_text()


def test_the_axolotl_config_names_loadable_files_and_fields(tmp_path: Path) -> None:
    from datasets import load_dataset

    folder = export(tmp_path)
    config = yaml.safe_load((folder / AXOLOTL).read_text())
    assert [d["path"] for d in config["datasets"]] == ["train.jsonl"]
    assert [d["path"] for d in config["test_datasets"]] == ["holdout.jsonl"]  # evaluation only
    assert config["chat_template"] == "tokenizer_default"
    for entry in config["datasets"] + config["test_datasets"]:
        assert entry["type"] == "chat_template" and entry["ds_type"] == "json"
        data = load_dataset("json", data_files=str(folder / entry["path"]), split=entry.get("split", "train"))
        field, mapping = entry["field_messages"], entry["message_property_mappings"]
        assert field in data.column_names
        for row in data:
            assert all(set(mapping.values()) <= set(m) for m in row[field])
            roles = [m[mapping["role"]] for m in row[field]]
            assert roles[-1] == "assistant" and set(entry.get("roles_to_train", ["assistant"])) <= set(roles)


def trl_snippet(folder: Path) -> dict[str, Any]:
    """The export's trl_sft.py as a module (not run as a script)."""
    return runpy.run_path(str(folder / TRL_SCRIPT), run_name="trl_sft")


@pytest.mark.slow
def test_trl_renders_the_export_with_the_embedded_models_chat_template_as_dialc_trains(tmp_path: Path) -> None:
    """TRL's chat-template path on the embedded model's tokenizer gives the text dialc's trainer renders, and
    puts the loss exactly where dialc does (the answer turn and its end marker)."""
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template

    from dialc_runtime.models.locate import resolve_model
    from dialc_runtime.train.trainer import assistant_spans

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("builtin:smollm2-135m-instruct"))
    assert tokenizer.chat_template
    folder = export(tmp_path)
    snippet = trl_snippet(folder)
    train = snippet["load_train"]()
    assert train.column_names == ["prompt", "completion"] and train.num_rows > 0
    for row in train:
        rendered = apply_chat_template(row, tokenizer)
        messages = row["prompt"] + row["completion"]
        text, spans = assistant_spans(tokenizer, messages)
        assert rendered["prompt"] + rendered["completion"] == text
        assert len(spans) == 1 and rendered["completion"] == text[spans[0].start:spans[0].stop]
        assert row["completion"][0]["content"] in rendered["completion"]


@pytest.mark.slow
def test_the_trl_snippet_trains_one_step_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = export(tmp_path)
    out = tmp_path / "trl-out"
    trainer = trl_snippet(folder)["main"](["--model", str(tiny_model_dir), "--output-dir", str(out),
                                           "--max-steps", "1", "--batch-size", "2", "--max-length", "256",
                                           "--evaluate"])
    assert trainer.state.global_step == 1
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses and all(math.isfinite(x) for x in losses)
    assert any("eval_loss" in e and math.isfinite(e["eval_loss"]) for e in trainer.state.log_history)
    assert (out / "adapter_config.json").is_file()  # LoRA by default
    # the loss is on the answer only: TRL's labels keep the answer's tokens and mask the prompt's (-100)
    example = trainer.train_dataset[0]
    mask = [label != -100 for label in example["labels"]]
    assert 0 < sum(mask) < len(mask)
    tokenizer = trainer.processing_class
    answered = tokenizer.decode([t for t, m in zip(example["input_ids"], mask, strict=True) if m])
    prompt = tokenizer.decode([t for t, m in zip(example["input_ids"], mask, strict=True) if not m])
    assert "Dialogue" in prompt and "Dialogue" not in answered
    assert answered.strip().startswith(("The customer wants", "{"))

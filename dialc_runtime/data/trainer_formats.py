"""A chat JSONL export → the files trainers read as they are: LLaMA-Factory's dataset_info.json, an axolotl
config snippet and a TRL SFTTrainer script, each naming train.jsonl for training and holdout.jsonl apart.

Every path in them is relative to the export folder, and no name of the spec is written into them: the
folder is the cached output of the export step, whose cache key holds neither the run directory nor the
step's name (a renamed export keeps its output). The hold-out is named so that it cannot be taken for
training data: it holds the dialogues dialc evaluates the fine-tune on.
"""

from __future__ import annotations

import json
from pathlib import Path

DATASET_INFO = "dataset_info.json"  # LLaMA-Factory reads <dataset_dir>/dataset_info.json
AXOLOTL = "axolotl.yaml"
TRL_SCRIPT = "trl_sft.py"
TRAIN_FILE = "train.jsonl"
HOLDOUT_FILE = "holdout.jsonl"
TRAIN_DATASET = "dialc_train"  # LLaMA-Factory dataset names (`dataset:` / `eval_dataset:` in its config)
HOLDOUT_DATASET = "dialc_holdout_eval_only"  # evaluation data, never a training set

# LLaMA-Factory's sharegpt formatting with OpenAI-style tags. Every tag is spelled out: LLaMA-Factory sets a
# tag left out of "tags" to None (no system prompt would be read).
_LLAMAFACTORY_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                      "assistant_tag": "assistant", "system_tag": "system"}


def dataset_info(holdout: bool) -> dict[str, dict[str, object]]:
    """dataset_info.json: one entry per file, sharegpt formatting over the `messages` column."""

    def entry(file_name: str) -> dict[str, object]:
        return {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "messages"},
                "tags": dict(_LLAMAFACTORY_TAGS)}

    info = {TRAIN_DATASET: entry(TRAIN_FILE)}
    if holdout:
        info[HOLDOUT_DATASET] = entry(HOLDOUT_FILE)
    return info


def axolotl_config(holdout: bool) -> str:
    """An axolotl config snippet: the train file as `datasets`, the hold-out as `test_datasets` (eval only)."""
    dataset = """    ds_type: json
    type: chat_template
    field_messages: messages
    message_property_mappings:
      role: role
      content: content
"""
    text = f"""# axolotl: this dialc chat export.
# Paths are relative to the directory axolotl runs in: run it from this folder, or write them absolute.
# Merge these keys into your config (base_model, adapter, sequence_len, ... are yours to choose).
chat_template: tokenizer_default
datasets:
  - path: {TRAIN_FILE}
{dataset}    roles_to_train: [assistant]  # the loss is on the answers, as in dialc's own fine-tune
"""
    if holdout:
        text += f"""# {HOLDOUT_FILE}: the dialogues dialc evaluates on. Evaluation only: never list it under datasets.
test_datasets:
  - path: {HOLDOUT_FILE}
    split: train  # a JSON file loads as one split named train
{dataset}"""
    return text


def trl_script(holdout: bool) -> str:
    """A TRL SFTTrainer script that trains on train.jsonl (loss on the answer turn only)."""
    load_holdout = (f"""

def load_holdout():
    \"\"\"{HOLDOUT_FILE}: the dialogues dialc evaluates on, for evaluation only (never train on it).\"\"\"
    return load_chat(HERE / "{HOLDOUT_FILE}")
""" if holdout else "")
    evaluate_option = (f"""
    parser.add_argument("--evaluate", action="store_true", help="print the loss on {HOLDOUT_FILE} after training")"""
                       if holdout else "")
    evaluate = """
    if args.evaluate:
        print(trainer.evaluate(load_holdout()))""" if holdout else ""
    return f'''"""SFT with TRL's SFTTrainer on this dialc chat export.

    python {TRL_SCRIPT} --model MODEL_DIR_OR_HUB_ID [--output-dir DIR] [--max-steps N] [--lora-r 8]

Trains on {TRAIN_FILE} only. Each sample becomes TRL's conversational prompt-completion form (the prompt's
messages, then the answer), so TRL applies the model's chat template and puts the loss on the answer only,
as dialc's own fine-tune does.
"""

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def to_prompt_completion(row):
    """A chat sample → prompt (every message but the answer) and completion (the answer turn)."""
    return {{"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}}


def load_chat(path):
    from datasets import load_dataset

    data = load_dataset("json", data_files=str(path), split="train")
    return data.map(to_prompt_completion, remove_columns=data.column_names)  # lineage metadata stays in the file


def load_train():
    return load_chat(HERE / "{TRAIN_FILE}")
{load_holdout}

def main(argv=None):
    parser = argparse.ArgumentParser(description="SFT with TRL on {TRAIN_FILE}")
    parser.add_argument("--model", required=True, help="a Hugging Face model directory or hub id")
    parser.add_argument("--output-dir", default="trl-sft-output")
    parser.add_argument("--max-steps", type=int, default=-1, help="-1: train for --epochs")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--lora-r", type=int, default=8, help="0: full fine-tuning"){evaluate_option}
    args = parser.parse_args(argv)

    import torch
    from trl import SFTConfig, SFTTrainer

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()  # SFTConfig's bf16 default fails on CPU
    config = SFTConfig(output_dir=args.output_dir, max_steps=args.max_steps, num_train_epochs=args.epochs,
                       learning_rate=args.lr, per_device_train_batch_size=args.batch_size, bf16=bf16,
                       max_length=args.max_length, logging_steps=1, save_strategy="no", report_to="none")
    peft_config = None
    if args.lora_r:
        from peft import LoraConfig

        peft_config = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=args.model, args=config, train_dataset=load_train(), peft_config=peft_config)
    trainer.train()
    trainer.save_model(args.output_dir){evaluate}
    return trainer


if __name__ == "__main__":
    main()
'''


def write_trainer_files(folder: Path, holdout: bool) -> list[str]:
    """Write dataset_info.json, axolotl.yaml and trl_sft.py beside the chat JSONL; their names."""
    files = {
        DATASET_INFO: json.dumps(dataset_info(holdout), indent=2, sort_keys=True) + "\n",
        AXOLOTL: axolotl_config(holdout),
        TRL_SCRIPT: trl_script(holdout),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return list(files)

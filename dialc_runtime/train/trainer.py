"""Chat records + a base model directory → a PEFT LoRA adapter (or full weights), loss log."""

from __future__ import annotations

import json
import random
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from dialc_runtime.engine.layout import META_DIR
from dialc_runtime.models.loading import cuda_half, load_model

IGNORE = -100  # label value the loss skips (torch's CrossEntropyLoss ignore_index)
Progress = Callable[[dict[str, Any]], None]  # called once per logged step with loss, tokens/s, ETA


@dataclass
class TrainConfig:
    """Every fine-tuning setting; defaults suit a ~100M-parameter model on a few hundred records."""

    method: Literal["lora", "full"] = "lora"  # LoRA adapter, or update every weight
    r: int = 8  # LoRA rank: inner width of the low-rank update
    alpha: int = 16  # LoRA scale: the update is multiplied by alpha / r
    dropout: float = 0.05  # dropout probability on the LoRA input
    targets: tuple[str, ...] = ("q_proj", "v_proj")  # modules given adapters, or ("all-linear",)
    epochs: float = 1.0  # passes over the training examples (used when max_steps == 0)
    max_steps: int = 0  # optimizer steps in total; 0 = derived from epochs
    lr: float = 2e-4  # peak learning rate
    schedule: Literal["linear", "cosine", "constant"] = "cosine"  # decay after warmup
    warmup: float = 0.03  # warmup length: a fraction of all steps if < 1, else a step count
    batch_size: int = 4  # sequences (or packed rows) per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    max_len: int = 1024  # tokens per sequence; longer samples are cut at the end
    packing: bool = False  # concatenate examples into rows of max_len (block-diagonal attention)
    replay: list[dict[str, Any]] = field(default_factory=list)  # general chat samples to mix in
    replay_ratio: float = 0.0  # replay samples per domain sample (0.2 = one per five)
    seed: int = 42  # LoRA init, data order, dropout
    save_steps: int = 50  # checkpoint every N optimizer steps (resume point after an interruption)
    keep_checkpoints: bool = False  # keep out_dir/checkpoints after a finished run
    merge: bool = False  # also write base + adapter merged into plain weights (out_dir/merged)
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    max_grad_norm: float = 1.0  # gradient clipping threshold (L2 norm)

    def fingerprint(self) -> str:
        """Canonical JSON of the settings that change the weights (may a checkpoint be resumed?)."""
        data = asdict(self)
        for key in ("keep_checkpoints", "merge", "save_steps"):
            data.pop(key)
        return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)


class NoExamples(ValueError):
    """No record keeps an answer token within max_len: there is nothing to train on."""


@dataclass
class TrainResult:
    """Where the outputs are and how the run went."""

    out_dir: Path
    steps: int  # optimizer steps completed in total (including resumed ones)
    final_loss: float | None  # loss of the last logged step
    log: list[dict[str, Any]]  # one entry per step: step, loss, learning_rate, grad_norm, epoch
    tokens: int  # non-padding tokens trained on in this session
    seconds: float  # wall time of this session's training loop
    resumed_from: int | None  # checkpoint step this session resumed from
    examples: int  # training sequences after tokenization (before packing)
    dropped: int  # records dropped: no assistant token left within max_len
    adapter_dir: Path | None = None  # PEFT adapter (method == "lora")
    model_dir: Path | None = None  # full weights: merged LoRA or full fine-tuning

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------- tokenization and labels


def render(tokenizer: Any, messages: list[dict[str, str]], prompt: bool = False) -> str:
    """The chat template's text for `messages` (with the assistant header appended if `prompt`)."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[range]]:
    """Full chat text and the character spans the loss is on: each assistant reply + end marker.

    Works with any prefix-preserving template, without `{% generation %}` markers: the span of
    turn i is the text that rendering turn i adds after the prompt with the assistant header.
    """
    text = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(render(tokenizer, messages[:i], prompt=True))
        end = len(render(tokenizer, messages[: i + 1]))
        if not text.startswith(render(tokenizer, messages[: i + 1])):
            raise ValueError("the chat template is not prefix-preserving; cannot mask the prompt")
        spans.append(range(start, end))
    return text, spans


def tokenize_chat(tokenizer: Any, messages: list[dict[str, str]], max_len: int) -> dict[str, list]:
    """Chat messages → input_ids and labels; labels IGNORE on tokens outside assistant replies."""
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, labels = [], []
    for token, (start, end) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        inside = any(start >= span.start and end <= span.stop and end > start for span in spans)
        ids.append(token)
        labels.append(token if inside else IGNORE)
    return {"input_ids": ids[:max_len], "labels": labels[:max_len]}


def build_examples(tokenizer: Any, records: list[dict], max_len: int) -> tuple[list[dict], int]:
    """Chat records → tokenized examples; drops (and counts) those with no target token left."""
    examples, dropped = [], 0
    for record in records:
        example = tokenize_chat(tokenizer, record["messages"], max_len)
        if all(label == IGNORE for label in example["labels"]):
            dropped += 1
            continue
        examples.append(example)
    return examples, dropped


def draw_replay(count: int, general: list[dict], ratio: float, seed: int) -> list[dict]:
    """round(count × ratio) general records, drawn seeded (with replacement only if too few)."""
    n = round(count * ratio)
    if n <= 0 or not general:
        return []
    rng = random.Random(seed)
    if n <= len(general):
        return rng.sample(general, n)
    return [rng.choice(general) for _ in range(n)]


def mix_replay(records: list[dict], general: list[dict], ratio: float, seed: int) -> list[dict]:
    """Domain records plus replayed general ones (`ratio` per domain record) against forgetting."""
    return list(records) + draw_replay(len(records), general, ratio, seed)


def pack(examples: list[dict], max_len: int, seed: int) -> list[dict]:
    """Greedy packing of shuffled examples into rows of ≤ max_len, positions restarting per example.

    Passing position_ids without an attention mask makes transformers attend block-diagonally,
    so packed examples do not see each other.
    """
    order = list(examples)
    random.Random(seed).shuffle(order)
    rows: list[dict] = []
    row: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for example in order:
        n = len(example["input_ids"])
        if row["input_ids"] and len(row["input_ids"]) + n > max_len:
            rows.append(row)
            row = {"input_ids": [], "labels": [], "position_ids": []}
        row["input_ids"] += example["input_ids"]
        row["labels"] += example["labels"]
        row["position_ids"] += list(range(n))
    if row["input_ids"]:
        rows.append(row)
    return rows


class Collator:
    """Right-pads a batch to its longest row; `num_tokens` = its real (non-padding) tokens."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        fill = [width - len(r["input_ids"]) for r in rows]
        batch: dict[str, Any] = {
            "input_ids": torch.tensor([r["input_ids"] + [self.pad_id] * n for r, n in zip(rows, fill, strict=True)]),
            "labels": torch.tensor([r["labels"] + [IGNORE] * n for r, n in zip(rows, fill, strict=True)]),
            "num_tokens": sum(len(r["input_ids"]) for r in rows),  # popped before the forward
        }
        if "position_ids" in rows[0]:  # packed: no attention mask, positions mark the examples
            batch["position_ids"] = torch.tensor(
                [r["position_ids"] + list(range(n)) for r, n in zip(rows, fill, strict=True)]
            )
        else:
            batch["attention_mask"] = torch.tensor(
                [[1] * len(r["input_ids"]) + [0] * n for r, n in zip(rows, fill, strict=True)]
            )
        return batch


# ---------------------------------------------------------------- model


def load_for_training(base: str | Path, cfg: TrainConfig) -> tuple[Any, Any]:
    """Base model (any model location) wrapped with LoRA when asked, and its tokenizer.

    On CUDA a LoRA base is stored in bf16 (PEFT keeps the adapter in fp32); full fine-tuning keeps
    fp32 master weights and trains under bf16 autocast, so small updates are not rounded away.
    """
    import torch
    from transformers import set_seed

    # the frozen base in bf16 only: an fp16 base under fp16 mixed precision cannot be unscaled; fp16-only
    # GPUs keep fp32 weights and train under fp16 autocast (training_args)
    half = cuda_half() == torch.bfloat16 and cfg.method == "lora"
    model, tokenizer, _, _ = load_model(base, dtype=torch.bfloat16 if half else torch.float32, training=True)
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        set_seed(cfg.seed)  # LoRA A matrices are initialised randomly
        targets: Any = list(cfg.targets)
        if targets == ["all-linear"]:
            targets = "all-linear"
        lora = LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
        with warnings.catch_warnings():  # PEFT calls a transformers API deprecated in 5.x
            warnings.simplefilter("ignore", FutureWarning)
            model = get_peft_model(model, lora)
    return model, tokenizer


# ---------------------------------------------------------------- trainer


def training_args(cfg: TrainConfig, ckpt_dir: Path) -> Any:
    """The transformers TrainingArguments for `cfg`: CUDA gets bf16 + gradient checkpointing."""
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    half = cuda_half()
    schedule = cfg.schedule
    if schedule == "constant" and cfg.warmup > 0:
        schedule = "constant_with_warmup"  # type: ignore[assignment]
    return TrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        learning_rate=cfg.lr,
        lr_scheduler_type=schedule,
        warmup_steps=cfg.warmup,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=half == torch.bfloat16,
        fp16=half == torch.float16,  # T4 / V100: no bf16 units
        use_cpu=not cuda,
        activation_checkpointing=cuda,  # recompute activations in backward: memory for time
        activation_checkpointing_kwargs={"use_reentrant": False} if cuda else None,
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,  # the newest checkpoint plus one in case a save was interrupted
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def make_reporter(progress: Progress) -> Any:
    """A TrainerCallback that turns each log line into progress({step, total_steps, loss, ...})."""
    from transformers import TrainerCallback

    class Reporter(TrainerCallback):
        trainer: Any = None  # set once the trainer exists; it counts the tokens

        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            self.start, self.first_step = time.perf_counter(), state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if not logs or "loss" not in logs:
                return
            elapsed = time.perf_counter() - self.start
            done = state.global_step - self.first_step
            left = state.max_steps - state.global_step
            progress(
                {
                    "step": state.global_step,
                    "total_steps": state.max_steps,
                    **{k: logs.get(k) for k in ("loss", "learning_rate", "epoch")},
                    "tokens_per_s": self.trainer.tokens / elapsed if elapsed > 0 else 0.0,
                    "eta_s": elapsed / done * left if done > 0 else None,
                }
            )

    return Reporter()


def prepare_checkpoints(ckpt_dir: Path, cfg: TrainConfig) -> str | None:
    """The checkpoint to resume from, if written with these same settings; else start clean."""
    from transformers.trainer_utils import get_last_checkpoint

    stamp = ckpt_dir / "dialc_config.json"
    if ckpt_dir.is_dir() and (not stamp.is_file() or stamp.read_text() != cfg.fingerprint()):
        shutil.rmtree(ckpt_dir)  # checkpoints of other settings would corrupt this run
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(cfg.fingerprint())
    return get_last_checkpoint(str(ckpt_dir))


def step_log(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trainer's log history → one entry per optimizer step that logged a loss."""
    keys = ("step", "loss", "learning_rate", "grad_norm", "epoch")
    return [{k: e.get(k) for k in keys} for e in log_history if "loss" in e]


def train(
    base_dir: str | Path,
    records: list[dict],
    out_dir: Path,
    cfg: TrainConfig,
    progress: Progress | None = None,
    checkpoints: Path | None = None,
) -> TrainResult:
    """Fine-tune `base_dir` on chat `records` (loss on assistant tokens), resuming if interrupted.

    Writes out_dir/adapter (PEFT, LoRA) or out_dir/model (full), out_dir/merged (LoRA + merge),
    out_dir/train_log.json (loss per step) and out_dir/train_meta.json. Checkpoints go to `checkpoints`
    (default out_dir/checkpoints): a step keeps them outside its output folder, which each attempt starts empty.
    """
    out_dir = Path(out_dir)
    ckpt_dir = Path(checkpoints) if checkpoints is not None else out_dir / "checkpoints"
    model, tokenizer = load_for_training(base_dir, cfg)
    mixed = mix_replay(records, cfg.replay, cfg.replay_ratio, cfg.seed)
    examples, dropped = build_examples(tokenizer, mixed, cfg.max_len)
    if not examples:
        raise NoExamples(f"no training example has an answer token within max_len = {cfg.max_len} tokens: the "
                         "chat template and each prompt fill it (raise max_len)")
    rows = pack(examples, cfg.max_len, cfg.seed) if cfg.packing else examples
    resume = prepare_checkpoints(ckpt_dir, cfg)
    args = training_args(cfg, ckpt_dir)
    trainer = make_trainer(model, rows, tokenizer.pad_token_id, args, progress)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    log = step_log(trainer.state.log_history)
    result = TrainResult(
        out_dir=out_dir,
        steps=trainer.state.global_step,
        final_loss=log[-1]["loss"] if log else None,
        log=log,
        tokens=trainer.tokens,
        seconds=time.perf_counter() - start,
        resumed_from=int(resume.rsplit("-", 1)[1]) if resume else None,
        examples=len(examples),
        dropped=dropped,
    )
    save_outputs(trainer.model, tokenizer, cfg, result)
    write_reports(base_dir, cfg, result, len(records), len(mixed) - len(records))
    if not cfg.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return result


def make_trainer(model: Any, rows: list[dict], pad_id: int, args: Any, progress: Progress | None) -> Any:
    """A transformers Trainer over pre-tokenized rows, reporting through `progress`, not stdout."""
    from transformers import PrinterCallback, Trainer

    class CountingTrainer(Trainer):
        """Counts the real tokens of every trained batch (the collator's `num_tokens`)."""

        tokens = 0

        def training_step(self, model, inputs, num_items_in_batch=None):  # type: ignore[no-untyped-def]
            self.tokens += int(inputs.pop("num_tokens"))
            return super().training_step(model, inputs, num_items_in_batch)

    reporter = make_reporter(progress) if progress else None
    trainer = CountingTrainer(
        model=model,
        args=args,
        train_dataset=rows,  # type: ignore[arg-type]  # a list is a map-style dataset
        data_collator=Collator(pad_id),
        callbacks=[reporter] if reporter else None,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict (disable_tqdm=True adds it)
    if reporter:
        reporter.trainer = trainer
    return trainer


def save_outputs(model: Any, tokenizer: Any, cfg: TrainConfig, result: TrainResult) -> None:
    """Adapter (LoRA), full weights (full), merged weights (LoRA + merge); tokenizer beside each."""
    model.config.use_cache = True  # the saved config is for inference
    if cfg.method == "lora":
        result.adapter_dir = result.out_dir / "adapter"
        model.save_pretrained(result.adapter_dir)
        tokenizer.save_pretrained(result.adapter_dir)
        if cfg.merge:
            result.model_dir = result.out_dir / "merged"
            model.merge_and_unload().save_pretrained(result.model_dir)
            tokenizer.save_pretrained(result.model_dir)
    else:
        result.model_dir = result.out_dir / "model"
        model.save_pretrained(result.model_dir)
        tokenizer.save_pretrained(result.model_dir)


SESSION_FIELDS = ("log", "out_dir", "seconds", "tokens", "resumed_from")  # not in train_meta.json


def write_reports(base: Any, cfg: TrainConfig, res: TrainResult, n: int, replayed: int) -> None:
    """train_log.json (loss per step) and train_meta.json (settings, counts): the same bytes whenever the
    same adapter is trained again; this session's timings, speed and device go to META_DIR/train_timing.json,
    outside the output digest (a recomputed, byte-identical adapter keeps its digest)."""
    import torch
    import transformers

    (res.out_dir / "train_log.json").write_text(json.dumps(res.log, indent=1))
    settings = asdict(cfg)
    settings["replay"] = len(cfg.replay)  # the count, not the samples
    outcome = {k: v for k, v in asdict(res).items() if k not in SESSION_FIELDS}
    for key in ("adapter_dir", "model_dir"):  # relative: the output does not depend on where it was made
        outcome[key] = Path(outcome[key]).relative_to(res.out_dir).as_posix() if outcome[key] else None
    meta = {"base": str(base), "config": settings, "records": n, "replayed": replayed, **outcome}
    (res.out_dir / "train_meta.json").write_text(json.dumps(meta, indent=1, default=str))
    timing = {
        "seconds": round(res.seconds, 3),
        "tokens": res.tokens,
        "tokens_per_s": round(res.tokens_per_s, 1),
        "resumed_from": res.resumed_from,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    (res.out_dir / META_DIR).mkdir(exist_ok=True)
    (res.out_dir / META_DIR / "train_timing.json").write_text(json.dumps(timing, indent=1))

"""Plan steps → rough model-call, token and time estimates for `dialc run --dry-run` (no model loaded).

Every estimate is a dict: model_calls, prompt_tokens, completion_tokens, tokens, seconds (and, for
training, train_tokens). Completions are counted at the model's `max_tokens`, an upper bound; the
time assumes THROUGHPUT, the embedded 135M model on 2 CPU cores: a bigger model is slower, a GPU
much faster, so the seconds are an order of magnitude, not a promise.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialc.plan import Holdout, ModelSpec, Plan, SampleParams, Step
from dialc.plan import Suite as SuiteSpec
from dialc_runtime.evaluate.suites.readers import ChoiceItem

PROMPT_TOKENS = 450  # typical production prompt: a cut transcript plus the task (SmolLM2 tokenizer)
ANSWER_TOKENS = 120  # typical label, for training and evaluation (the model's max_tokens bounds it)
CHOICE_TOKENS = 60  # a multiple-choice question and one option


@dataclass(frozen=True)
class Throughput:
    """Tokens per second of the embedded SmolLM2-135M on 2 CPU cores (measured on specs/realestate.dial)."""

    prefill: float  # prompt tokens read, batched
    decode: float  # completion tokens generated, batched
    train: float  # training tokens (forward + backward, LoRA)
    per_call: float  # seconds of overhead per request (tokenising, constraint masks, validation)


# measured on specs/realestate.dial (36 labels, 2 CPU cores shared with other work): the judge read
# ~765 prompt tokens/s, labelling decoded ~15 tokens/s (25 counts max_tokens, an upper bound), LoRA
# training ran at 42 tokens/s under load, ~2x that on an idle machine
THROUGHPUT = Throughput(prefill=700.0, decode=25.0, train=80.0, per_call=0.2)


def usage(calls: int, prompt: int, completion: int, train: int = 0) -> dict[str, int | float]:
    """One estimate, its time from THROUGHPUT."""
    rate = THROUGHPUT
    seconds = calls * rate.per_call + prompt / rate.prefill + completion / rate.decode + train / rate.train
    out: dict[str, int | float] = {"model_calls": calls, "prompt_tokens": prompt, "completion_tokens": completion,
                                   "tokens": prompt + completion, "seconds": round(seconds, 1)}
    if train:
        out["train_tokens"] = train
    return out


def combine(*parts: dict[str, int | float]) -> dict[str, int | float]:
    """The sum of several estimates."""
    keys = {k for part in parts for k in part}
    return {k: round(sum(part.get(k, 0) for part in parts), 1) if k == "seconds"
            else sum(int(part.get(k, 0)) for part in parts) for k in keys}


def generation(calls: int, model: ModelSpec, prompt_tokens: int = PROMPT_TOKENS) -> dict[str, int | float]:
    """`calls` generations of at most `model.max_tokens` each."""
    return usage(calls, calls * prompt_tokens, calls * model.max_tokens)


# shared-prefix multiple-choice scoring (bench/bench_choice.py, 2 cores, load 3-7): per item ~0.08 s plus
# ~3 ms per token read (the context once, then each option): the probe ~0.18 s an item, a CMMLU item ~0.7 s
CHOICE_ITEM_S, CHOICE_TOKEN_S = 0.08, 0.003


def text_tokens(text: str) -> float:
    """Rough SmolLM2 token count: ~3 ASCII characters a token, ~1.5 tokens per other (CJK) character."""
    ascii_chars = sum(1 for c in text if c.isascii())
    return ascii_chars / 3 + 1.5 * (len(text) - ascii_chars)


def choice_scoring(items: list[ChoiceItem]) -> dict[str, int | float]:
    """Multiple-choice items scored by log-likelihood: one call per option, each context read once."""
    calls = sum(len(item.options) for item in items)
    tokens = round(sum(text_tokens(item.context) + sum(map(text_tokens, item.options)) for item in items))
    return {"model_calls": calls, "prompt_tokens": tokens, "completion_tokens": 0, "tokens": tokens,
            "seconds": round(len(items) * CHOICE_ITEM_S + tokens * CHOICE_TOKEN_S, 1)}


def upstream_count(step: Step, plan: Plan) -> int:
    """How many records the nearest sample step upstream will draw."""
    seen = list(step.input_ids)
    while seen:
        current = plan.step(seen.pop(0))
        if isinstance(current.params, SampleParams):
            return current.params.count
        seen.extend(current.input_ids)
    return 0


def training(records: int, epochs: float, max_steps: int, batch: int) -> dict[str, int | float]:
    """Fine-tuning `records` examples for `epochs` (or `max_steps` optimizer steps of `batch`)."""
    examples = max_steps * batch if max_steps > 0 else int(records * epochs)
    return usage(0, 0, 0, train=examples * (PROMPT_TOKENS + ANSWER_TOKENS))


def holdout_size(count: int, holdout: Holdout | None) -> int:
    return round(count * holdout.fraction) if holdout else 0


def evaluation(suites: list[SuiteSpec], limit: int, holdout: int, model: ModelSpec) -> dict[str, int | float]:
    """One model on the general suites (log-likelihood per option, or a generation per item) and the
    domain hold-out (a generation per record)."""
    from dialc_runtime.evaluate.suites.readers import SuiteFormatError, read_suite

    parts = [generation(holdout, model)]
    for spec in suites:
        try:
            suite = read_suite(spec.path, spec.kind, spec.limit or limit or None, spec.subjects)
        except (SuiteFormatError, OSError):
            continue  # the run says what is wrong with it
        if suite.kind == "choice":
            parts.append(choice_scoring(suite.items))
        else:
            parts.append(generation(len(suite.items), model, prompt_tokens=CHOICE_TOKENS * (1 + (spec.fewshot or 0))))
    return combine(*parts)

"""A model handle + suite items or held-out records → scores, bootstrap CIs, a retention verdict."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dialc_runtime.evaluate.suites.readers import ChoiceItem, GenItem

Message = dict[str, str]
Prompt = str | list[Message]  # raw text, or chat messages (the model's chat template is applied)


class LM(Protocol):
    """What the scoring functions need from a model; HFModel implements it, fakes do in tests."""

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]: ...

    def generate(self, prompts: list[Prompt], max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]: ...


@dataclass
class HFModel:
    """A transformers causal LM (optionally with a PEFT adapter) and its tokenizer, in eval mode."""

    model: Any
    tokenizer: Any
    batch_size: int = 8  # sequences per forward pass
    max_len: int = 2048  # tokens kept (from the right) when scoring

    @classmethod
    def load(cls, model: str | Path, adapter_dir: Path | None = None, **kw: Any) -> HFModel:
        """A model location (`builtin:`, HF directory, GGUF) + the PEFT adapter at `adapter_dir`."""
        from dialc_runtime.models.loading import load_model

        lm, tokenizer, _, _ = load_model(str(model), adapter=adapter_dir)
        return cls(lm, tokenizer, **kw)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-evaluation-harness's split: trailing context spaces move to the continuation, and the
        continuation's tokens are those of the whole string past the context's tokens."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self.encode(context + continuation)
        head = self.encode(context) if context else []
        if not head:  # nothing to condition on: start from the end-of-text token
            return [self.tokenizer.eos_token_id], whole
        return head, whole[len(head) :]

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens given its context (the one HF
        scorer, models.loglikelihood, on lm-evaluation-harness's token split)."""
        from dialc_runtime.models.loglikelihood import loglikelihoods

        pairs = [self.encode_pair(c, x) for c, x in requests]
        return loglikelihoods(self.model, pairs, self.tokenizer.pad_token_id, self.batch_size, self.max_len)

    def choice_loglikelihoods(self, requests: list[tuple[str, list[str]]]) -> list[list[float]]:
        """Per (context, options): each option's log-likelihood, on lm-evaluation-harness's token split.
        The context is tokenised and run once per request, its options reuse its key/value cache
        (models.loglikelihood.prefix_loglikelihoods); texts are tokenised in one batched call."""
        from dialc_runtime.models.loglikelihood import prefix_loglikelihoods

        split = [_move_spaces(context, options) for context, options in requests]
        heads = self._encode_many([context for context, _ in split])
        wholes = iter(self._encode_many([context + option for context, options in split for option in options]))
        groups = []
        for (_, options), head in zip(split, heads, strict=True):
            whole = [next(wholes) for _ in options]
            if not head:  # nothing to condition on: start from the end-of-text token
                groups.append(([self.tokenizer.eos_token_id], whole))
            else:
                groups.append((head, [w[len(head) :] for w in whole]))
        return prefix_loglikelihoods(self.model, groups, self.tokenizer.pad_token_id, max_len=self.max_len)

    def _encode_many(self, texts: list[str]) -> list[list[int]]:
        return list(self.tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else []

    def branch_loglikelihood(self, requests: list[tuple[str, list[str]]]) -> list[list[float]]:
        """Per (context, options): each option's log-probability at the first token where the options'
        tokens differ (after their common prefix): the choice greedy constrained decoding makes, at one
        forward pass per context. Options that do not branch at one token are scored whole."""
        from dialc_runtime.models.loglikelihood import loglikelihoods

        pairs: list[tuple[list[int], list[int]]] = []
        for context, options in requests:
            encoded = [self.encode_pair(context, option) for option in options]
            tails = [tail for _, tail in encoded]
            k = _common_prefix(tails)
            branch = [tail[k] for tail in tails if len(tail) > k]
            if len(branch) == len(tails) and len(set(branch)) == len(branch):
                pairs += [(encoded[0][0] + tail[:k], [tail[k]]) for tail in tails]
            else:
                pairs += encoded
        scores = iter(loglikelihoods(self.model, pairs, self.tokenizer.pad_token_id, self.batch_size, self.max_len))
        return [[next(scores) for _ in options] for _, options in requests]

    def render(self, prompt: Prompt) -> str:
        """Model input text: raw prompts as they are, chat messages through the chat template."""
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def generate(self, prompts: list[Prompt], max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        """Greedy completions, batched with left padding, cut at the first `stop` string."""
        import torch

        self.tokenizer.padding_side = "left"
        texts = [self.render(p) for p in prompts]
        outputs = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(self.model.device)
            with torch.no_grad():
                new = self.model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )[:, batch["input_ids"].shape[1] :]
            outputs += self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [cut(text, stop) for text in outputs]


def _move_spaces(context: str, options: list[str]) -> tuple[str, list[str]]:
    """lm-evaluation-harness's split: a context's trailing spaces move to the front of every option."""
    spaces = len(context) - len(context.rstrip())
    if not spaces:
        return context, options
    return context[:-spaces], [context[-spaces:] + option for option in options]


def _common_prefix(seqs: list[list[int]]) -> int:
    """The length of the longest token prefix every sequence shares."""
    k = 0
    while all(len(s) > k for s in seqs) and len({s[k] for s in seqs}) == 1:
        k += 1
    return k


def cut(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    for marker in stop:
        index = text.find(marker)
        if index >= 0:
            text = text[:index]
    return text


@dataclass
class SuiteResult:
    """Scores of one model on one suite: metric → mean, and metric → per-item values (for CIs)."""

    name: str
    primary: str  # the metric the retention gate compares
    metrics: dict[str, float]
    items: dict[str, list[float]]
    details: list[dict[str, Any]] = field(default_factory=list)  # per-item prediction records
    setting: str = ""  # e.g. "0-shot, option log-likelihood"

    @property
    def score(self) -> float:
        return self.metrics[self.primary]

    @property
    def n(self) -> int:
        return len(self.items[self.primary])


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize(name: str, primary: str, items: dict[str, list[float]], **kw: Any) -> SuiteResult:
    return SuiteResult(name, primary, {k: mean(v) for k, v in items.items()}, items, **kw)


# ---------------------------------------------------------------- multiple choice


def option_loglikelihoods(lm: LM, items: list[ChoiceItem]) -> list[list[float]]:
    """Each item's options' log-likelihoods: through the model's shared-prefix scorer when it has one
    (HFModel.choice_loglikelihoods), else one (context, option) request per option."""
    shared = getattr(lm, "choice_loglikelihoods", None)
    if shared is not None:
        return list(shared([(item.context, list(item.options)) for item in items]))
    scores = iter(lm.loglikelihood([(item.context, option) for item in items for option in item.options]))
    return [[next(scores) for _ in item.options] for item in items]


def choice_length(option: str) -> int:
    """The length acc_norm divides by, as lm-evaluation-harness: characters of the choice text, without
    the " " target delimiter the option carries."""
    return max(1, len(option.removeprefix(" ")))


def evaluate_choice(lm: LM, items: list[ChoiceItem], name: str) -> SuiteResult:
    """acc: argmax of option log-likelihood; acc_norm: argmax of log-likelihood per character of the
    choice text (lm-evaluation-harness's definitions; ties go to the first option, as numpy's argmax)."""
    acc, acc_norm, details = [], [], []
    for item, lls in zip(items, option_loglikelihoods(lm, items), strict=True):
        sizes = [choice_length(option) for option in item.options]
        norm = [ll / size for ll, size in zip(lls, sizes, strict=True)]
        pick, pick_norm = lls.index(max(lls)), norm.index(max(norm))
        acc.append(float(pick == item.answer))
        acc_norm.append(float(pick_norm == item.answer))
        details.append({"id": item.id, "answer": item.answer, "pred": pick, "loglik": lls})
    items_ = {"acc": acc, "acc_norm": acc_norm}
    return summarize(name, "acc", items_, details=details, setting="0-shot, option log-likelihood")


# ---------------------------------------------------------------- generation, exact match

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> str | None:
    """The last number in `text`, no commas or trailing zero decimals ("1,000.00" → "1000")."""
    found = NUMBER.findall(text)
    if not found:
        return None
    value = found[-1].replace(",", "").rstrip(".")
    return value.rstrip("0").rstrip(".") if "." in value else value


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s.-]", " ", text.casefold()).split()).strip(" .")


def exact_match(prediction: str, answer: str) -> bool:
    """Numeric answers: the last number in the output; others: the normalized first line."""
    if last_number(answer) == normalize(answer).replace(",", ""):
        return last_number(prediction) == last_number(answer)
    lines = prediction.strip().splitlines()
    return normalize(lines[0] if lines else "") == normalize(answer)


def gen_prompt(item: GenItem, shots: list[GenItem], chat: bool) -> Prompt:
    """Few-shot prompt: shots as Question/Answer pairs (chat turns if `chat`), then the question."""
    if chat:
        turns: list[Message] = []
        for shot in shots:
            turns += [
                {"role": "user", "content": shot.question},
                {"role": "assistant", "content": shot.solution or shot.answer},
            ]
        return [*turns, {"role": "user", "content": item.question}]
    demos = "".join(f"Question: {s.question}\nAnswer: {s.solution or s.answer}\n\n" for s in shots)
    return f"{demos}Question: {item.question}\nAnswer:"


def evaluate_generation(
    lm: LM,
    items: list[GenItem],
    name: str,
    fewshot: int = 0,
    chat: bool = True,
    max_new_tokens: int = 256,
) -> SuiteResult:
    """Exact match of the final answer; the first `fewshot` items are demonstrations, not scored."""
    shots, scored = items[:fewshot], items[fewshot:]
    prompts = [gen_prompt(item, shots, chat) for item in scored]
    stop = () if chat else ("\nQuestion:", "\n\n\n")
    outputs = lm.generate(prompts, max_new_tokens, stop)
    em = [float(exact_match(o, i.answer)) for o, i in zip(outputs, scored, strict=True)]
    details = [{"id": i.id, "answer": i.answer, "output": o} for i, o in zip(scored, outputs, strict=True)]
    setting = f"{fewshot}-shot, {'chat' if chat else 'text'}, greedy"
    return summarize(name, "exact_match", {"exact_match": em}, details=details, setting=setting)


# ---------------------------------------------------------------- domain metrics


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` (models wrap JSON in prose or code fences), or None."""
    start = text.find("{")
    while start >= 0:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        return value if isinstance(value, dict) else None
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return normalize(a) == normalize(b)
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def field_scores(pred: dict[str, Any] | None, ref: dict[str, Any]) -> dict[str, float]:
    """Field-level precision/recall/F1 over non-null fields, and exact match of the whole dict."""
    pred_fields = {k: v for k, v in (pred or {}).items() if v is not None}
    ref_fields = {k: v for k, v in ref.items() if v is not None}
    hits = sum(1 for k, v in ref_fields.items() if k in pred_fields and _same(pred_fields[k], v))
    if not pred_fields and not ref_fields:
        p = r = 1.0 if pred is not None else 0.0
    else:
        p = hits / len(pred_fields) if pred_fields else 0.0
        r = hits / len(ref_fields) if ref_fields else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    exact = float(pred is not None and hits == len(ref_fields) == len(pred_fields))
    return {"precision": p, "recall": r, "f1": f1, "exact_match": exact}


WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+")


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased words (CJK characters count as words)."""
    a, b = WORD.findall(prediction.casefold()), WORD.findall(reference.casefold())
    if not a or not b:
        return float(a == b)
    previous = [0] * (len(b) + 1)
    for x in a:  # longest common subsequence, one row at a time
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)


def score_domain(output: str, record: Mapping[str, Any]) -> dict[str, float]:
    """One held-out record: json → field F1 + exact; choice → accuracy; text/regex → ROUGE-L.

    The `score` key is the record's primary number in [0, 1]."""
    kind = (record.get("output") or {}).get("kind", "text")
    if kind == "json" and isinstance(record.get("value"), dict):
        scores = field_scores(parse_json_object(output), record["value"])
        return {**scores, "score": scores["f1"]}
    if kind == "choice":
        hit = float(normalize(output) == normalize(str(record.get("value") or record["answer"])))
        return {"accuracy": hit, "score": hit}
    rouge = rouge_l(output, record["answer"])
    return {"rouge_l": rouge, "score": rouge}


def evaluate_domain(
    lm: LM, records: Sequence[Mapping[str, Any]], name: str = "domain", max_new_tokens: int = 256
) -> SuiteResult:
    """Generate an answer to each held-out production prompt and score it against the label."""
    outputs = lm.generate([list(r["messages"]) for r in records], max_new_tokens)
    items: dict[str, list[float]] = {}
    details = []
    for record, output in zip(records, outputs, strict=True):
        scores = score_domain(output, record)
        for key, value in scores.items():
            items.setdefault(key, []).append(value)
        details.append({"id": record.get("id"), "output": output, **scores})
    return summarize(name, "score", items, details=details, setting="greedy, per-kind metric")


# ---------------------------------------------------------------- bootstrap and retention


def bootstrap_ci(
    values: Sequence[float], resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded, so reports are reproducible)."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, (resamples, data.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def bootstrap_diff_ci(
    before: Sequence[float],
    after: Sequence[float],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Interval of mean(after) − mean(before); paired by item when both score the same items."""
    import numpy as np

    a, b = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if a.size == 0 or b.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    pick_b = rng.integers(0, b.size, (resamples, b.size))
    pick_a = pick_b if a.size == b.size else rng.integers(0, a.size, (resamples, a.size))
    diffs = b[pick_b].mean(axis=1) - a[pick_a].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(diffs, tail)), float(np.percentile(diffs, 100 - tail))


def compare_row(name: str, before: SuiteResult | float, after: SuiteResult | float) -> dict:
    """One before/after row in accuracy points, with 95% bootstrap CIs when items are known."""
    row: dict[str, Any] = {"suite": name}
    for label, result in (("before", before), ("after", after)):
        if isinstance(result, SuiteResult):
            row[label] = 100 * result.score
            row["n"] = result.n
            low, high = bootstrap_ci(result.items[result.primary])
            row[f"{label}_ci"] = (100 * low, 100 * high)
        else:
            row[label] = 100 * float(result)
    row["delta"] = row["after"] - row["before"]
    if isinstance(before, SuiteResult) and isinstance(after, SuiteResult):
        low, high = bootstrap_diff_ci(before.items[before.primary], after.items[after.primary])
        row["delta_ci"] = (100 * low, 100 * high)
    return row


def check_retention(
    before: Mapping[str, SuiteResult | float],
    after: Mapping[str, SuiteResult | float],
    max_drop: float | Mapping[str, float],
) -> tuple[bool, list[dict[str, Any]]]:
    """Pass when no suite's score fell by more than `max_drop` accuracy points (per suite or one
    for all); scores given as floats are fractions in [0, 1]. Returns (ok, before/after rows)."""
    rows = []
    for name in before:
        if name not in after:
            raise KeyError(f"suite {name!r} has no 'after' score")
        row = compare_row(name, before[name], after[name])
        limit = max_drop[name] if isinstance(max_drop, Mapping) else max_drop
        row["max_drop"] = float(limit)
        row["ok"] = -row["delta"] <= limit + 1e-9
        rows.append(row)
    return all(r["ok"] for r in rows), rows


REFERENCES = {"gold": "gold", "general": "answer key", "agreement": "labeller"}  # what a row's items are scored against


def format_table(rows: list[dict[str, Any]]) -> str:
    """The before/after rows as an aligned text table (n; points; 95% CI of the change; what the items are
    scored against: gold references, the suite's answer key or the labeller's own answers; verdict in words)."""
    width = max([28, *(len(str(r["suite"])) for r in rows)])
    lines = [f"{'suite':<{width}} {'n':>5} {'before':>7} {'after':>7} {'change':>7}  95% CI          "
             f"{'vs':<10} gate / verdict"]
    for r in rows:
        ci = r.get("delta_ci")
        ci_text = f"[{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "-"
        gate = "" if "ok" not in r else "ok; " if r["ok"] else f"FAIL (max drop {r['max_drop']:g}); "
        said = gate + r.get("verdict", "") + (" (lower is better)" if r.get("better") == "lower" else "")
        lines.append(
            f"{r['suite']:<{width}} {r.get('n', '-'):>5} {r['before']:>7.1f} {r['after']:>7.1f} "
            f"{r['delta']:>+7.1f}  {ci_text:<15} {REFERENCES.get(str(r.get('type')), '-'):<10} "
            f"{said.strip('; ') or '-'}"
        )
    return "\n".join(lines)

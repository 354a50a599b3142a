"""The transformers backend on tiny random models: constraints, batching, retries, scoring."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from tiny_model import build_sharp_model

from dialc_runtime.models import clear_backends, get_backend
from dialc_runtime.models import transformers_backend as tb
from dialc_runtime.models.base import Constraint, GenRequest, ScoreRequest
from dialc_runtime.models.locate import ModelNotFound
from dialc_runtime.models.transformers_backend import TransformersBackend
from dialc_runtime.models.validation import schema_errors, validate_output

REQUIREMENTS = {
    "type": "object",
    "properties": {
        "budget_max": {"type": ["integer", "null"], "minimum": 0, "maximum": 100000000},
        "district": {"type": "string", "maxLength": 40},
        "bedrooms": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["bedrooms"],
    "additionalProperties": False,
}
RICH = {
    "type": "object",
    "properties": {
        "intent": {"enum": ["rent", "buy", "sell"]},
        "urgent": {"type": "boolean"},
        "score": {"type": "number", "minimum": -1, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
        "contact": {
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 12}},
            "required": ["name"],
            "additionalProperties": False,
        },
    },
    "required": ["intent", "urgent", "contact"],
    "additionalProperties": False,
}


def ask(text: str, **kw: Any) -> GenRequest:
    return GenRequest(messages=({"role": "user", "content": text},), **kw)


def json_request(i: int, schema: dict[str, Any], **kw: Any) -> GenRequest:
    return ask(f"Dialogue {i}: extract the requirements.", constraint=Constraint("json", schema), **kw)


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> TransformersBackend:
    return TransformersBackend({"path": str(tiny_model_dir)})


@pytest.fixture(scope="module")
def sharp_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with larger random weights: its greedy output depends on the prompt."""
    target = build_sharp_model(tiny_model_dir, tmp_path_factory.mktemp("sharp"))
    return target


@pytest.fixture(scope="module")
def sharp(sharp_dir: Path) -> TransformersBackend:
    return TransformersBackend({"path": str(sharp_dir)})


def mixed_requests(temperature: float = 0.0) -> list[GenRequest]:
    """Eight requests of different prompt lengths and constraint kinds."""
    return [
        json_request(0, REQUIREMENTS, temperature=temperature, seed=1),
        ask(
            "Say yes or no" + " please" * 9,
            constraint=Constraint("choice", options=("yes", "no")),
            temperature=temperature,
            seed=2,
        ),
        ask(
            "Code?",
            constraint=Constraint("regex", pattern=r"[A-Z]{2}-\d{3}"),
            temperature=temperature,
            seed=3,
        ),
        ask("Tell me about flats " * 3, max_tokens=12, temperature=temperature, seed=4),
        json_request(4, RICH, temperature=temperature, seed=5),
        ask(
            "Summarise" + " the dialogue" * 15,
            constraint=Constraint("text", max_chars=40),
            max_tokens=24,
            temperature=temperature,
            seed=6,
        ),
        json_request(6, REQUIREMENTS, temperature=temperature, seed=7),
        ask("Free text", max_tokens=8, temperature=temperature, seed=8),
    ]


# -- constrained outputs are always valid ---------------------------------------------------------


@pytest.mark.parametrize("schema", [REQUIREMENTS, RICH], ids=["requirements", "rich"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_json_outputs_parse_and_validate(
    backend: TransformersBackend, sharp: TransformersBackend, schema: dict, temperature: float
) -> None:
    requests = [json_request(i, schema, temperature=temperature, seed=i) for i in range(8)]
    for model in (backend, sharp):
        for result in model.generate(requests):
            assert result.ok, result.error
            assert json.loads(result.text) == result.value
            assert schema_errors(result.value, schema) == []
            assert result.completion_tokens > 0 and result.attempts == 1


def test_regex_constraint_is_honoured(sharp: TransformersBackend) -> None:
    pattern = r"[A-Z]{2}-\d{3}( ok)?"
    requests = [
        ask(f"code {i}", constraint=Constraint("regex", pattern=pattern), temperature=1.0, seed=i) for i in range(6)
    ]
    for result in sharp.generate(requests):
        assert result.ok and re.fullmatch(pattern, result.text), result


def test_choice_constraint_is_honoured(sharp: TransformersBackend) -> None:
    options = ("yes", 'no "way"', "peut-être\nnon", "中文")
    requests = [
        ask(f"pick {i}", constraint=Constraint("choice", options=options), temperature=2.0, seed=i) for i in range(8)
    ]
    results = sharp.generate(requests)
    assert all(r.ok and r.text in options and r.value == r.text for r in results)
    assert len({r.text for r in results}) > 1  # the mask allows every option, not just one


def test_text_is_bounded_by_max_chars(sharp: TransformersBackend) -> None:
    requests = [
        ask(
            f"story {i}",
            constraint=Constraint("text", max_chars=25),
            max_tokens=60,
            temperature=1.0,
            seed=i,
        )
        for i in range(4)
    ]
    for result in sharp.generate(requests):  # within the bound, or cut at it mid-sentence: truncated
        assert len(result.text) <= 25 and (result.ok or str(result.error).startswith("truncated"))


# -- batching and determinism ------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_batch_equals_single(sharp: TransformersBackend, temperature: float) -> None:
    requests = mixed_requests(temperature)
    batched = sharp.generate(requests)
    alone = [sharp.generate([request])[0] for request in requests]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert len({r.text for r in batched}) == len(requests)  # the rows really differ
    # bounded text that runs into its bound mid-sentence is truncated (tests/test_bounded_text.py)
    assert all(r.ok or (q.constraint.kind == "text" and str(r.error).startswith("truncated"))
               for q, r in zip(requests, batched, strict=True)), [r.error for r in batched]


def test_batch_equals_single_on_the_tiny_model(backend: TransformersBackend) -> None:
    requests = mixed_requests(0.0)
    batched = backend.generate(requests)
    assert [r.text for r in batched] == [backend.generate([r])[0].text for r in requests]


def test_same_seed_same_output(sharp: TransformersBackend) -> None:
    requests = mixed_requests(1.0)
    first, second = sharp.generate(requests), sharp.generate(requests)
    assert [r.text for r in first] == [r.text for r in second]
    reseeded = [GenRequest(r.messages, r.constraint, r.max_tokens, 1.0, 1.0, r.seed + 100) for r in requests]
    assert [r.text for r in sharp.generate(reseeded)] != [r.text for r in first]


def test_batch_size_does_not_change_results(sharp_dir: Path, sharp: TransformersBackend) -> None:
    requests = mixed_requests(0.7)
    small = TransformersBackend({"path": str(sharp_dir), "batch_size": 3})
    assert [r.text for r in small.generate(requests)] == [r.text for r in sharp.generate(requests)]


def test_unconstrained_greedy_matches_hf_generate(sharp: TransformersBackend) -> None:
    import torch

    model, tokenizer = sharp.loaded.model, sharp.tokenizer
    requests = [ask("word " * i + "go", max_tokens=15) for i in range(4)]
    for request, result in zip(requests, sharp.generate(requests), strict=True):
        ids = torch.tensor([sharp.prompt_ids(request.messages)])
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=15, do_sample=False)
        assert result.text == tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def forward_passes(backend: TransformersBackend, requests: list[GenRequest]) -> tuple[int, list]:
    calls = []
    hook = backend.loaded.model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        results = backend.generate(requests)
    finally:
        hook.remove()
    return len(calls), results


def test_fast_forward_feeds_forced_tokens_in_one_pass(sharp_dir: Path) -> None:
    requests = [json_request(0, RICH)]
    slow = TransformersBackend({"path": str(sharp_dir), "fast_forward": False})
    passes, [plain] = forward_passes(slow, requests)
    assert plain.ok and passes == plain.completion_tokens  # prefill + one per token but the last
    fast = TransformersBackend({"path": str(sharp_dir)})
    passes, [forwarded] = forward_passes(fast, requests)
    assert forwarded.ok and json.loads(forwarded.text) == forwarded.value
    assert passes < forwarded.completion_tokens * 0.7  # the keys of RICH are forced text


def test_sample_follows_the_distribution() -> None:
    import torch

    from dialc_runtime.models.decoding import sample

    logits = torch.log(torch.tensor([0.5, 0.0, 0.3, 0.2]))  # token 1 is masked out (-inf)
    gen = torch.Generator().manual_seed(0)
    counts = torch.bincount(torch.tensor([sample(logits, 1.0, 1.0, gen) for _ in range(4000)]))
    assert counts[1] == 0
    assert counts[[0, 2, 3]].tolist() == pytest.approx([2000, 1200, 800], rel=0.1)
    nucleus = {sample(logits, 1.0, 0.7, gen) for _ in range(200)}
    assert nucleus == {0, 2}  # top-p 0.7 keeps the tokens holding the first 70% of the mass


def test_tall_head_computes_the_same_logits() -> None:
    import torch

    from dialc_runtime.models.transformers_backend import TallLinear

    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=True)
    hidden = torch.randn(3, 4, 16)
    expected = head(hidden)
    head.__class__ = TallLinear
    assert torch.allclose(head(hidden), expected, atol=1e-5)
    assert head(hidden).shape == (3, 4, 50) and head(hidden).is_contiguous()


def test_tall_head_keeps_tied_weights(backend: TransformersBackend) -> None:
    model = backend.loaded.model
    assert type(model.get_output_embeddings()).__name__ == "TallLinear"
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


# -- retries and failures --------------------------------------------------------------------------


def test_truncated_output_is_retried_then_reported(backend: TransformersBackend) -> None:
    [result] = backend.generate([json_request(0, RICH, max_tokens=3)])
    assert not result.ok and result.error is not None and result.error.startswith("truncated")
    assert result.attempts == 3  # 1 + retries (default 2)
    assert result.completion_tokens == 9 and result.prompt_tokens > 0


def test_invalid_output_is_retried_with_a_new_seed(
    backend: TransformersBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def flaky(text: str, constraint: Constraint) -> tuple[bool, Any, str | None]:
        calls.append(text)
        if len(calls) == 1:
            return False, None, "schema violation: made up"
        return validate_output(text, constraint)

    monkeypatch.setattr(tb, "validate_output", flaky)
    [result] = backend.generate([json_request(0, REQUIREMENTS, temperature=0.0)])
    assert result.ok and result.attempts == 2 and len(calls) == 2


def test_retries_setting_is_respected(tiny_model_dir: Path) -> None:
    no_retry = TransformersBackend({"path": str(tiny_model_dir), "retries": 0})
    [result] = no_retry.generate([json_request(0, RICH, max_tokens=2)])
    assert not result.ok and result.attempts == 1


def test_invalid_constraint_fails_alone(backend: TransformersBackend) -> None:
    results = backend.generate(
        [
            ask("x", constraint=Constraint("regex", pattern="(unclosed")),
            json_request(1, REQUIREMENTS),
        ]
    )
    assert not results[0].ok and "invalid constraint" in (results[0].error or "")
    assert results[0].attempts == 1
    assert results[1].ok


def test_bad_model_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="not found"):
        TransformersBackend({"path": str(tmp_path / "missing")})


# -- scoring -------------------------------------------------------------------------------------


def direct_loglikelihood(backend: TransformersBackend, request: ScoreRequest) -> float:
    import torch

    context, continuation = backend.score_ids(request)
    ids = torch.tensor([context + continuation])
    with torch.no_grad():
        logprobs = torch.log_softmax(backend.loaded.model(input_ids=ids).logits[0].float(), -1)
    return sum(float(logprobs[len(context) - 1 + k, t]) for k, t in enumerate(continuation))


def test_loglikelihood_agrees_with_direct_computation(sharp: TransformersBackend) -> None:
    requests = [
        ScoreRequest(continuation=" world, how are you?", prefix="hello"),
        ScoreRequest(continuation="yes", messages=({"role": "user", "content": "Answer yes"},)),
        ScoreRequest(continuation="A long continuation " * 5, prefix="Short"),
        ScoreRequest(continuation="no prefix at all"),
        ScoreRequest(continuation="", prefix="nothing to score"),
    ]
    batched = sharp.loglikelihood(requests)
    direct = [direct_loglikelihood(sharp, r) for r in requests]
    assert batched == pytest.approx(direct, abs=1e-3)
    assert batched[-1] == 0.0 and all(v < 0 for v in batched[:-1])


def test_single_token_continuations_share_one_forward_pass(sharp: TransformersBackend) -> None:
    messages = ({"role": "user", "content": "Rate the answer from 1 to 5."},)
    scale = [ScoreRequest(continuation=str(v), messages=messages) for v in range(1, 6)]
    mixed = [*scale, ScoreRequest(continuation="5 stars", messages=messages), scale[0]]
    grouped = sharp.loglikelihood(mixed)  # the 1..5 group takes one pass, "5 stars" its own
    assert sharp.last_scored_tokens == sum(len(c) + len(t) for c, t in map(sharp.score_ids, mixed))
    direct = [direct_loglikelihood(sharp, r) for r in mixed]
    assert grouped == pytest.approx(direct, abs=1e-3)
    assert [sharp.loglikelihood([r])[0] for r in scale] == pytest.approx(grouped[:5], abs=1e-4)


def test_loglikelihood_uses_the_chat_template(sharp: TransformersBackend) -> None:
    messages = ({"role": "user", "content": "Hi"},)
    context, continuation = sharp.score_ids(ScoreRequest(continuation="Hello", messages=messages))
    assert sharp.tokenizer.decode(context) == sharp.chat_text(messages)
    assert sharp.tokenizer.decode(continuation) == "Hello"


# -- registry ----------------------------------------------------------------------------------


def test_get_backend_shares_instances_and_weights(tiny_model_dir: Path) -> None:
    clear_backends()
    cfg = {"name": "small", "backend": "transformers", "path": str(tiny_model_dir)}
    first = get_backend({**cfg, "temperature": 0.7})
    assert get_backend({**cfg, "temperature": 0.0, "seed": 3}) is first
    other = get_backend({**cfg, "retries": 5})
    assert other is not first and other.retries == 5  # type: ignore[attr-defined]
    assert other.loaded is first.loaded  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown model backend 'nope'"):
        get_backend({**cfg, "backend": "nope"})
    clear_backends()


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"bedrooms": 2}, []),
        ({"bedrooms": 2, "budget_max": None, "district": "Pudong"}, []),
        ({}, ["$: missing required field 'bedrooms'"]),
        ({"bedrooms": 11}, ["$.bedrooms: 11 is above the maximum 10"]),
        ({"bedrooms": True}, ["$.bedrooms: expected integer, got boolean true"]),
        ({"bedrooms": 2.5}, ["$.bedrooms: expected integer, got number 2.5"]),
        ({"bedrooms": 1, "pets": "no"}, ["$: unexpected field 'pets'"]),
        ({"bedrooms": 1, "district": "x" * 41}, ["$.district: 41 characters, more than maxLength 40"]),
        ([], ["$: expected object, got array"]),
    ],
)
def test_schema_errors(value: Any, expected: list[str]) -> None:
    assert schema_errors(value, REQUIREMENTS) == expected


def test_schema_errors_refs_and_combinators() -> None:
    schema = {
        "$defs": {
            "Room": {
                "type": "object",
                "properties": {"m2": {"type": "number"}},
                "additionalProperties": False,
            }
        },
        "type": "object",
        "properties": {
            "rooms": {"type": "array", "items": {"$ref": "#/$defs/Room"}},
            "kind": {"anyOf": [{"const": "flat"}, {"type": "integer"}]},
        },
    }
    assert schema_errors({"rooms": [{"m2": 12.5}], "kind": "flat"}, schema) == []
    assert schema_errors({"rooms": [{"m2": "big"}]}, schema) == ['$.rooms[0].m2: expected number, got string "big"']
    assert schema_errors({"kind": "house"}, schema) == ['$.kind: "house" matches none of the allowed forms']


@pytest.mark.parametrize(
    ("text", "constraint", "ok"),
    [
        ('{"bedrooms": 1}', Constraint("json", REQUIREMENTS), True),
        ('{"bedrooms": 1', Constraint("json", REQUIREMENTS), False),
        ("maybe", Constraint("choice", options=("yes", "no")), False),
        ("AB-123", Constraint("regex", pattern=r"[A-Z]{2}-\d{3}"), True),
        ("AB-123x", Constraint("regex", pattern=r"[A-Z]{2}-\d{3}"), False),
        ("x" * 11, Constraint("text", max_chars=10), False),
    ],
)
def test_validate_output(text: str, constraint: Constraint, ok: bool) -> None:
    assert validate_output(text, constraint)[0] is ok


# -- the real embedded model -----------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_extracts_json_and_reuses_its_conversion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dialc_runtime.models import locate as models

    converted = models.resolve_model(tb.DEFAULT_MODEL)  # converts on the very first run only

    def fail(gguf: Path, out: Path) -> None:
        raise AssertionError("the builtin model was converted a second time")

    monkeypatch.setattr(models, "_convert", fail)
    assert models.resolve_model(tb.DEFAULT_MODEL) == converted
    backend = TransformersBackend({"path": tb.DEFAULT_MODEL})
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 30},
            "city": {"type": "string", "maxLength": 30},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
        },
        "required": ["name", "city", "age"],
        "additionalProperties": False,
    }
    text = "My name is Alice, I am 30 years old and I live in Paris."
    [result] = backend.generate(
        [
            ask(
                f"Extract the person's name, city and age as JSON.\nText: {text}",
                constraint=Constraint("json", schema),
                max_tokens=64,
            ),
        ]
    )
    assert result.ok, result.error
    assert result.value["name"] == "Alice" and result.value["city"] == "Paris"

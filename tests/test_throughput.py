"""Requests to a server: a sliding window of `concurrency`, rpm/tpm limits, 429 back-off (Retry-After).

Pacing is checked on the test server's own clock (`/stats` events), never with a tight bound on ours."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from test_backend_openai import Scripted, ask

from dialc.plan import ModelSpec, Step
from dialc_runtime.engine.cache import step_key
from dialc_runtime.engine.store import Store
from dialc_runtime.models.throttle import RETRY_AFTER_CAP, Throttle, estimate_tokens, retry_after_seconds


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    started: list[Scripted] = []

    def start(*args: str, **kw: Any) -> Scripted:
        started.append(Scripted(*args, **kw))
        return started[-1]

    yield start
    for server in started:
        server.close()


def stored_records(run_dir: Path, key: str | None) -> list[Any]:
    with Store(run_dir) as store:
        return [r for _, r in store.records(key or "")]


def chat_events(server: Scripted) -> list[dict[str, Any]]:
    return sorted(server.stats()["events"], key=lambda e: e["start"])


# -- the sliding window --------------------------------------------------------------------------


def test_window_keeps_concurrency_in_flight_past_a_slow_request(scripted: Callable[..., Scripted]) -> None:
    """Batches of 4 would wait for their slow member: 3 other requests during it. A window of 4 goes on."""
    server = scripted("--latency", "0.15", "--slow-first", "1.5", "--echo-prompt")
    backend = server.backend(concurrency=4, batch_size=2)  # concurrency, not batch_size, sets the window
    requests = [ask(f"q{i}", seed=i) for i in range(16)]
    got = list(backend.generate_stream(requests))
    assert [i for i, _ in got] == list(range(16))  # request order, whatever order they finished in
    assert [r.text for _, r in got] == [f"q{i} seed={i}" for i in range(16)]
    stats = server.stats()
    assert stats["peak"] == 4
    events = chat_events(server)
    slow = max(events, key=lambda e: e["end"] - e["start"])
    assert slow["end"] - slow["start"] >= 1.5
    during = [e for e in events if e is not slow and slow["start"] <= e["start"] <= slow["end"]]
    assert len(during) >= 9, f"only {len(during)} requests started while the slow one ran"


def test_stream_results_are_those_of_one_request_at_a_time(scripted: Callable[..., Scripted]) -> None:
    server = scripted("--latency", "0.02", "--echo-prompt")
    requests = [ask(f"prompt {i}", seed=100 + i) for i in range(40)]
    one = server.backend(concurrency=1).generate(requests)
    many = server.backend(concurrency=16).generate(requests)
    assert [(r.text, r.ok, r.attempts) for r in one] == [(r.text, r.ok, r.attempts) for r in many]
    assert [r.text for r in many] == [f"prompt {i} seed={100 + i}" for i in range(40)]


def test_label_records_and_cache_key_do_not_depend_on_concurrency(tmp_path: Path,
                                                                   scripted: Callable[..., Scripted]) -> None:
    from test_hostile_runs import label_run, openai_project

    server = scripted("--latency", "0.01", "--echo-prompt")
    spec = openai_project(tmp_path / "a", server.url, extra="concurrency = 1")
    first = label_run(spec, tmp_path / "a" / "run")
    fast = openai_project(tmp_path / "b", server.url, extra="concurrency = 8  rpm = 100000  tpm = 100000000")
    second = label_run(fast, tmp_path / "b" / "run")
    assert first.status == second.status == "ok" and first.records > 4
    assert first.key == second.key  # throughput settings are not part of a cache key
    mine = stored_records(tmp_path / "a" / "run", first.key)
    theirs = stored_records(tmp_path / "b" / "run", second.key)
    assert mine == theirs
    echoed = [r for r in mine if r["output"]["kind"] == "text"]  # each answer names its own request
    assert echoed and all("seed=" in r["answer"] for r in echoed)


def test_throughput_settings_are_in_the_plan_only_when_set() -> None:
    plain = ModelSpec(name="m", backend="openai", path="p")
    tuned = ModelSpec(name="m", backend="openai", path="p", concurrency=32, rpm=600, tpm=90_000)
    assert not {"concurrency", "rpm", "tpm"} & set(plain.model_dump())
    assert tuned.model_dump()["concurrency"] == 32 and tuned.config()["rpm"] == 600
    assert tuned.model_dump(context={"cache_key": True}) == plain.model_dump()
    steps = [Step(id="label.l", kind="label", name="l", params={"model": m, "seed": 1}) for m in (plain, tuned)]
    assert steps[0].params_json() != steps[1].params_json()
    keys = {step_key(s, "1", 1, [], []) for s in steps}
    assert len(keys) == 1


# -- rpm / tpm -------------------------------------------------------------------------------------


def test_rpm_spreads_requests_on_the_servers_clock(scripted: Callable[..., Scripted]) -> None:
    server = scripted()
    results = server.backend(concurrency=4, rpm=600).generate([ask(f"q{i}") for i in range(8)])
    assert all(r.ok for r in results)
    starts = [e["start"] for e in chat_events(server)]
    # 600 a minute: one every 0.1 s, so 8 requests span at least 0.7 s (less a little network jitter)
    assert starts[-1] - starts[0] >= 0.65, starts


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rpm_bucket_spaces_requests_evenly() -> None:
    clock = FakeClock()
    throttle = Throttle(rpm=60, tpm=None, clock=clock)
    assert throttle.delay(10) == 0  # the first goes at once
    assert throttle.delay(10) == pytest.approx(1.0)
    clock.now += 0.4
    assert throttle.delay(10) == pytest.approx(0.6)
    clock.now += 0.6
    assert throttle.delay(10) == 0


def test_tpm_bucket_books_estimates_and_corrects_them_by_usage() -> None:
    clock = FakeClock()
    throttle = Throttle(rpm=None, tpm=6000, clock=clock)  # 100 tokens a second, bursts of 100
    assert throttle.delay(80) == 0
    assert throttle.delay(80) == pytest.approx(0.6)  # 20 left: 60 more needed at 100/s
    throttle.used(80, 20)  # the server says it used 20: 60 come back
    assert throttle.delay(80) == 0
    assert throttle.delay(500) == pytest.approx(1.0)  # larger than a burst: waits for a full bucket …
    clock.now += 1.0
    assert throttle.delay(500) == 0
    assert throttle.delay(1) == pytest.approx(4.01)  # … and leaves it in debt: the rate holds


def test_estimate_counts_prompt_and_completion_budget() -> None:
    assert estimate_tokens(["x" * 400], 256) == 100 + 1 + 256


# -- 429 -------------------------------------------------------------------------------------------


def test_retry_after_seconds_or_http_date() -> None:
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert retry_after_seconds(date, now=now.timestamp()) == pytest.approx(7.0)
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=7), usegmt=True), now.timestamp()) == 0


def test_backoff_is_capped_and_jittered_upwards_only() -> None:
    clock = FakeClock()
    throttle = Throttle(None, None, clock=clock, rng=random.Random(1))
    pauses = [throttle.backoff(2.0, 0) for _ in range(20)]
    assert all(2.0 <= p <= 2.2 for p in pauses) and len(set(pauses)) > 1
    assert RETRY_AFTER_CAP <= throttle.backoff(3600.0, 0) <= RETRY_AFTER_CAP * 1.1
    assert 4.0 <= throttle.backoff(None, 2) <= 4.4  # no header: 1, 2, 4 … s
    assert throttle.stats.responses_429 == 22
    assert throttle.delay(1) >= RETRY_AFTER_CAP  # every request waits for the pause


def run_throttled(scripted: Callable[..., Scripted], retry_after: str) -> tuple[list[dict], list[dict]]:
    """6 requests, a window of 3, the first 3 answered 429: all answered, 429s counted; the events."""
    server = scripted("--throttle-first", "3", "--retry-after", retry_after, "--echo-prompt")
    backend = server.backend(concurrency=3, retries=0)  # a 429 uses no retry
    results = backend.generate([ask(f"q{i}", seed=i) for i in range(6)])
    assert [r.text for r in results] == [f"q{i} seed={i}" for i in range(6)]  # nothing lost
    assert all(r.ok for r in results) and sum(r.throttled for r in results) == 3
    assert backend.throttle.stats.responses_429 == 3
    events = chat_events(server)
    refused = [e for e in events if e["status"] == 429]
    answered = [e for e in events if e["status"] == 200]
    assert len(refused) == 3 and len(answered) == 6
    return refused, answered


def test_429_waits_for_retry_after_seconds(scripted: Callable[..., Scripted]) -> None:
    refused, answered = run_throttled(scripted, "1")
    # the server's clock: nothing was sent again before Retry-After had passed since the last 429
    assert min(e["start"] for e in answered) - max(e["end"] for e in refused) >= 1.0


def test_429_waits_for_a_retry_after_date(scripted: Callable[..., Scripted]) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)  # 2 to 3 s from now
    refused, answered = run_throttled(scripted, format_datetime(when, usegmt=True))
    assert when.timestamp() <= min(e["wall"] for e in answered)  # (the 429s came about 2 s before it)


def test_429_counts_reach_the_step_metrics(tmp_path: Path, scripted: Callable[..., Scripted]) -> None:
    from test_hostile_runs import label_run, openai_project

    server = scripted("--throttle-first", "2", "--retry-after", "0.2", "--echo-prompt")
    spec = openai_project(tmp_path, server.url, extra="concurrency = 2")
    label = label_run(spec, tmp_path / "run")
    assert label.status == "ok" and label.metrics["http_429"] == 2

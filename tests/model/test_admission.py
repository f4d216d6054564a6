"""Admission without a server: AIMD limits, FIFO hand-off, budgets, and the rate-limit header formats."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from evalsuite.model import _admission
from evalsuite.model._admission import Gate, _Bucket, reset_seconds, retry_after_seconds


@pytest.fixture(autouse=True)
def _forget_learned_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_admission, "_learned_limits", {})


def test_a_429_halves_the_limit_once_per_episode_and_successes_grow_it_back() -> None:
    limits: list[int] = []
    gate = Gate("http://a/v1", concurrency=8, on_limit=limits.append)
    gate.rate_limited({}, None)
    gate.rate_limited({}, None)  # a 429 from a request sent under the old limit: same episode
    assert gate.limit == 4
    for _ in range(4 + 5 + 6 + 7):  # a limit's worth of successes per step
        gate.succeeded({}, None, 0.0)
    assert limits == [8, 4, 5, 6, 7, 8] and gate.limit == 8
    gate.succeeded({}, None, 0.0)
    assert gate.limit == 8  # never above the maximum


def test_the_learned_limit_carries_to_the_next_gate_for_the_same_endpoint() -> None:
    Gate("http://a/v1", concurrency=8).rate_limited({}, None)
    assert Gate("http://a/v1", concurrency=8).limit == 4
    assert Gate("http://b/v1", concurrency=8).limit == 8
    assert Gate("http://a/v1", concurrency=8, adaptive=False).limit == 8


def test_non_adaptive_gate_keeps_its_limit_under_429s() -> None:
    gate = Gate("http://a/v1", concurrency=4, adaptive=False)
    gate.rate_limited({}, 1.0)
    assert gate.limit == 4


def test_slots_are_handed_over_in_arrival_order() -> None:
    async def main() -> list[int]:
        gate = Gate("http://a/v1", concurrency=1)
        order: list[int] = []
        await gate.acquire(0)

        async def waiter(n: int) -> None:
            await gate.acquire(0)
            order.append(n)
            gate.release()

        tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
        await asyncio.sleep(0)
        assert gate.in_flight == 1 and len(gate.waiters) == 5
        gate.release()
        await asyncio.gather(*tasks)
        assert gate.in_flight == 0
        return order

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_a_cancelled_waiter_gives_up_its_place_without_leaking_a_slot() -> None:
    async def main() -> None:
        gate = Gate("http://a/v1", concurrency=1)
        await gate.acquire(0)
        task = asyncio.create_task(gate.acquire(0))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.release()
        assert gate.in_flight == 0 and not gate.waiters

    asyncio.run(main())


def test_exhausted_rate_limit_headers_pause_new_sends_until_the_reset() -> None:
    gate = Gate("http://a/v1", concurrency=4)
    before = time.monotonic()
    gate.succeeded({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}, None, 0.0)
    assert gate.paused_until >= before + 360
    gate = Gate("http://b/v1", concurrency=4)
    gate.succeeded({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "1s"}, None, 0.0)
    assert gate.paused_until == 0.0


def test_requests_per_minute_budget_asks_to_wait_once_the_burst_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_admission.asyncio, "sleep", no_sleep)
    bucket = _Bucket(1200)  # 20/s, a one-second burst

    async def take_30() -> None:
        for _ in range(30):
            await bucket.take(1)

    asyncio.run(take_30())
    assert len(waits) == 10  # the 10 beyond the burst wait, each longer than the one before
    assert waits == sorted(waits) and waits[-1] == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize(("value", "seconds"), [("20ms", 0.02), ("1s", 1.0), ("6m0s", 360.0), ("1h2m", 3720.0),
                                                ("0.5", 0.5), ("", None), (None, None), ("soon", None)])
def test_reset_durations(value: str | None, seconds: float | None) -> None:
    assert reset_seconds(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_in_milliseconds_seconds_or_an_http_date() -> None:
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after_seconds({"retry-after": date}) or 0) <= 30
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({}) is None

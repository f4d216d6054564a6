"""The spend guard's arithmetic: estimates held while in flight, reported usage once answered, reached for good."""

from __future__ import annotations

import pytest

from evalsuite.model import SpendGuard
from evalsuite.records import Answer, Call

PRICE = (1.0, 2.0)  # USD per 1k input, output tokens


def call(chars: int, max_tokens: int | None = 10) -> Call:
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * chars}],
            **({"max_tokens": max_tokens} if max_tokens else {})}
    return Call("e", 0, "chat", body)


def test_a_call_holds_its_estimate_until_its_reported_usage_replaces_it() -> None:
    guard = SpendGuard(1.0)
    hold = guard.reserve(call(400), PRICE)  # 100 prompt tokens + 10 completion at most
    assert hold.amount == hold.estimate == pytest.approx(0.1 + 0.02) and guard.held == pytest.approx(0.12)
    guard.settle(hold, Answer("e", 0, text="ok", prompt_tokens=90, completion_tokens=2), PRICE)
    assert guard.held == pytest.approx(0) and guard.spent == pytest.approx(0.09 + 0.004)


def test_estimates_grow_by_how_much_reported_usage_exceeded_them() -> None:
    guard = SpendGuard(10.0)
    first = guard.reserve(call(400, max_tokens=None), PRICE)  # 100 prompt tokens by characters / 4
    guard.settle(first, Answer("e", 0, text="ok", prompt_tokens=150, completion_tokens=0), PRICE)  # chat wrapping
    second = guard.reserve(call(400, max_tokens=None), PRICE)
    assert second.estimate == pytest.approx(0.1) and second.amount == pytest.approx(0.15)


def test_once_a_call_would_pass_the_limit_no_call_is_cleared_again() -> None:
    guard = SpendGuard(0.25)
    first = guard.reserve(call(400), PRICE)
    second = guard.reserve(call(400), PRICE)
    assert first is not None and second is not None  # 0.24 committed
    assert guard.reserve(call(400), PRICE) is None and guard.reached_at == pytest.approx(0.24)
    guard.settle(first, Answer("e", 0, error="boom", error_kind="api"), PRICE)  # a failed call costs nothing
    assert guard.reserve(call(4, max_tokens=None), PRICE) is None  # room again, but the guard stays reached
    assert guard.describe() == "limit $0.25 reached at ~$0.24"


def test_an_answer_without_usage_costs_its_estimate() -> None:
    guard = SpendGuard(1.0)
    hold = guard.reserve(call(40, max_tokens=None), PRICE)
    guard.settle(hold, Answer("e", 0, text="ok"), PRICE)
    assert guard.spent == pytest.approx(0.01)

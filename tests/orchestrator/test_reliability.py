"""The retry budget's sliding window and the breaker's closed state, on a clock the test moves."""

from __future__ import annotations

import pytest

import orchestrator._reliability as reliability
from orchestrator._reliability import CircuitBreaker, RetryBudget


class Clock:
    """``time.monotonic`` for the module under test, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(reliability.time, "monotonic", clock)
    return clock


def test_calls_older_than_the_window_no_longer_buy_retries(clock: Clock) -> None:
    # record_call drops the calls that left the window (only when the oldest has: no call to trim otherwise)
    budget = RetryBudget(ratio=0.5, min_retries=0, window_s=10.0)
    for _ in range(4):
        budget.record_call()
    assert budget.try_spend()  # 0 < 0.5 × 4
    assert budget.try_spend()  # 1 < 2
    assert not budget.try_spend()  # 2 retries: the budget of 4 calls is spent
    clock.now += 20  # every call and retry so far has left the window
    budget.record_call()
    assert budget.retries_in_window == 0
    assert budget.try_spend()  # 0 < 0.5 × 1
    assert not budget.try_spend()  # 1 retry is the budget of the one call in the window


def test_a_closed_breaker_allows_and_an_open_one_refuses_until_its_probe(clock: Clock) -> None:
    # The router asks allow() only of a breaker that has opened (opened_at set): a closed one allows.
    breaker = CircuitBreaker(failure_threshold=2, reset_s=5.0)
    assert breaker.opened_at is None
    assert breaker.allow()
    breaker.failure()
    assert breaker.opened_at is None  # one failure of two
    breaker.failure()
    assert breaker.opened_at is not None
    assert not breaker.allow()
    clock.now += 6
    assert breaker.allow()  # half open: one probe
    assert not breaker.allow()
    breaker.success()
    assert breaker.opened_at is None
    assert breaker.allow()

"""Retries with exponential backoff and a retry budget, and a circuit breaker per agent.

* Backoff: "full jitter" — attempt ``n`` waits a uniform random time in ``[0, min(cap, base · 2ⁿ)]``
  (M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
* Retry budget: retries may add at most ``ratio`` of the calls made in a sliding window, plus a floor
  of ``min_retries`` per window, so a failing dependency is not hit with a retry storm (the shape of
  Finagle's ``RetryBudget`` and of gRPC's retry throttling, gRFC A6).
* Circuit breaker: closed → open after ``failure_threshold`` consecutive failures; open refuses at once
  for ``reset_s`` seconds; then half-open lets one probe through, whose success closes it and whose
  failure opens it again (M. Nygard, "Release It!", 2007).
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

__all__ = ("BreakerState", "CircuitBreaker", "RetryBudget", "backoff_s")

BreakerState = Literal["closed", "open", "half_open"]


def backoff_s(attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based), with full jitter."""
    ceiling = min(cap_s, base_s * (2**attempt))
    return (rng or random).uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


@dataclass(slots=True)
class RetryBudget:
    """How many retries the orchestrator may still make.

    Args:
        ratio: Retries allowed per call in the window (0.2 = 20 % extra load at most).
        min_retries: Retries always allowed per window, however few the calls.
        window_s: Length of the sliding window, in seconds.
    """

    ratio: float = 0.2
    min_retries: int = 10
    window_s: float = 10.0
    _calls: deque[float] = field(default_factory=deque)
    _retries: deque[float] = field(default_factory=deque)

    def _expire(self, q: deque[float], now: float) -> None:
        while q and now - q[0] > self.window_s:
            q.popleft()

    def _trim(self, now: float) -> None:
        self._expire(self._calls, now)
        self._expire(self._retries, now)

    def record_call(self) -> None:
        """Count a first attempt (calls older than the window are dropped here; retries when spent)."""
        now = time.monotonic()
        calls = self._calls
        if calls and now - calls[0] > self.window_s:  # (the look _expire makes, without its call)
            self._expire(calls, now)
        calls.append(now)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is exhausted."""
        now = time.monotonic()
        self._trim(now)
        if len(self._retries) >= self.min_retries + self.ratio * len(self._calls):
            return False
        self._retries.append(now)
        return True

    @property
    def retries_in_window(self) -> int:
        """Retries spent in the current window."""
        self._trim(time.monotonic())
        return len(self._retries)


@dataclass(slots=True)
class CircuitBreaker:
    """The breaker of one agent.

    Args:
        failure_threshold: Consecutive failures that open the breaker.
        reset_s: Seconds the breaker stays open before letting a probe through.
    """

    failure_threshold: int = 5
    reset_s: float = 5.0
    failures: int = 0
    opened_at: float | None = None
    _probing: bool = False

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open``."""
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at < self.reset_s:
            return "open"
        return "half_open"

    def allow(self) -> bool:
        """Whether a call may go through now (in half-open state: one probe at a time)."""
        if self.opened_at is None:  # closed (every routed call asks: no state look-up)
            return True
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        """A call succeeded: close."""
        if self.failures or self.opened_at is not None or self._probing:  # else: closed already
            self.failures, self.opened_at, self._probing = 0, None, False

    def failure(self) -> None:
        """A call failed (timeout, crash): count it; open at the threshold or when a probe fails."""
        self.failures += 1
        if self._probing or self.failures >= self.failure_threshold:
            self.opened_at = time.monotonic()
        self._probing = False

    def release(self) -> None:
        """A call ended without a verdict on the agent's health (refused busy, cancelled, bad input)."""
        self._probing = False

"""The SDK clients' retry policy (tenacity): which failures are tried again, and how long to wait.

Part of :mod:`neurectomy.sdk.client`. A request whose connection was never made is tried again whatever
its method; an idempotent one (GET, HEAD, DELETE) also on 429 and 503, waiting ``Retry-After`` when the
server sent one (at most 10 s), else backing off exponentially.
"""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from neurectomy.sdk.errors import APIConnectionError, BusyError, UnavailableError

_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})
RETRY_ATTEMPTS = 4
"""Tries of an idempotent request that meets 429 or 503 (the first included) by default."""
DEFAULT_MAX_RETRIES = RETRY_ATTEMPTS - 1


def _connect_failed(exc: BaseException) -> bool:
    """A connection that was never made: nothing was sent, so any request can be tried again."""
    return isinstance(exc, APIConnectionError) and isinstance(exc.__cause__, httpx.ConnectError)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, BusyError | UnavailableError) or _connect_failed(exc)


def _wait(state: RetryCallState) -> float:
    """``Retry-After`` when the server sent one, else exponential backoff (0.25 s, 0.5 s, 1 s, ...)."""
    exc = state.outcome.exception() if state.outcome is not None else None
    hinted = getattr(exc, "retry_after_s", None)
    backoff = float(wait_exponential(multiplier=0.25, max=4.0)(state))
    return min(float(hinted), 10.0) if hinted else backoff


def _policy(max_retries: int, retryable: Any) -> dict[str, Any]:
    """The one retry policy, as keyword arguments of tenacity's ``Retrying`` and ``AsyncRetrying``."""
    return {
        "retry": retry_if_exception(retryable),
        "stop": stop_after_attempt(max_retries + 1),
        "wait": _wait,
        "reraise": True,
    }


def _retrying(max_retries: int, retryable: Any = _retryable) -> Retrying:
    return Retrying(**_policy(max_retries, retryable))


def _async_retrying(max_retries: int, retryable: Any = _retryable) -> AsyncRetrying:
    return AsyncRetrying(**_policy(max_retries, retryable))

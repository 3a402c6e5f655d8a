"""JetStream set-up that waits out a cluster still electing its leaders: :func:`until_ready`.

A process that starts beside (or just after) its NATS cluster can find JetStream unable to answer for a
while. Measured on nats-server 2.15 with one of three cluster nodes up: API requests first time out (a
clustered server without a meta leader drops them), then are answered ``503 JetStream system temporarily
unavailable`` (err_code 10008) until a quorum of nodes has elected a meta leader; a new stream or consumer
also needs its own leader before its create request is answered, and an R3 create sent just after the meta
leader came back can be answered ``no suitable peers for placement, peer offline`` (err_code 10005) until the
other nodes are seen online again. :func:`until_ready` runs one set-up call
(create a stream, a consumer, a KV bucket) again while it fails with :class:`JetStreamNotReadyError`,
with exponential backoff and full jitter (uniform in ``[0, min(5 s, 0.25 s · 2ⁿ)]``, tenacity's
``wait_random_exponential``; M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015), and
logs each wait, until ``timeout_s``. Every other error fails at once: JetStream not enabled, a refused
configuration, a stream configuration mismatch, and a request the credentials may not send (the server
reports that asynchronously as a permissions violation, so the request itself only times out; the bus's
:class:`~agents.messaging.PermissionDenials` tells the two apart).

Each set-up call is idempotent (the same stream, consumer or bucket configuration created twice is one
object), so an attempt that timed out after the server did create the object is harmless to repeat.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_before_delay
from tenacity.wait import wait_random_exponential

from agents._natsconnect import PermissionDenials
from agents.errors import ForbiddenError
from agents.jetstream._base import JetStreamNotReadyError

__all__ = ("until_ready",)

log = structlog.get_logger("neurectomy.jetstream")

T = TypeVar("T")

_BACKOFF_BASE_S = 0.25
_BACKOFF_CAP_S = 5.0
_JS_API = "$JS.API."


async def until_ready(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    timeout_s: float,
    denials: PermissionDenials | None = None,
) -> T:
    """``await attempt()``, again with backoff while JetStream is not ready, for up to ``timeout_s``.

    Args:
        what: What the call sets up, for the log and the error (``create stream NEURECTOMY_TASKS``).
        attempt: The set-up call (idempotent).
        timeout_s: How long to keep trying, in seconds (no new attempt starts after it; ``0``: one attempt).
            The last attempt may end up to its own API timeout later.
        denials: The connection's permission violations: a timeout with a ``$JS.API`` violation reported
            during the attempt fails at once.

    Returns:
        What ``attempt`` returned.

    Raises:
        JetStreamNotReadyError: Still not ready after ``timeout_s`` (the message names the wait and the
            last error).
        ForbiddenError: The server refused the credentials permission for the JetStream API request.
        AgentError: Any other error of ``attempt``, at once.
    """
    started = time.monotonic()

    async def once() -> T:
        sent = time.monotonic()
        try:
            return await attempt()
        except JetStreamNotReadyError as exc:
            denied = denials.since(sent, _JS_API) if denials is not None else None
            if denied is not None:
                raise ForbiddenError(f"{what}: NATS refused: {denied}") from exc
            raise

    def log_wait(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "waiting for JetStream",
            waiting_for=what,
            attempt=state.attempt_number,
            retry_in_s=round(state.next_action.sleep if state.next_action is not None else 0.0, 2),
            waited_s=round(time.monotonic() - started, 1),
            timeout_s=timeout_s,
            error=str(exc),
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(JetStreamNotReadyError),
        wait=wait_random_exponential(multiplier=_BACKOFF_BASE_S, max=_BACKOFF_CAP_S),
        stop=stop_before_delay(timeout_s),
        sleep=anyio.sleep,
        before_sleep=log_wait,
        reraise=True,
    )
    try:
        return await retrying(once)
    except JetStreamNotReadyError as exc:
        if timeout_s <= 0:
            raise
        raise JetStreamNotReadyError(
            f"{what}: JetStream not ready after {time.monotonic() - started:.0f} s of waiting "
            f"(timeout {timeout_s:g} s); last error: {exc.message}"
        ) from exc

"""Request limits: per-key rate limiting (429 with ``Retry-After``), and where the other limits live.

Rate limiting is the ``limits`` library's fixed-window strategy
(:class:`limits.aio.strategies.FixedWindowRateLimiter`) per identifier (the API key or JWT subject when
auth is on, the client IP address when it is off): a window is a count and the time it ends, so checking
and counting cost the same whatever the limit (Litestar's :class:`~litestar.middleware.rate_limit.
RateLimitMiddleware` keeps a list of every request's time stamp and re-encodes it on each request, which
grows with the limit; the moving window of ``limits`` keeps one too). A window starts at its caller's
first request and ends ``rate_window`` later. On one host the counters live in this process
(:class:`api._window_store.WindowStore`, the ``limits`` storage interface over a dict); against a NATS
cluster in :class:`api._kv_store.KeyValueStore`, the ``limits`` storage interface on JetStream KV, counted by
compare-and-set, so every API process counts in the same window and two processes never both take the
last request of a window. Both storages also answer :meth:`WindowCounter.incr_window` (the count and the
window's end from the same write), so a request costs one count and nothing more — on the shared store
one KV read and one compare-and-set instead of ``limits``' ``hit`` followed by two reads for the window's
state (any other ``limits`` storage still gets those).
Fixed rather than moving window: the moving window keeps a time stamp per counted request (O(limit)
memory and work, what this replaced), the fixed window a count, and it is what this API has always
promised (``RateLimit-Reset``: when the caller's window ends). Not ``limits``' own ``MemoryStorage``: it
sweeps all live counters in a task after each count, so its cost per request grows with the callers seen
within one window (``benchmarks/rate_limit_storage.py``; :mod:`api._window_store`).
A refused request gets 429, ``Retry-After`` (seconds until the window resets, added by
:mod:`api.errors`) and the IETF draft ``RateLimit-*`` headers; allowed requests carry them too.

The other limits, for reference (each is enforced where the resource is):

* request body size: ``api.max_body_bytes`` → 413 naming the limit (Litestar ``request_max_body_size``);
* an agent's JSON input: its ``max_input_bytes`` (``GET /v1/agents/{name}``) → 413 on ``input`` naming both
  sizes, refused by the agent before it decodes the JSON; ``POST /v1/agents/{name}`` refuses a body over
  ``api._bodies.agent_body_limit`` of it (413 on ``input``) before the API reads it;
* queue depth: each agent's bounded mailbox (``generator.mailbox_size``) and Ryot's queue → 429;
* deadlines: ``orchestrator.default_deadline_s`` or a request's ``timeout_s`` → 504.
"""

from __future__ import annotations

from math import ceil
from time import time
from typing import Literal, Protocol, runtime_checkable

from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from pydantic import BaseModel, ConfigDict, Field

from api._auth import OPEN_PATHS, Principal
from api._kv_store import CounterContendedError, KeyValueStore
from api._window_store import WindowStore

ITEMS: dict[str, type[RateLimitItem]] = {
    "second": RateLimitItemPerSecond,
    "minute": RateLimitItemPerMinute,
    "hour": RateLimitItemPerHour,
    "day": RateLimitItemPerDay,
}
"""The ``limits`` item of each :attr:`LimitsConfig.rate_window`."""


class LimitsConfig(BaseModel):
    """Per-caller request limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: int = Field(default=0, ge=0)
    """Requests allowed per ``rate_window`` per API key (per client IP when auth is off); 0: unlimited."""
    rate_window: Literal["second", "minute", "hour", "day"] = "minute"
    """The fixed window the rate limit counts in."""


@runtime_checkable
class WindowCounter(Protocol):
    """A ``limits`` storage that returns a window's end with its count (ours: one round trip, not three)."""

    async def incr_window(self, key: str, expiry: float, amount: int = 1) -> tuple[int, float]:
        """Add ``amount`` to ``key``'s counter (a new one ends ``expiry`` s from now); count and end."""
        ...


def caller_identity(scope: Scope) -> str:
    """Who a request counts against: ``api_key:key:<id>`` or ``jwt:<subject>``, else ``ip:<address>``."""
    user = scope.get("user")
    if isinstance(user, Principal):
        return f"{user.via}:{user.subject}"
    client = scope.get("client")
    return f"ip:{client[0] if client else '127.0.0.1'}"


class RateLimitMiddleware(ASGIMiddleware):
    """Counts each request against its caller's fixed window in ``storage``; 429 once it is full.

    Args:
        config: The limits (``rate_limit`` above 0).
        storage: Where the windows are counted: :class:`api._window_store.WindowStore` (this
            process) or :class:`api._kv_store.KeyValueStore` (shared by the cluster's API processes).
    """

    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = OPEN_PATHS

    def __init__(self, config: LimitsConfig, storage: Storage) -> None:
        self.item = ITEMS[config.rate_window](config.rate_limit)
        self.storage = storage
        self.limiter = FixedWindowRateLimiter(storage)
        self._counter = storage if isinstance(storage, WindowCounter) else None
        self.max_requests = config.rate_limit
        self.duration_s = self.item.get_expiry()
        self._policy = f"{self.max_requests}; w={self.duration_s}"
        self._fixed = (
            (b"ratelimit-policy", self._policy.encode()),
            (b"ratelimit-limit", b"%d" % self.max_requests),
        )

    def headers(self, remaining: int, reset_s: int) -> dict[str, str]:
        """The IETF draft ``RateLimit-*`` headers (policy, limit, remaining, seconds until reset)."""
        return {
            "RateLimit-Policy": self._policy,
            "RateLimit-Limit": str(self.max_requests),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset_s),
        }

    async def count(self, key: str) -> tuple[int, int]:
        """Count one request of ``key`` in its window.

        Returns:
            The requests left in the window after this one, and seconds until the window resets.

        Raises:
            TooManyRequestsException: The window is full (its headers carry the reset, turned into
                ``Retry-After`` by :mod:`api.errors`), or a shared count stayed contended.
        """
        try:
            if self._counter is not None:  # limits' fixed-window rule: allowed while count <= limit
                count, reset_time = await self._counter.incr_window(self.item.key_for(key), self.duration_s)
                allowed, remaining = count <= self.max_requests, max(self.max_requests - count, 0)
            else:
                allowed = await self.limiter.hit(self.item, key)
                stats = await self.limiter.get_window_stats(self.item, key)
                remaining, reset_time = stats.remaining, stats.reset_time
        except CounterContendedError:
            raise TooManyRequestsException(headers=self.headers(0, 1)) from None
        reset_s = max(ceil(reset_time - time()), 0)
        if not allowed:
            raise TooManyRequestsException(headers=self.headers(remaining, reset_s))
        return remaining, reset_s

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Count the request (429 if its caller's window is full), then add the headers to the response."""
        key = caller_identity(scope)
        handler = scope.get("route_handler")
        if getattr(handler, "is_mount", False):  # as Litestar's limiter: mounted and static apps count apart
            key += "::mount"
        if getattr(handler, "is_static", False):
            key += "::static"
        remaining, reset_s = await self.count(key)
        added = [
            *self._fixed,
            (b"ratelimit-remaining", b"%d" % remaining),
            (b"ratelimit-reset", b"%d" % reset_s),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await next_app(scope, receive, send_with_headers)


def rate_limit_middleware(
    config: LimitsConfig, *, store: KeyValueStore | None = None
) -> RateLimitMiddleware | None:
    """The rate limiting middleware for ``config`` (``None`` when unlimited); place it after auth.

    Args:
        config: The limits.
        store: A store shared with the cluster's other API processes (``None``: this process counts, in
            a :class:`api._window_store.WindowStore`).
    """
    if config.rate_limit == 0:
        return None
    return RateLimitMiddleware(config, store if store is not None else WindowStore())

"""Request limits: per-key rate limiting (429 with ``Retry-After``), and where the other limits live.

Rate limiting counts requests in a fixed window per identifier (the API key or JWT subject when auth is
on, the client IP address when it is off). A window is a count and the time it resets, so checking and
counting cost the same whatever the limit (Litestar's :class:`~litestar.middleware.rate_limit.
RateLimitMiddleware` keeps a list of every request's time stamp and re-encodes it on each request, which
grows with the limit). On one host the windows live in this process (:class:`LocalRateLimitMiddleware`);
against a NATS cluster they live in :class:`api._kv_store.KeyValueStore` on JetStream KV and
:class:`SharedRateLimitMiddleware` counts by compare-and-set, so every API process counts in the same
window and two processes never both take the last request of a window.
A refused request gets 429, ``Retry-After`` (seconds until the window resets, added by
:mod:`api.errors`) and the IETF draft ``RateLimit-*`` headers; allowed requests carry them too.

The other limits, for reference (each is enforced where the resource is):

* request body size: ``api.max_body_bytes`` → 413 naming the limit (Litestar ``request_max_body_size``);
* queue depth: each agent's bounded mailbox (``generator.mailbox_size``) and Ryot's queue → 429;
* deadlines: ``orchestrator.default_deadline_s`` or a request's ``timeout_s`` → 504.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import time
from typing import Literal

import anyio
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.middleware.rate_limit import DURATION_VALUES
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from pydantic import BaseModel, ConfigDict, Field

from api._auth import OPEN_PATHS, Principal
from api._kv_store import KeyValueStore

MAX_CAS_ATTEMPTS = 16
"""Compare-and-set attempts of one shared count before the request is refused as contended (429)."""
PRUNE_EVERY = 4096
"""The local windows are swept of expired ones each time this many more callers have a window."""


class LimitsConfig(BaseModel):
    """Per-caller request limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: int = Field(default=0, ge=0)
    """Requests allowed per ``rate_window`` per API key (per client IP when auth is off); 0: unlimited."""
    rate_window: Literal["second", "minute", "hour", "day"] = "minute"
    """The fixed window the rate limit counts in."""


@dataclass(slots=True)
class Window:
    """One caller's fixed window.

    Attributes:
        count: Requests counted in the window.
        reset: Unix time the window ends, whole seconds.
    """

    count: int
    reset: int

    def encode(self) -> bytes:
        """``b"<count> <reset>"``, as stored in the shared store."""
        return f"{self.count} {self.reset}".encode()

    @classmethod
    def decode(cls, raw: bytes | None, now: int, duration_s: int) -> Window:
        """The window stored as ``raw``, or a fresh one if absent, unreadable or over at ``now``."""
        if raw:
            count, _, reset = raw.partition(b" ")
            if count.isdigit() and reset.isdigit() and int(reset) > now:
                return cls(int(count), int(reset))
        return cls(0, now + duration_s)


def caller_identity(scope: Scope) -> str:
    """Who a request counts against: ``api_key:key:<id>`` or ``jwt:<subject>``, else ``ip:<address>``."""
    user = scope.get("user")
    if isinstance(user, Principal):
        return f"{user.via}:{user.subject}"
    client = scope.get("client")
    return f"ip:{client[0] if client else '127.0.0.1'}"


class _RateLimitMiddleware(ASGIMiddleware):
    """The shared part: identity, the check, the ``RateLimit-*`` headers; subclasses count."""

    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = OPEN_PATHS

    def __init__(self, config: LimitsConfig) -> None:
        self.max_requests = config.rate_limit
        self.duration_s = DURATION_VALUES[config.rate_window]
        self._policy = f"{self.max_requests}; w={self.duration_s}"
        self._fixed = (
            (b"ratelimit-policy", self._policy.encode()),
            (b"ratelimit-limit", b"%d" % self.max_requests),
        )

    def headers(self, window: Window) -> dict[str, str]:
        """The IETF draft ``RateLimit-*`` headers of ``window`` (policy, limit, remaining, reset seconds)."""
        return {
            "RateLimit-Policy": self._policy,
            "RateLimit-Limit": str(self.max_requests),
            "RateLimit-Remaining": str(max(self.max_requests - window.count, 0)),
            "RateLimit-Reset": str(window.reset - int(time())),
        }

    def refuse(self, window: Window) -> TooManyRequestsException:
        """The 429 for a full ``window`` (its headers carry the reset, turned into ``Retry-After``)."""
        return TooManyRequestsException(headers=self.headers(window))

    async def count(self, key: str) -> Window:
        """Count one request of ``key`` in its window (the window after counting).

        Raises:
            TooManyRequestsException: The window is full.
        """
        raise NotImplementedError

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Count the request (429 if its caller's window is full), then add the headers to the response."""
        key = caller_identity(scope)
        handler = scope.get("route_handler")
        if getattr(handler, "is_mount", False):  # as Litestar's limiter: mounted and static apps count apart
            key += "::mount"
        if getattr(handler, "is_static", False):
            key += "::static"
        window = await self.count(key)
        remaining = b"%d" % max(self.max_requests - window.count, 0)
        fixed = [*self._fixed, (b"ratelimit-remaining", remaining)]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                reset = b"%d" % (window.reset - int(time()))
                message["headers"] = [*message.get("headers", ()), *fixed, (b"ratelimit-reset", reset)]
            await send(message)

        await next_app(scope, receive, send_with_headers)


class LocalRateLimitMiddleware(_RateLimitMiddleware):
    """Windows kept in this process (one API process, or limits each process enforces on its own).

    Checking and counting happen without an ``await`` in between, so concurrent requests of one caller
    cannot both take the last request of a window.
    """

    def __init__(self, config: LimitsConfig) -> None:
        super().__init__(config)
        self._windows: dict[str, Window] = {}
        self._prune_at = PRUNE_EVERY

    async def count(self, key: str) -> Window:
        """Count one request of ``key`` (see :meth:`_RateLimitMiddleware.count`)."""
        now = int(time())
        window = self._windows.get(key)
        if window is None or window.reset <= now:
            if len(self._windows) >= self._prune_at:
                self._windows = {k: w for k, w in self._windows.items() if w.reset > now}
                self._prune_at = len(self._windows) + PRUNE_EVERY
            window = self._windows[key] = Window(0, now + self.duration_s)
        if window.count >= self.max_requests:
            raise self.refuse(window)
        window.count += 1
        return Window(window.count, window.reset)


class SharedRateLimitMiddleware(_RateLimitMiddleware):
    """Windows kept in a :class:`KeyValueStore` shared by every API process, counted by compare-and-set.

    A read-modify-write across processes would lose counts; here the write is
    :meth:`KeyValueStore.set_if` on the revision read: if another process counted meanwhile, the window is
    read again, checked again (429 if it is now full) and the write retried.

    Args:
        config: The limits.
        store: The shared store.
    """

    def __init__(self, config: LimitsConfig, store: KeyValueStore) -> None:
        super().__init__(config)
        self.store = store
        self._lock = anyio.Lock()  # one read-check-write per process at a time: fewer CAS retries

    async def count(self, key: str) -> Window:
        """Count one request of ``key`` (see :meth:`_RateLimitMiddleware.count`).

        Raises:
            TooManyRequestsException: The window is full, or the count stayed contended for
                :data:`MAX_CAS_ATTEMPTS` attempts.
        """
        async with self._lock:
            raw, revision = await self.store.get_versioned(key)
            for _ in range(MAX_CAS_ATTEMPTS):
                window = Window.decode(raw, int(time()), self.duration_s)
                if window.count >= self.max_requests:
                    raise self.refuse(window)
                counted = Window(window.count + 1, window.reset)
                expires_in = max(window.reset - int(time()), 1)
                if await self.store.set_if(key, counted.encode(), revision=revision, expires_in=expires_in):
                    return counted
                raw, revision = await self.store.get_versioned(key)
            raise self.refuse(Window.decode(raw, int(time()), self.duration_s))


def rate_limit_middleware(
    config: LimitsConfig, *, store: KeyValueStore | None = None
) -> ASGIMiddleware | None:
    """The rate limiting middleware for ``config`` (``None`` when unlimited); place it after auth.

    Args:
        config: The limits.
        store: A store shared with the cluster's other API processes (``None``: this process counts).
    """
    if config.rate_limit == 0:
        return None
    if store is not None:
        return SharedRateLimitMiddleware(config, store)
    return LocalRateLimitMiddleware(config)

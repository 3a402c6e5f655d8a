"""Request limits: per-key rate limiting (429 with ``Retry-After``), and where the other limits live.

Rate limiting is Litestar's :class:`~litestar.middleware.rate_limit.RateLimitMiddleware` (a fixed window
per identifier, kept in the app's ``rate_limit`` store), keyed by the API key or JWT subject when auth is
on and by the client IP address when it is off. On one host the store is Litestar's memory store (per
process); against a NATS cluster it is :class:`api._kv_store.KeyValueStore` on JetStream KV and the
middleware is :class:`SharedRateLimitMiddleware`, whose check-and-count is one compare-and-set, so every
API process counts in the same window and two processes never both take the last request of a window.
A refused request gets 429, ``Retry-After`` (seconds until the window resets, added by
:mod:`api.errors`) and the IETF draft ``RateLimit-*`` headers; allowed requests carry them too.

The other limits, for reference (each is enforced where the resource is):

* request body size: ``api.max_body_bytes`` → 413 naming the limit (Litestar ``request_max_body_size``);
* queue depth: each agent's bounded mailbox (``generator.mailbox_size``) and Ryot's queue → 429;
* deadlines: ``orchestrator.default_deadline_s`` or a request's ``timeout_s`` → 504.
"""

from __future__ import annotations

from time import time
from typing import Any, Literal

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import (
    DURATION_VALUES,
    CacheObject,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.serialization import decode_json, encode_json
from litestar.stores.base import Store
from pydantic import BaseModel, ConfigDict, Field

from api._auth import OPEN_PATHS, Principal
from api._kv_store import KeyValueStore

MAX_CAS_ATTEMPTS = 16
"""Compare-and-set attempts of one shared count before the request is refused as contended (429)."""


class LimitsConfig(BaseModel):
    """Per-caller request limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: int = Field(default=0, ge=0)
    """Requests allowed per ``rate_window`` per API key (per client IP when auth is off); 0: unlimited."""
    rate_window: Literal["second", "minute", "hour", "day"] = "minute"
    """The fixed window the rate limit counts in."""


def caller_identity(request: Request[Any, Any, Any]) -> str:
    """Who a request counts against: ``key:<id>`` / the JWT subject, else ``ip:<client address>``."""
    user = request.scope.get("user")
    if isinstance(user, Principal):
        return f"{user.via}:{user.subject}"
    return f"ip:{get_remote_address(request)}"


class SharedRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's rate limiting with the count kept by compare-and-set in a :class:`KeyValueStore`.

    Litestar reads the window, checks it and writes it back under a per-process lock; across processes
    that read-modify-write would lose counts. Here the write is :meth:`KeyValueStore.set_if` on the
    revision read: if another process counted meanwhile, the window is read again, checked again (429
    if it is now full) and the write retried. With another store it behaves as Litestar's.
    """

    _revisions: dict[str, int]

    def _window(self, raw: bytes | None) -> CacheObject:
        now = int(time())
        if raw:
            cached = CacheObject(**decode_json(value=raw))
            if cached.reset > now:
                return cached
        return CacheObject(history=[], reset=now + DURATION_VALUES[self.unit])

    async def retrieve_cached_history(self, key: str, store: Store) -> CacheObject:
        """The caller's current window (its KV revision remembered for the write that follows)."""
        if not isinstance(store, KeyValueStore):
            return await super().retrieve_cached_history(key, store)
        raw, revision = await store.get_versioned(key)
        if not hasattr(self, "_revisions"):
            self._revisions = {}
        self._revisions[key] = revision  # read and write happen under the middleware's lock
        return self._window(raw)

    async def set_cached_history(self, key: str, cache_object: CacheObject, store: Store) -> None:
        """Count this request in the window, by compare-and-set on the revision read.

        Raises:
            TooManyRequestsException: Another process filled the window meanwhile, or the count stayed
                contended for :data:`MAX_CAS_ATTEMPTS` attempts.
        """
        if not isinstance(store, KeyValueStore):
            await super().set_cached_history(key, cache_object, store)
            return
        revision = self._revisions.pop(key, 0)
        for _ in range(MAX_CAS_ATTEMPTS):
            history = [int(time()), *cache_object.history]
            counted = CacheObject(history=history, reset=cache_object.reset)
            expires_in = max(cache_object.reset - int(time()), 1)
            if await store.set_if(key, encode_json(counted), revision=revision, expires_in=expires_in):
                cache_object.history = history
                return
            raw, revision = await store.get_versioned(key)
            fresh = self._window(raw)
            cache_object.history, cache_object.reset = fresh.history, fresh.reset
            if len(cache_object.history) >= self.max_requests:
                break
        raise TooManyRequestsException(
            headers=self.create_response_headers(cache_object=cache_object)
            if self.config.set_rate_limit_headers
            else None
        )


def rate_limit_middleware(config: LimitsConfig, *, shared: bool = False) -> DefineMiddleware | None:
    """The rate limiting middleware for ``config`` (``None`` when unlimited); place it after auth.

    Args:
        config: The limits.
        shared: The app's ``rate_limit`` store is a :class:`KeyValueStore` shared with other API
            processes (counts by compare-and-set).
    """
    if config.rate_limit == 0:
        return None
    return RateLimitConfig(
        rate_limit=(config.rate_window, config.rate_limit),
        exclude=list(OPEN_PATHS),
        identifier_for_request=caller_identity,
        middleware_class=SharedRateLimitMiddleware if shared else RateLimitMiddleware,
    ).middleware

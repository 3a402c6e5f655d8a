"""Request limits: per-key rate limiting (429 with ``Retry-After``), and where the other limits live.

Rate limiting is Litestar's :class:`~litestar.middleware.rate_limit.RateLimitMiddleware` (a fixed window
per identifier, kept in the app's ``rate_limit`` memory store, so per process), keyed by the API key or
JWT subject when auth is on and by the client IP address when it is off. A refused request gets 429,
``Retry-After`` (seconds until the window resets, added by :mod:`api.errors`) and the IETF draft
``RateLimit-*`` headers; allowed requests carry the ``RateLimit-*`` headers too.

The other limits, for reference (each is enforced where the resource is):

* request body size: ``api.max_body_bytes`` → 413 naming the limit (Litestar ``request_max_body_size``);
* queue depth: each agent's bounded mailbox (``generator.mailbox_size``) and Ryot's queue → 429;
* deadlines: ``orchestrator.default_deadline_s`` or a request's ``timeout_s`` → 504.
"""

from __future__ import annotations

from typing import Any, Literal

from litestar import Request
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address
from pydantic import BaseModel, ConfigDict, Field

from api._auth import OPEN_PATHS, Principal


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


def rate_limit_middleware(config: LimitsConfig) -> DefineMiddleware | None:
    """The rate limiting middleware for ``config`` (``None`` when unlimited); place it after auth."""
    if config.rate_limit == 0:
        return None
    return RateLimitConfig(
        rate_limit=(config.rate_window, config.rate_limit),
        exclude=list(OPEN_PATHS),
        identifier_for_request=caller_identity,
    ).middleware

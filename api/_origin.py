"""Hosts and origins: which ``Host`` a request may name and which web pages may call the API.

A web page on another site can reach a service on ``localhost`` in two ways, and this module closes both:

* **DNS rebinding**: the page's own name is made to resolve to 127.0.0.1, so the browser sends
  ``Host: evil.test`` to the local port. Every HTTP and WebSocket request must name an allowed host
  (``api.allowed_hosts``; by default the loopback names and the bound address), else it is answered 400
  (a WebSocket handshake: closed with 403) before any handler runs. The host list is Litestar's
  :class:`~litestar.config.allowed_hosts.AllowedHostsConfig` (``*`` allows any host, ``*.example.com`` any
  subdomain); unlike Litestar's own middleware the port is not part of the comparison, so a port
  chosen at bind time needs no entry of its own.
* **Cross-site requests** with the right ``Host`` (a form posting ``text/plain`` to
  ``http://localhost:8420``): a request that carries an ``Origin`` header (browsers send it on every
  cross-origin request and on every WebSocket handshake) must come from the same host or from an origin
  in ``api.cors_origins``, unless it is a plain read (``GET``/``HEAD``, which CORS then keeps from
  the page). Non-browser clients send no ``Origin`` and are not affected.

CORS itself (``api.cors_origins``, off by default) is Litestar's :class:`~litestar.config.cors.CORSConfig`:
preflight ``OPTIONS`` requests from a listed origin are answered 204 with the allowed methods and
headers, and responses carry ``Access-Control-Allow-Origin`` for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from api.generate.schemas import ErrorBody, ErrorDetail

__all__ = ("LOOPBACK_HOSTS", "HostOriginGuard", "cors_config", "default_allowed_hosts", "host_name")

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Names a loopback-bound API answers to by default."""
_WILDCARD_BINDS = ("0.0.0.0", "::", "")  # noqa: S104 - names of wildcard binds, compared, not bound
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def default_allowed_hosts(bind_host: str) -> tuple[str, ...]:
    """The loopback names and ``bind_host`` (a wildcard bind adds nothing: list the public names)."""
    extra = () if bind_host in _WILDCARD_BINDS or bind_host in LOOPBACK_HOSTS else (bind_host,)
    return (*LOOPBACK_HOSTS, *extra)


def host_name(host_header: str) -> str:
    """The host of a ``Host`` header without its port (``[::1]:8420`` → ``::1``), lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host  # a bare name, or an IPv6 address without brackets


def _hosts_regex(config: AllowedHostsConfig) -> re.Pattern[str] | None:
    """Litestar's host patterns (``*.`` prefixes for subdomains); ``None`` when ``*`` allows any."""
    if "*" in config.allowed_hosts:
        return None
    patterns = {
        rf".*\.{re.escape(h[2:].lower())}" if h.startswith("*.") else re.escape(h.lower())
        for h in config.allowed_hosts
    }
    return re.compile("|".join(sorted(patterns)))


class HostOriginGuard(ASGIMiddleware):
    """Refuses requests naming a host not in ``hosts`` and unsafe requests from foreign origins.

    Args:
        hosts: The allowed hosts.
        cors_origins: Origins (``scheme://host[:port]``) allowed to call from a browser; ``*`` any.
    """

    def __init__(self, hosts: AllowedHostsConfig, cors_origins: Sequence[str] = ()) -> None:
        self._hosts = _hosts_regex(hosts)
        self._origins = frozenset(o.rstrip("/").lower() for o in cors_origins)

    def host_allowed(self, host: str) -> bool:
        """Whether a ``Host`` header names an allowed host."""
        name = host_name(host)
        return bool(name) and (self._hosts is None or self._hosts.fullmatch(name) is not None)

    def origin_allowed(self, origin: str, host: str) -> bool:
        """Whether a request from ``origin`` (the ``Origin`` header) to ``host`` may act."""
        origin = origin.rstrip("/").lower()
        if "*" in self._origins or origin in self._origins:
            return True
        netloc = urlsplit(origin).netloc
        return bool(netloc) and netloc == host.strip().lower()  # same origin

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Answer 400/403 (or close a WebSocket handshake) instead of calling ``next_app``."""
        if scope["type"] not in (ScopeType.HTTP, ScopeType.WEBSOCKET):
            await next_app(scope, receive, send)
            return
        host: str | None = None
        origin: str | None = None
        for name, value in scope["headers"]:  # raw names are lower case (ASGI); the first one counts
            if name == b"host" and host is None:
                host = value.decode("latin-1")
            elif name == b"origin" and origin is None:
                origin = value.decode("latin-1")
        host = host or ""
        if not self.host_allowed(host):
            await _refuse(scope, receive, send, 400, f"the Host {host!r} is not an allowed host of this API")
            return
        unsafe = scope["type"] == ScopeType.WEBSOCKET or scope.get("method", "GET") not in _SAFE_METHODS
        if origin is not None and unsafe and not self.origin_allowed(origin, host):
            await _refuse(scope, receive, send, 403, f"requests from the origin {origin!r} are not allowed")
            return
        await next_app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    if scope["type"] == ScopeType.WEBSOCKET:
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    code = "bad_request" if status == 400 else "forbidden"
    state: dict[str, Any] = scope.get("state") or {}
    body = ErrorBody(
        error=ErrorDetail(code=code, message=message, field="Host" if status == 400 else "Origin"),
        request_id=state.get("request_id"),
    ).model_dump_json()
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body.encode(), "more_body": False}
    await send(end)


def cors_config(origins: Sequence[str]) -> CORSConfig | None:
    """Litestar's CORS for ``origins`` (``None``, CORS off, when there are none)."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[
            "authorization",
            "content-type",
            "x-request-id",
            "x-neurectomy-tenant",
            "idempotency-key",
        ],
        allow_credentials=False,
        expose_headers=["x-request-id", "retry-after", "traceparent"],
        max_age=600,
    )

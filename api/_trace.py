"""Trace ids: taken from a W3C ``traceparent`` header (or made), bound to every log line, echoed back.

The trace id is the 32-hex-digit ``trace-id`` of W3C Trace Context (https://www.w3.org/TR/trace-context/,
``traceparent: 00-<trace-id>-<parent-id>-<flags>``); without a valid header a random one is made. It is
bound into structlog's context for the request (so every API log line carries ``trace_id``), passed to
agents in the NATS header ``Neurectomy-Trace-Id`` through :class:`~orchestrator.CallContext` (agents bind
it to their log lines too), and returned in the ``X-Trace-Id`` response header and in a ``traceparent``
response header whose parent id is this server's span.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

import structlog
from litestar import Request
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

TRACEPARENT_HEADER = "traceparent"
TRACE_ID_HEADER = "x-trace-id"
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(value: str) -> str | None:
    """The trace id of a ``traceparent`` header value, or ``None`` if it is not a valid one.

    Invalid per the spec: version ``ff``, an all-zero trace id or parent id, anything malformed.
    """
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    version, trace_id, parent_id, _flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id


class TraceMiddleware(ASGIMiddleware):
    """Takes the trace id from ``traceparent`` (or makes one) and binds it to the request's log lines."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Bind the trace id around the rest of the app."""
        headers = dict(scope.get("headers") or [])
        trace_id = parse_traceparent(headers.get(TRACEPARENT_HEADER.encode(), b"").decode("latin-1"))
        state = scope.setdefault("state", {})
        state["trace_id"] = trace_id or uuid.uuid4().hex
        state["span_id"] = secrets.token_hex(8)
        with structlog.contextvars.bound_contextvars(trace_id=state["trace_id"]):
            await next_app(scope, receive, send)


def trace_id_of(request: Request[Any, Any, Any]) -> str:
    """The request's trace id (empty if the trace middleware did not run)."""
    return str(request.scope.get("state", {}).get("trace_id") or "")


async def add_trace_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: ``X-Trace-Id``, ``traceparent`` (and a missing ``X-Request-Id``) on responses.

    It runs for every response, including errors raised by middleware before the route ran.
    """
    if message["type"] != "http.response.start":
        return
    state: dict[str, Any] = scope.get("state") or {}
    trace_id = state.get("trace_id")
    if not trace_id:
        return
    headers = list(message.get("headers") or [])
    names = {bytes(k).lower() for k, _ in headers}
    headers.append((TRACE_ID_HEADER.encode(), str(trace_id).encode()))
    headers.append((TRACEPARENT_HEADER.encode(), f"00-{trace_id}-{state.get('span_id')}-01".encode()))
    request_id = state.get("request_id")
    if request_id and b"x-request-id" not in names:
        headers.append((b"x-request-id", str(request_id).encode()))
    message["headers"] = headers

"""Trace context of HTTP requests: an OpenTelemetry server span per request, its ids on logs and responses.

W3C Trace Context (https://www.w3.org/TR/trace-context/): a valid incoming ``traceparent`` header makes the
request's span a child of the caller's; otherwise a new trace starts. The span (``GET /v1/tasks``, named
after the route template) is current while the route runs, so every span below it (selection, plan,
NATS hops, the agents' handlers in other processes, see :mod:`agents.tracing`) joins the same trace. Its
trace id is bound into structlog's context (every API log line carries ``trace_id``), passed to agents in
``Neurectomy-Trace-Id`` through :class:`~orchestrator.CallContext`, and returned in ``X-Trace-Id`` and in a
``traceparent`` response header whose parent id is the request's span.

Without a configured tracer provider (:func:`agents.tracing.configure`; in-process tests) the span does
not record, and the ids are made here instead, as before. The app's request context middleware
(:class:`api.app.RequestContextMiddleware`) calls :func:`start_request_span`, :func:`attach_span` and
:func:`end_request_span` around each request.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import Scope
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode

from agents.tracing import (
    ENTRY_ATTRIBUTE,
    TENANT_ATTRIBUTE,
    SpanKind,
    parse_traceparent,
    remote_context,
    tracer,
)

TRACEPARENT_HEADER = "traceparent"
TRACE_ID_HEADER = "x-trace-id"
_tracer = tracer("neurectomy.api")
UNTRACED_PREFIXES = ("/metrics", "/dashboard", "/v1/dashboard", "/v1/traces")
"""Paths without a span of their own: monitoring endpoints and the dashboard's assets and feeds."""

__all__ = (
    "TRACEPARENT_HEADER",
    "TRACE_ID_HEADER",
    "attach_span",
    "end_request_span",
    "parse_traceparent",
    "start_request_span",
    "trace_headers",
    "trace_id_of",
)


def start_request_span(scope: Scope, incoming: str) -> Span | None:
    """Start the request's server span (child of a valid ``traceparent`` ``incoming``) and set its ids.

    Sets ``scope["state"]["trace_id"]`` (32 hex) and ``["span_id"]`` (16 hex): the span's when it has a
    valid context, else made here (the incoming trace id kept). Returns ``None`` for the untraced paths
    (:data:`UNTRACED_PREFIXES` and ``/``), which get no span and no ids.
    """
    path: str = scope["path"]
    if path == "/" or path.startswith(UNTRACED_PREFIXES):
        return None  # the dashboard watching itself would fill the buffer
    method = str(scope.get("method", "WS")) if scope["type"] == ScopeType.HTTP else "WS"
    span = _tracer.start_span(
        f"{method} {path}",
        context=remote_context(incoming),
        kind=SpanKind.SERVER,
        attributes={ENTRY_ATTRIBUTE: True, "http.request.method": method, "url.path": path},
    )
    state = scope.setdefault("state", {})
    ctx = span.get_span_context()
    if ctx.is_valid:
        state["trace_id"], state["span_id"] = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
    else:
        parsed = parse_traceparent(incoming) if incoming else None
        state["trace_id"] = f"{parsed[0]:032x}" if parsed else uuid.uuid4().hex
        state["span_id"] = secrets.token_hex(8)
    return span


def attach_span(span: Span) -> object:
    """Make ``span`` current (for the spans started below it); pass the result to :func:`end_request_span`."""
    return otel_context.attach(trace.set_span_in_context(span))


def end_request_span(span: Span, token: object, scope: Scope, status: int, tenant_header: str | None) -> None:
    """Detach ``span`` (``token`` from :func:`attach_span`) and end it, named after the route template.

    A recording span gets the response status (``ERROR`` from 500 on) and the tenant the request ran
    for: the credential's when authenticated, else ``tenant_header`` (``default`` when absent).
    """
    otel_context.detach(token)  # type: ignore[arg-type]
    if span.is_recording():
        method = str(scope.get("method", "WS")) if scope["type"] == ScopeType.HTTP else "WS"
        span.update_name(f"{method} {scope.get('path_template') or scope['path']}")
        span.set_attribute("http.response.status_code", status)
        span.set_attribute(TENANT_ATTRIBUTE, _tenant(scope, tenant_header))
        if status >= 500:
            span.set_status(StatusCode.ERROR)
    span.end()


def _tenant(scope: Scope, header: str | None) -> str:
    """The tenant the request ran for: the credential's when authenticated, else the tenant header's."""
    user = scope.get("user")
    tenant = getattr(user, "tenant", None)
    if isinstance(tenant, str):
        return tenant
    return (header or "default")[:64]


def trace_id_of(request: Request[Any, Any, Any]) -> str:
    """The request's trace id (empty if the trace middleware did not run)."""
    return str(request.scope.get("state", {}).get("trace_id") or "")


def trace_headers(state: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The ``X-Trace-Id`` and ``traceparent`` response headers of a request's ``scope["state"]``.

    None for an untraced request (no ``trace_id`` in its state).

    The request context middleware adds them to the response start of every response it sees, including
    errors raised by inner middleware (it runs those inside an exception handler when there are any).
    """
    trace_id = state.get("trace_id")
    if not trace_id:
        return []
    return [
        (TRACE_ID_HEADER.encode(), str(trace_id).encode()),
        (TRACEPARENT_HEADER.encode(), f"00-{trace_id}-{state.get('span_id')}-01".encode()),
    ]

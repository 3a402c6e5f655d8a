"""W3C Trace Context across hops, and the span helpers every component uses.

Part of :mod:`agents.tracing` (which re-exports the public names). Context crosses NATS hops and HTTP
requests in the ``traceparent`` header (https://www.w3.org/TR/trace-context/,
``00-<trace-id>-<parent-id>-<flags>``): :func:`traceparent` formats it for a span,
:func:`remote_context` turns a received header back into a parent context. :func:`start_child` skips
the SDK for untraced work; :func:`engine_spans` lays out a finished generation's engine phases.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
)
from opentelemetry.util.types import Attributes

TRACEPARENT: Final = "traceparent"
"""The W3C Trace Context header, on HTTP requests and NATS messages alike."""
_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """``(trace id, parent span id, flags)`` of a ``traceparent`` value, or ``None`` if it is invalid.

    Invalid per the spec: version ``ff``, an all-zero trace id or parent id, anything malformed.
    """
    match = _TRACEPARENT_RE.match(value.strip().lower())
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return int(trace_id, 16), int(parent_id, 16), int(flags, 16)


def traceparent(span: Span) -> str:
    """The ``traceparent`` value naming ``span`` as the parent (empty if the span has no valid context)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def remote_context(value: str | None) -> otel_context.Context | None:
    """The parent context a received ``traceparent`` names (``None``: absent or invalid, a new trace)."""
    parsed = parse_traceparent(value) if value else None
    if parsed is None:
        return None
    trace_id, span_id, flags = parsed
    parent = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))
    return trace.set_span_in_context(NonRecordingSpan(parent))


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits (empty without a valid current span)."""
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else ""


def _context_reader() -> Callable[[], otel_context.Context]:
    """``otel_context.get_current``, or the context variable's own ``get`` behind it (the default runtime).

    OpenTelemetry's default runtime context keeps the current context in one ``ContextVar``
    (``ContextVarsRuntimeContext._current_context``): reading it directly returns the same object without
    the API's two Python calls (every routed call asks). Any other runtime context is asked through the API.
    """
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    current = getattr(runtime, "_current_context", None)
    if type(runtime) is ContextVarsRuntimeContext and isinstance(current, ContextVar):
        return current.get
    return otel_context.get_current


_current_context = _context_reader()


def start_child(
    tracer_: trace.Tracer,
    name: str,
    *,
    parent: otel_context.Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes = None,
) -> Span:
    """A span under ``parent`` (default: the current span), or a no-op span if there is no sampled parent.

    The check comes first so that untraced work (internal calls, benchmarks) pays well under a
    microsecond instead of the SDK's few microseconds for a span it would drop anyway.
    """
    if parent is None:
        parent = _current_context()
        if not parent:  # an empty context holds no span (most untraced work): no look-ups
            return INVALID_SPAN
    ctx = trace.get_current_span(parent).get_span_context()
    if not (ctx.is_valid and ctx.trace_flags.sampled):
        return INVALID_SPAN
    return tracer_.start_span(name, context=parent, kind=kind, attributes=attributes)


def tracer(name: str) -> trace.Tracer:
    """The tracer of a component (``neurectomy.api``, ``neurectomy.orchestrator``, ``neurectomy.agents``)."""
    return trace.get_tracer(name)


def engine_spans(
    model: str, *, queue_s: float, prefill_s: float, decode_s: float, decode_tokens: int
) -> None:
    """Record a finished generation's engine phases as children of the current span.

    Ryot reports its phases as durations when the generation ends; the spans are laid out backwards
    from now: ``ryot.queue`` (waiting for a slot), ``ryot.prefill`` (until the first token: TTFT),
    ``ryot.decode`` (the remaining tokens).
    """
    parent = trace.get_current_span()
    if not parent.is_recording():
        return
    end = time.time_ns()
    decode_start = end - int(decode_s * 1e9)
    prefill_start = decode_start - int(prefill_s * 1e9)
    queue_start = prefill_start - int(queue_s * 1e9)
    engine = tracer("neurectomy.ryot")
    attrs = {"gen_ai.request.model": model}
    for name, start, stop, extra in (
        ("ryot.queue", queue_start, prefill_start, {}),
        ("ryot.prefill", prefill_start, decode_start, {}),
        ("ryot.decode", decode_start, end, {"neurectomy.decode_tokens": decode_tokens}),
    ):
        engine.start_span(name, start_time=start, attributes={**attrs, **extra}).end(end_time=stop)

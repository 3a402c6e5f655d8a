"""Tracing with OpenTelemetry: spans in every process, W3C ``traceparent`` across NATS, a span buffer.

Each process (``neurectomy serve``, ``neurectomy agent --team …``) calls :func:`configure` once with its
service name; that installs an OpenTelemetry SDK ``TracerProvider`` whose spans go to

* an in-memory :class:`SpanBuffer` of this process (the newest ``buffer_spans`` spans; read by the API's
  ``/v1/traces`` and the dashboard's waterfall);
* an OTLP/HTTP exporter (batched) when ``otlp_endpoint`` is set (or the standard
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` environment variables);
* in agent-only processes, NATS: :func:`ship_spans` publishes finished spans in batches on
  :data:`SPANS_SUBJECT`, and the API process adds them to its buffer with :func:`collect_spans`, so one
  request's spans from every process can be seen in one place.

Context crosses NATS hops in the W3C Trace Context header ``traceparent``
(https://www.w3.org/TR/trace-context/, ``00-<trace-id>-<parent-id>-<flags>``): :func:`traceparent`
formats it for a span, :func:`remote_context` turns a received header back into a parent context.

Without :func:`configure` (library use, unit tests) the OpenTelemetry API hands out non-recording spans:
nothing is recorded and the cost is a few hundred nanoseconds per span.
"""

from __future__ import annotations

import collections
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import Attributes
from pydantic import BaseModel, ConfigDict, Field

from agents.messaging import Bus, Message

__all__ = (
    "DEFAULT_BUFFER_RATIO",
    "ENTRY_ATTRIBUTE",
    "SPANS_SUBJECT",
    "TENANT_ATTRIBUTE",
    "TRACEPARENT",
    "SpanBuffer",
    "SpanKind",
    "TracingConfig",
    "collect_spans",
    "configure",
    "current_trace_id",
    "engine_spans",
    "parse_traceparent",
    "remote_context",
    "ship_spans",
    "span_buffer",
    "start_child",
    "traceparent",
    "tracer",
)

log = structlog.get_logger("neurectomy.tracing")

SPANS_SUBJECT = "neurectomy.telemetry.spans"
"""Agent-only processes publish their finished spans here (JSON list of :meth:`SpanBuffer` dicts)."""
DEFAULT_BUFFER_RATIO = 0.01
"""Share of requests traced when nothing exports the spans (the in-memory buffer only)."""
TRACEPARENT = "traceparent"
"""The W3C Trace Context header, on HTTP requests and NATS messages alike."""
_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class TracingConfig(BaseModel):
    """Tracing settings of one process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Record spans at all (off: every span is a no-op)."""
    sample_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    """Share of requests entering through the API whose trace is recorded. ``None`` (default): all of
    them when an OTLP exporter is configured, :data:`DEFAULT_BUFFER_RATIO` otherwise (recording costs
    ~20 µs of CPU per span on this kind of machine, so an unexported trace of every hop would cost more
    than it shows). A request with a ``traceparent`` header always follows its sampled flag: the
    dashboard sends a sampled one with the operator's own actions, and so can any client that wants a
    trace (``00-<32 hex>-<16 hex>-01``). Spans without a parent that are not an entry (internal calls)
    are never recorded."""
    buffer_spans: int = Field(default=20_000, ge=100)
    """Spans kept in memory per process for ``/v1/traces`` (oldest dropped first)."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP traces endpoint (``http://collector:4318/v1/traces``); ``None``: the standard
    ``OTEL_EXPORTER_OTLP_*`` environment variables, or no export."""
    ship_interval_s: float = Field(default=0.25, gt=0.0)
    """How often an agent-only process publishes its finished spans on :data:`SPANS_SUBJECT`, seconds."""


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
        parent = otel_context.get_current()
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


TENANT_ATTRIBUTE = "neurectomy.tenant"
"""Attribute naming the tenant a trace's entry span (or a task's span) ran for."""
ENTRY_ATTRIBUTE = "neurectomy.entry"
"""Attribute of a span where a request enters the system (the API's request span); only such a span may
start a recorded trace."""


class _EntrySampler(Sampler):
    """New traces start only at an entry span (sampled by ``ratio``); every other span follows its parent.

    So internal calls without a parent (metrics scrapes, discovery, a benchmark calling the orchestrator
    directly) are never recorded and cost only a non-recording span.
    """

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)
        self._parent_based = ParentBased(ALWAYS_OFF)

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """The parent's decision, or for a root: ``ratio`` if it is an entry span, else drop."""
        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid and attributes and attributes.get(ENTRY_ATTRIBUTE):
            return self._ratio.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        return self._parent_based.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        """Name shown by the SDK."""
        return f"EntrySampler({self._ratio.rate})"


def _span_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.context
    parent = span.parent
    attrs = span.resource.attributes
    return {
        "trace_id": f"{ctx.trace_id:032x}" if ctx else "",
        "span_id": f"{ctx.span_id:016x}" if ctx else "",
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "name": span.name,
        "kind": span.kind.name.lower(),
        "start_ns": span.start_time or 0,
        "end_ns": span.end_time or 0,
        "service": str(attrs.get("service.name", "")),
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else "",
        "instance": str(attrs.get("service.instance.id", "")),
        "status": span.status.status_code.name.lower(),
        "attributes": {
            k: v if isinstance(v, str | int | float | bool) else str(v)
            for k, v in (span.attributes or {}).items()
        },
    }


class SpanBuffer:
    """The newest spans seen by this process (its own and, in the API process, those shipped to it).

    Own spans are kept as OpenTelemetry objects and turned into dicts only when read, so recording one
    costs a deque append. Thread-safe (spans end in worker threads too).

    Args:
        max_spans: Spans kept; the oldest are dropped first.
    """

    def __init__(self, max_spans: int = 20_000) -> None:
        self._spans: collections.deque[ReadableSpan | dict[str, Any]] = collections.deque(maxlen=max_spans)
        self._outbox: collections.deque[ReadableSpan] | None = None
        self._lock = threading.Lock()

    def add(self, span: ReadableSpan | dict[str, Any]) -> None:
        """Keep a finished span (an SDK span, or a dict shipped from another process)."""
        with self._lock:
            self._spans.append(span)
            if self._outbox is not None and isinstance(span, ReadableSpan):
                self._outbox.append(span)

    def add_many(self, spans: Iterable[dict[str, Any]]) -> None:
        """Keep spans shipped from another process."""
        with self._lock:
            self._spans.extend(spans)

    def _ship(self, max_spans: int) -> None:
        self._outbox = collections.deque(maxlen=max_spans)

    def _take_outbox(self) -> list[ReadableSpan]:
        with self._lock:
            if not self._outbox:
                return []
            taken = list(self._outbox)
            self._outbox.clear()
        return taken

    def spans(self) -> list[dict[str, Any]]:
        """Every kept span as a dict.

        Keys: ``trace_id``, ``span_id``, ``parent_id``, ``name``, ``kind``, ``start_ns`` and ``end_ns``
        (Unix epoch nanoseconds), ``service`` (the process's ``service.name``), ``scope`` (the component:
        ``neurectomy.api``, ``neurectomy.orchestrator``, ``neurectomy.agents``, ``neurectomy.ryot``),
        ``instance`` (host:pid), ``status``, ``attributes``.
        """
        with self._lock:
            snapshot = list(self._spans)
        return [s if isinstance(s, dict) else _span_dict(s) for s in snapshot]

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The kept spans of one trace, by start time (empty if none are kept)."""
        wanted = trace_id.lower()
        found = [s for s in self.spans() if s["trace_id"] == wanted]
        return sorted(found, key=lambda s: s["start_ns"])

    def traces(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` traces, newest first.

        Keys: ``trace_id``, ``root`` (name of the first span without a kept parent), ``start_ns``,
        ``duration_s``, ``spans``, ``services`` (sorted), ``error``.
        """
        groups: dict[str, list[dict[str, Any]]] = {}
        for span in self.spans():
            groups.setdefault(span["trace_id"], []).append(span)
        rows = []
        for trace_id, spans in groups.items():
            ids = {s["span_id"] for s in spans}
            roots = sorted((s for s in spans if s["parent_id"] not in ids), key=lambda s: s["start_ns"])
            start = min(s["start_ns"] for s in spans)
            end = max(s["end_ns"] for s in spans)
            rows.append(
                {
                    "trace_id": trace_id,
                    "root": roots[0]["name"] if roots else "",
                    "start_ns": start,
                    "duration_s": (end - start) / 1e9,
                    "spans": len(spans),
                    "services": sorted({s["service"] for s in spans}),
                    "error": any(s["status"] == "error" for s in spans),
                }
            )
        rows.sort(key=lambda r: r["start_ns"], reverse=True)
        return rows[:limit]


class _BufferProcessor(SpanProcessor):
    def __init__(self, buffer: SpanBuffer) -> None:
        self.buffer = buffer

    def on_end(self, span: ReadableSpan) -> None:
        self.buffer.add(span)


_buffer = SpanBuffer()
_configured: str | None = None


def span_buffer() -> SpanBuffer:
    """This process's span buffer (empty until :func:`configure` ran)."""
    return _buffer


def configure(service: str, config: TracingConfig | None = None, *, ship: bool = False) -> SpanBuffer:
    """Install the tracer provider of this process (once; later calls return the same buffer).

    Args:
        service: ``service.name`` of the spans (``neurectomy-api``, ``neurectomy-agents-analysis``).
        config: Tracing settings (defaults if ``None``).
        ship: Keep finished spans for :func:`ship_spans` (agent-only processes).

    Returns:
        The process's span buffer.
    """
    global _buffer, _configured
    config = config or TracingConfig()
    if _configured is not None or not config.enabled:
        return _buffer
    _buffer = SpanBuffer(config.buffer_spans)
    if ship:
        _buffer._ship(config.buffer_spans)
    resource = Resource.create(
        {"service.name": service, "service.instance.id": f"{socket.gethostname()}:{os.getpid()}"}
    )
    endpoint = config.otlp_endpoint
    exported = bool(
        endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    ratio = config.sample_ratio
    if ratio is None:
        ratio = 1.0 if exported else DEFAULT_BUFFER_RATIO
    provider = TracerProvider(resource=resource, sampler=_EntrySampler(ratio))
    provider.add_span_processor(_BufferProcessor(_buffer))
    if exported:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        log.info("tracing: OTLP export on", endpoint=endpoint or "from OTEL_EXPORTER_OTLP_*")
    trace.set_tracer_provider(provider)
    _configured = service
    return _buffer


async def ship_spans(bus: Bus, *, interval_s: float = 0.25, batch: int = 500) -> None:
    """Publish this process's finished spans on :data:`SPANS_SUBJECT` every ``interval_s`` seconds.

    Runs until cancelled (then publishes what is left). Messages stay under the server's max payload:
    at most ``batch`` spans each.
    """
    try:
        while True:
            await anyio.sleep(interval_s)
            await _publish_spans(bus, batch)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
            await _publish_spans(bus, batch)


async def _publish_spans(bus: Bus, batch: int) -> None:
    spans = _buffer._take_outbox()
    if not spans or not bus.is_connected:
        return
    for start in range(0, len(spans), batch):
        body = json.dumps([_span_dict(s) for s in spans[start : start + batch]]).encode()
        if len(body) > bus.max_payload:
            log.warning("tracing: span batch larger than the NATS max payload; dropped", spans=batch)
            continue
        await bus.publish(SPANS_SUBJECT, body)


async def collect_spans(bus: Bus, buffer: SpanBuffer | None = None) -> None:
    """Add spans published on :data:`SPANS_SUBJECT` to ``buffer`` (this process's) until cancelled."""
    target = buffer or _buffer

    async def on_spans(msg: Message) -> None:
        try:
            spans = json.loads(msg.data)
        except ValueError:
            return
        if isinstance(spans, list):
            target.add_many(_valid(spans))

    async with bus.subscription(SPANS_SUBJECT, on_spans):
        await anyio.sleep_forever()


def _valid(spans: Sequence[Any]) -> list[dict[str, Any]]:
    keys = ("trace_id", "span_id", "name", "start_ns", "end_ns")
    return [s for s in spans if isinstance(s, dict) and all(k in s for k in keys)]

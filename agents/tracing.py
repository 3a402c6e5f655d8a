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

Parts: the trace context and span helpers (:mod:`agents._trace_context`) and the span buffer
(:mod:`agents._span_buffer`); this module configures the provider and its sampler and ships spans.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from typing import Any

import anyio
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes
from pydantic import BaseModel, ConfigDict, Field

from agents._span_buffer import SpanBuffer, _BufferProcessor, _span_dict
from agents._trace_context import (
    TRACEPARENT,
    current_trace_id,
    engine_spans,
    parse_traceparent,
    remote_context,
    start_child,
    traceparent,
    tracer,
)
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

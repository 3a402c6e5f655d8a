"""The in-memory span buffer of a process: the newest spans, read by ``/v1/traces`` and the dashboard.

Part of :mod:`agents.tracing` (which re-exports :class:`SpanBuffer`). The buffer holds this process's
own finished spans (through :class:`_BufferProcessor`, a span processor of its tracer provider) and, in
the API process, the spans other processes shipped to it; it can also keep an outbox of its own spans
for :func:`agents.tracing.ship_spans`.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor


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

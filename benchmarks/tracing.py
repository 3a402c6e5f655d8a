"""The CPU cost of tracing per NATS hop, in one process, without NATS (not a test).

A hop is instrumented on both sides: the caller starts a client span and formats ``traceparent``
(``orchestrator._dispatch.call_agent``), the agent parses it and runs its handler inside a server span
(``agents.actor``). This script times exactly those calls, three ways, and prints µs per hop:

* **baseline**: nothing (the loop's own cost, subtracted from the others);
* **untraced**: the instrumentation when the request is not sampled (no sampled parent: what every hop
  costs by default without an exporter, 99 % of requests);
* **traced**: recorded spans into the in-memory buffer (no exporter), as for a sampled request.

    .venv/bin/python benchmarks/tracing.py            # 3 runs of 20,000 hops each
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

from opentelemetry import context as otel_context
from opentelemetry import trace

from agents import tracing

_client = tracing.tracer("bench.client")
_server = tracing.tracer("bench.server")


def hop() -> None:
    """Both sides of one hop's instrumentation, as ``call_agent`` and the agent's ``_serve`` do it."""
    span = tracing.start_child(_client, "nats", kind=tracing.SpanKind.CLIENT)
    header = ""
    if span.is_recording():
        span.update_name("nats noop")
        span.set_attributes(
            {"messaging.system": "nats", "messaging.destination.name": "x", "neurectomy.team": "t"}
        )
        header = tracing.traceparent(span)
    scope: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    handler = tracing.start_child(
        _server, "agent", parent=tracing.remote_context(header), kind=tracing.SpanKind.SERVER
    )
    if handler.is_recording():
        handler.update_name("agent noop")
        handler.set_attributes({"neurectomy.agent": "noop", "neurectomy.team": "t"})
        scope = trace.use_span(handler, end_on_exit=True)
    with scope:
        pass
    span.end()


def nothing() -> None:
    """The loop's own cost."""


def per_call_us(fn: object, n: int) -> float:
    call = fn  # type: ignore[assignment]
    started = time.perf_counter()
    for _ in range(n):
        call()  # type: ignore[operator]
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hops", type=int, default=20_000)
    args = parser.parse_args()
    tracing.configure("bench", tracing.TracingConfig(sample_ratio=1.0))
    root = tracing.tracer("bench").start_span("root", attributes={tracing.ENTRY_ATTRIBUTE: True})
    rows: dict[str, list[float]] = {"baseline": [], "untraced": [], "traced": []}
    for _ in range(args.runs):
        rows["baseline"].append(per_call_us(nothing, args.hops))
        rows["untraced"].append(per_call_us(hop, args.hops))  # no current span: not sampled
        token = otel_context.attach(trace.set_span_in_context(root))
        rows["traced"].append(per_call_us(hop, args.hops))
        otel_context.detach(token)
    base = statistics.median(rows["baseline"])
    print(f"µs per hop (median of {args.runs} runs of {args.hops} hops, loop cost {base:.2f} µs subtracted)")
    for name in ("untraced", "traced"):
        print(f"  {name:9s} {statistics.median(rows[name]) - base:8.2f}")
    print(f"spans kept in the buffer: {len(tracing.span_buffer().spans())}")


if __name__ == "__main__":
    main()

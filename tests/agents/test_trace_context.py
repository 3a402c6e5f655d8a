"""``start_child``: a real span under a sampled parent, the no-op span without one (the check read first)."""

from __future__ import annotations

import anyio
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from agents._trace_context import _current_context, start_child

pytestmark = pytest.mark.anyio

_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
_PARENT_ID = 0xB7AD6B7169203331


def _parent(sampled: bool) -> otel_context.Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    remote = SpanContext(_TRACE_ID, _PARENT_ID, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(remote))


def test_the_current_context_is_read_as_the_api_reads_it() -> None:
    # the context variable read directly must be the API's current context, attached or not
    assert _current_context() is otel_context.get_current()
    token = otel_context.attach(_parent(True))
    try:
        assert _current_context() is otel_context.get_current()
        assert trace.get_current_span(_current_context()).get_span_context().trace_id == _TRACE_ID
    finally:
        otel_context.detach(token)
    assert _current_context() is otel_context.get_current()


async def test_a_child_of_the_current_sampled_span_is_recorded_in_any_task() -> None:
    tracer = TracerProvider().get_tracer("test")
    assert start_child(tracer, "nats", kind=SpanKind.CLIENT) is INVALID_SPAN  # nothing current
    seen: dict[str, object] = {}

    async def in_task(sampled: bool) -> None:
        token = otel_context.attach(_parent(sampled))
        try:
            seen[f"sampled={sampled}"] = start_child(tracer, "nats", kind=SpanKind.CLIENT)
        finally:
            otel_context.detach(token)

    async with anyio.create_task_group() as tg:
        tg.start_soon(in_task, True)
        tg.start_soon(in_task, False)
    child = seen["sampled=True"]
    assert isinstance(child, trace.Span) and child.is_recording()
    ctx = child.get_span_context()
    assert ctx.trace_id == _TRACE_ID and ctx.span_id != _PARENT_ID
    assert child.parent is not None and child.parent.span_id == _PARENT_ID  # type: ignore[attr-defined]
    child.end()
    assert seen["sampled=False"] is INVALID_SPAN
    assert start_child(tracer, "nats") is INVALID_SPAN  # the tasks' contexts did not leak here

"""Server-Sent Events responses written as bytes, one ASGI body message per event.

litestar's ``ServerSentEvent`` runs its iterator of header chunks through a worker thread
(``sync_to_thread``) before the first event, a thread round trip on every stream's time to first
token, and builds a ``ServerSentEventMessage`` per event. The streaming routes write the wire form
themselves instead, through a plain ``Stream``.

One framing for every event stream of the API (OpenAI chat/completions/responses, ``/v1/generate``,
llama-server's ``/completion``, task events, the dashboard feed): ``event: <name>`` LF (named events
only), ``data: <one line>`` LF, LF: what OpenAI's and llama-server's streams send. Writers that splice
an event together on the hot path use :func:`sse_data_prefix` and :data:`SSE_END` for its two ends;
every other writer calls :func:`sse_event`. ``tests/api/test_sse_framing.py`` parses every streaming
route with httpx-sse and checks these bytes.

Reference: the WHATWG HTML standard, "Server-sent events", the event stream format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.response import Stream

from api._push import EventFormat, push_response
from orchestrator import GenerationStream

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Headers of every event stream: no caching, no buffering by a reverse proxy (nginx)."""


SSE_END = b"\n\n"
"""The end of an event: the LF ending its ``data`` line and the empty line that dispatches it."""


def sse_data_prefix(event: str | None = None) -> bytes:
    """An event's bytes before its data: ``event: <name>`` LF when named, then ``data: ``."""
    return (b"event: " + event.encode() + b"\n" if event is not None else b"") + b"data: "


def sse_event(data: str | bytes, event: str | None = None) -> bytes:
    """One event on the wire.

    Args:
        data: The event's data, one line (JSON as ``json.dumps`` writes it has no line break).
        event: The event's name (``None``: the default ``message`` event, no ``event:`` field).

    Raises:
        ValueError: ``data`` holds a line break (it would end the field early).
    """
    body = data.encode() if isinstance(data, str) else data
    if b"\n" in body or b"\r" in body:
        raise ValueError("SSE data must be one line")
    return sse_data_prefix(event) + body + SSE_END


def sse_response(events: AsyncIterator[bytes]) -> Stream:
    """A ``text/event-stream`` response that writes each item of ``events`` as one body message."""
    return Stream(events, media_type="text/event-stream", headers=SSE_HEADERS)


def sse_push_response(stream: GenerationStream, fmt: EventFormat) -> Stream:
    """A ``text/event-stream`` response of a generation, written as its events arrive (`api._push`)."""
    return push_response(stream, fmt, media_type="text/event-stream", headers=SSE_HEADERS)

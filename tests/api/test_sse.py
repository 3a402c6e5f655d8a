"""The SSE wire form every event stream writes (``api._sse``): LF framing, one line of data per event."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import EventSource
from litestar.response import ServerSentEventMessage

from api._sse import SSE_END, sse_data_prefix, sse_event


def _parse(raw: bytes) -> list[tuple[str, str]]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    return [(e.event, e.data) for e in EventSource(response).iter_sse()]


@pytest.mark.parametrize("event", ["token", "done", None])
def test_events_parse_as_litestars_do(event: str | None) -> None:
    data = json.dumps({"text": 'héllo "quoted"\n'})
    ours = sse_event(data, event)
    assert b"\r" not in ours and ours.endswith(b"\n\n")
    assert ours == sse_data_prefix(event) + data.encode() + SSE_END
    # litestar's CRLF framing (what the task and dashboard streams sent before) parses to the same event
    assert _parse(ours) == _parse(ServerSentEventMessage(data=data, event=event).encode())
    assert _parse(ours) == [(event or "message", data)]


def test_data_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="one line"):
        sse_event("two\nlines", "token")

"""The SSE wire form the streaming routes write: byte for byte litestar's, one line of data per event."""

from __future__ import annotations

import json

import pytest
from litestar.response import ServerSentEventMessage

from api._sse import sse_event


@pytest.mark.parametrize("event", ["token", "done", None])
def test_events_are_the_bytes_litestar_writes(event: str | None) -> None:
    data = json.dumps({"text": 'héllo "quoted"\n'})
    assert sse_event(data, event) == ServerSentEventMessage(data=data, event=event).encode()


def test_data_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="one line"):
        sse_event("two\nlines", "token")

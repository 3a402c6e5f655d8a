"""A call's last message as the reply: an ``End`` is read by its own validator, with the union's answers.

``orchestrator._dispatch._accepted`` reads a reply that starts as an ``End`` does with ``End``'s validator
instead of the stream-message union; whatever that validator refuses is read by the union again. Each
case here must give what the union alone gives: the same event, or the same error.
"""

from __future__ import annotations

import pytest

from agents.errors import StreamBrokenError
from agents.messaging import Message
from agents.protocol import Chunk, End, Error, stream_message_adapter
from orchestrator._dispatch import _accepted

_CASES = [
    b'{"type":"end","seq":0,"output":{"ok":true}}',
    b'{"type":"end","seq":3,"output":{"nested":[1,2.5,null,"x"],"n":{"a":{}}}}',
    b'{"type":"end","seq":0,"output":{}}',
    b'{"type":"end", "seq":0,"output":{"spaced":true}}',
    b'{"type":"end","seq":"1","output":{}}',  # lax: a numeric string
    b'{"type":"end","seq":0,"output":{},"type":"end"}',
    b'{"type":"end","seq":0,"output":{},"type":"chunk"}',  # a duplicate tag: what the union makes of it
    b'{"type":"end","seq":0,"data":{"text":"a"},"type":"chunk"}',
    b'{"type":"end","seq":0,"output":{},"extra":1}',  # unknown field
    b'{"type":"end","seq":0,"output":[]}',  # not an object
    b'{"type":"end","seq":0}',  # no output
    b'{"type":"end","seq":0,"output":{}',  # truncated
    b'{"type":"endless","seq":0,"output":{}}',
    b'{"type":"chunk","seq":0,"data":{"text":"a"}}',
    b'{"type":"error","seq":1,"error":{"code":"bad_input","message":"no","field":"text"}}',
]


@pytest.mark.parametrize("body", _CASES)
def test_a_reply_is_read_as_the_union_reads_it(body: bytes) -> None:
    try:
        expected: Chunk | End | Error | None = stream_message_adapter.validate_json(body)
    except ValueError:
        expected = None
    reply = Message("_INBOX.x.1.r", body, {}, "")
    if expected is None:
        with pytest.raises(StreamBrokenError, match="t-agent sent an unreadable reply"):
            _accepted(reply, "t-agent")
    else:
        instance, event = _accepted(reply, "t-agent")
        assert instance == ""
        assert type(event) is type(expected)
        assert event == expected

"""``Bus.flush``: everything sent before it — a subscription just made included — reaches the server first.

nats-py 2.16's ``Client.flush`` writes its ``PING`` to the socket at once while a ``SUB`` may still wait
in its pending buffer for the flusher task; the ``PONG`` then confirms nothing about the subscription.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from agents import Bus, Message

pytestmark = pytest.mark.anyio


async def test_a_flush_writes_what_is_pending_before_its_ping(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport: Any = bus._nc._transport
    written: list[bytes] = []
    write, writelines = transport.write, transport.writelines

    def record(data: bytes) -> None:
        written.append(bytes(data))
        write(data)

    def record_lines(lines: Iterable[bytes]) -> None:
        lines = list(lines)
        written.extend(bytes(line) for line in lines)
        writelines(lines)

    monkeypatch.setattr(transport, "write", record)
    monkeypatch.setattr(transport, "writelines", record_lines)

    async def ignore(msg: Message) -> None:
        del msg

    async with bus.subscription("t.flush.order", ignore):
        await bus.flush()
    stream = b"".join(written)
    assert b"SUB t.flush.order " in stream and b"PING\r\n" in stream
    assert stream.index(b"SUB t.flush.order ") < stream.index(b"PING\r\n")  # nats-py alone: PING first

"""Pushed stream chunks (``AgentCall.push``) on a real nats-server: order, checks and errors as pulled.

A scripted responder answers the request with an accept and then publishes the stream messages it is
given (also wrong ones: a gap in the sequence, an unreadable message), each only when the test says so,
so that every message arrives after the consumer switched to pushing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from agents import Bus
from agents.errors import DeadlineExceededError, InstanceLostError, StreamBrokenError
from agents.messaging import Message
from agents.protocol import Chunk, End
from orchestrator import CallContext
from orchestrator._dispatch import PROBE_S, AgentCall

pytestmark = pytest.mark.anyio

SUBJECT = "neurectomy.test.push"


class Script:
    """The responder's side: the stream inbox of the last request, and messages to publish on it."""

    def __init__(self, bus: Bus, instance: str = "") -> None:
        self.bus = bus
        self.instance = instance
        self.inbox = ""
        self.requested = anyio.Event()

    async def on_request(self, msg: Message) -> None:
        self.inbox = msg.reply.removesuffix(".r")
        await self.bus.publish(msg.reply, json.dumps({"ok": True, "instance": self.instance}).encode())
        self.requested.set()

    async def send(self, *messages: dict[str, object] | bytes) -> None:
        """Publish each message (dicts as compact JSON, as agents write it) and wait until delivered."""
        for m in messages:
            body = m if isinstance(m, bytes) else json.dumps(m, separators=(",", ":")).encode()
            await self.bus.publish(self.inbox, body)
        await self.bus.flush()


def chunk(seq: int, text: str) -> dict[str, object]:
    return {"type": "chunk", "seq": seq, "data": {"text": text}}


@asynccontextmanager
async def scripted(
    bus: Bus, timeout_s: float = 10, alive: Callable[[str], bool] | None = None
) -> AsyncIterator[tuple[Script, AgentCall]]:
    """A started call to the scripted responder whose first chunk (``a``) has been read.

    With ``alive``, the responder names an instance (``i1``) and the call checks it every 0.05 s of silence.
    """
    script = Script(bus, "i1" if alive else "")
    async with bus.subscription(SUBJECT, script.on_request):
        await bus.flush()
        ctx = CallContext.with_timeout(timeout_s)
        call = AgentCall(bus, "t-push", ctx, alive, 0.05 if alive else PROBE_S)
        await call.start("test", SUBJECT, {}, accept_timeout_s=5)
        try:
            await script.send(chunk(0, "a"))
            first = await call.next()
            assert isinstance(first, Chunk) and first.data == {"text": "a"}
            yield script, call
        finally:
            await call.finish(None)


async def test_pushed_chunks_arrive_in_order_without_a_read_and_the_end_is_read(bus: Bus) -> None:
    async with scripted(bus) as (script, call):
        pushed: list[str] = []
        call.push(lambda c: pushed.append(c.data["text"]))
        await script.send(chunk(1, "b"), chunk(2, "c"), chunk(3, "d"))
        assert pushed == ["b", "c", "d"]  # delivered in the read loop: nothing read them
        await script.send({"type": "end", "seq": 4, "output": {"ok": 1}})
        with anyio.fail_after(5):
            end = await call.next()
        assert isinstance(end, End) and end.output == {"ok": 1}
        assert call.done


async def test_a_gap_in_the_sequence_is_not_pushed_and_breaks_the_stream(bus: Bus) -> None:
    async with scripted(bus) as (script, call):
        pushed: list[str] = []
        call.push(lambda c: pushed.append(c.data["text"]))
        await script.send(chunk(1, "b"), chunk(3, "lost-one-before"), chunk(4, "e"))
        with anyio.fail_after(5), pytest.raises(StreamBrokenError, match="expected message 2 .* got 3"):
            await call.next()
        assert pushed == ["b"]  # nothing after the gap reached the consumer


async def test_an_unreadable_message_is_not_pushed_and_breaks_the_stream(bus: Bus) -> None:
    async with scripted(bus) as (script, call):
        pushed: list[str] = []
        call.push(lambda c: pushed.append(c.data["text"]))
        await script.send(b'{"type":"chunk","seq":1,"data":"not an object"}')
        with anyio.fail_after(5), pytest.raises(StreamBrokenError, match="unreadable stream message"):
            await call.next()
        assert pushed == []


async def test_a_failing_consumer_stops_the_pushing_and_its_error_is_raised_by_next(bus: Bus) -> None:
    async with scripted(bus) as (script, call):
        seen: list[str] = []

        def consumer(c: Chunk) -> None:
            seen.append(c.data["text"])
            raise OSError("the client's connection broke")

        call.push(consumer)
        await script.send(chunk(1, "b"), chunk(2, "c"))
        with anyio.fail_after(5), pytest.raises(OSError, match="connection broke"):
            await call.next()
        assert seen == ["b"]  # pushing stopped at the failure
        later = await call.next()  # the chunk after it waited to be read, in order
        assert isinstance(later, Chunk) and later.seq == 2
        with anyio.fail_after(5):
            await bus.flush()  # nats-py's read loop survived the consumer's error (it reads the PONG)


async def test_the_deadline_still_ends_a_pushed_stream(bus: Bus) -> None:
    async with scripted(bus, timeout_s=1.0) as (script, call):
        pushed: list[str] = []
        call.push(lambda c: pushed.append(c.data["text"]))
        await script.send(chunk(1, "b"))
        with anyio.fail_after(5), pytest.raises(DeadlineExceededError):
            await call.next()  # no End comes: the call's deadline ends the wait
        assert pushed == ["b"]
        await script.send(chunk(2, "late"))
        assert pushed == ["b"]  # past the deadline nothing is pushed


async def test_a_chunk_written_another_way_is_read_instead_with_the_same_result(bus: Bus) -> None:
    async with scripted(bus) as (script, call):
        pushed: list[str] = []
        call.push(lambda c: pushed.append(c.data["text"]))
        await script.bus.publish(script.inbox, json.dumps(chunk(1, "b")).encode())  # '{"type": "chunk", ...'
        await script.send(chunk(2, "c"))  # queued behind it, so not pushed either: the order holds
        with anyio.fail_after(5):
            read = [await call.next(), await call.next()]
        assert [(c.seq, c.data["text"]) for c in read if isinstance(c, Chunk)] == [(1, "b"), (2, "c")]
        assert pushed == []
        await script.send(chunk(3, "d"))  # nothing queued any more: pushed again
        assert pushed == ["d"]


async def test_a_silent_instance_that_stopped_its_heartbeats_is_lost_while_pushing(bus: Bus) -> None:
    async with scripted(bus, alive=lambda instance: False) as (script, call):
        pushed: list[str] = []
        call.push(lambda c: pushed.append(c.data["text"]))
        await script.send(chunk(1, "b"))
        with anyio.fail_after(5), pytest.raises(InstanceLostError, match="i1 stopped sending heartbeats"):
            await call.next()  # nothing more comes: the heartbeats are looked at, as when pulling
        assert pushed == ["b"]

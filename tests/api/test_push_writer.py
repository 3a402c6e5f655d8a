"""``api._push.BodyWriter``: body messages written without ``await``, held in order by flow control.

The flow-control test serves a raw ASGI app with the real uvicorn (httptools, as ``serve`` runs it) to a
client that reads nothing until the server's transport has paused writing.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import anyio
import httpx
import pytest
import uvicorn

from agents import Bus
from agents.messaging import Message
from agents.protocol import Chunk
from api._push import BodyWriter, EventFormat, _PushedGeneration
from orchestrator import CallContext, GenerationStream
from orchestrator._dispatch import PROBE_S, AgentCall
from orchestrator._streams import RoutedStream

pytestmark = pytest.mark.anyio

BLOCKS = [bytes([i]) * 1_000_000 for i in range(32)]
"""32 MB in all: more than loopback's socket buffers hold, so uvicorn pauses the writes."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_writes_held_by_flow_control_reach_the_client_whole_and_in_order() -> None:
    paused = anyio.Event()
    queued_while_paused: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        writer = BodyWriter(send)
        for i, block in enumerate(BLOCKS):
            writer.write(block)  # never awaits: a send that must wait resumes by itself
            if writer.waiting:
                queued_while_paused.append(i)
                paused.set()
        await writer.flush()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            async with (
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
                client.stream("GET", "/") as response,
            ):
                with anyio.fail_after(10):
                    await paused.wait()  # the client has read nothing of the body yet
                body = await response.aread()
        finally:
            server.should_exit = True
    assert queued_while_paused  # some writes had to wait for the client
    assert len(body) == len(b"".join(BLOCKS))
    assert body == b"".join(BLOCKS)


async def test_a_failed_send_is_raised_by_flush_and_later_bodies_are_dropped() -> None:
    sent: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["body"] == b"boom":
            raise OSError("connection reset")
        sent.append(message["body"])

    writer = BodyWriter(send)
    writer.write(b"a")
    writer.write(b"boom")
    writer.write(b"c")
    assert isinstance(writer.error, OSError)
    with pytest.raises(OSError, match="connection reset"):
        await writer.flush()
    assert sent == [b"a"]


async def test_close_drops_a_waiting_send_and_the_bodies_behind_it() -> None:
    release = anyio.Event()
    sent: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if not sent:
            await release.wait()
        sent.append(message["body"])

    writer = BodyWriter(send)
    writer.write(b"a")
    writer.write(b"b")
    assert writer.waiting
    writer.close()
    release.set()
    await anyio.sleep(0)  # let the released wait's callbacks run: nothing is resumed
    assert sent == []
    assert not writer.waiting


async def test_a_send_that_yields_bare_resumes_on_the_next_loop_turn() -> None:
    sent: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a bare yield, as anyio's checkpoints make: a Task would resume it next turn
        sent.append(message["body"])

    writer = BodyWriter(send)
    for body in (b"a", b"b", b"c"):
        writer.write(body)
    assert writer.waiting
    with anyio.fail_after(5):
        await writer.flush()
    assert sent == [b"a", b"b", b"c"]
    assert writer.error is None


async def test_a_send_cancelled_while_held_fails_the_stream_and_not_nats_read_loop(bus: Bus) -> None:
    """A send whose awaited future is cancelled fails with CancelledError, a BaseException: the stream ends
    with an error the response raises, and nats-py's read loop (which pushed the next delta) goes on."""
    subject = "neurectomy.test.push-writer"
    inboxes: list[str] = []

    async def on_request(msg: Message) -> None:
        inboxes.append(msg.reply.removesuffix(".r"))
        await bus.publish(msg.reply, b'{"ok":true,"instance":""}')

    async def chunk(seq: int) -> None:
        await bus.publish(inboxes[0], b'{"type":"chunk","seq":%d,"data":{"text":"t%d"}}' % (seq, seq))
        await bus.flush()

    held: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    sent: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if not sent:
            await held  # the first body waits (as for flow control); the test cancels what it waits on
        sent.append(message["body"])

    fmt = EventFormat(delta=lambda d: d.text.encode(), end=lambda out: b"end", error=lambda exc: b"error")
    async with bus.subscription(subject, on_request):
        await bus.flush()
        call = AgentCall(bus, "t-writer", CallContext.with_timeout(10), None, PROBE_S)
        await call.start("test", subject, {}, accept_timeout_s=5)
        await chunk(0)
        first = await call.next()
        assert isinstance(first, Chunk)
        stream = GenerationStream(RoutedStream(call, first, lambda: None), None, time.perf_counter())
        failure: list[BaseException] = []

        async def respond() -> None:
            try:
                await _PushedGeneration(stream, fmt).run(send)
            except Exception as exc:
                failure.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(respond)
            await anyio.sleep(0)  # the first delta's send now waits on `held`
            await chunk(1)  # queued behind it
            held.cancel()
            await anyio.sleep(0)  # the held send resumes and fails with CancelledError
            await chunk(2)  # pushed in the read loop: the failure stops the stream there
            with anyio.fail_after(5):
                while not failure:
                    await anyio.sleep(0.01)
        with anyio.fail_after(5):
            await bus.flush()  # nats-py's read loop still reads (the PONG)
    assert isinstance(failure[0], RuntimeError) and isinstance(failure[0].__cause__, asyncio.CancelledError)
    assert sent == []

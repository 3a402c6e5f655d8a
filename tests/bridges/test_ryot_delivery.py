"""The bridge's hand-over of a generation's events on the event loop (``bridges._ryot_delivery``).

Driven like the engine drives it (events, then ``flush``), with no engine and no timing: an interval of
an hour holds text as long as the test needs; "the interval has passed" is set, not waited for.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from bridges._ryot_delivery import EventChannel, LoopDispatcher, RequestSink
from ryot import Finished, TokenChunk
from ryot.types import Event, Timings, Usage

FINISHED = Finished("length", Usage(3, 4, 0), Timings(0.0, 0.01, 0.02, 3), "Once upon a time")


async def _take(channel: EventChannel, into: list[Event]) -> None:
    """The consumer task: takes batches until the Finished."""
    while True:
        batch = await channel.get()
        into.extend(batch)
        if any(isinstance(e, Finished) for e in batch):
            return


@pytest.mark.anyio
async def test_text_reaches_on_text_in_the_delivery_and_only_the_end_wakes_the_consumer() -> None:
    taken: list[tuple[str, bool]] = []
    dispatcher = LoopDispatcher(asyncio.get_running_loop(), 0.0)
    channel = EventChannel(lambda chunk, alone: taken.append((chunk.text, alone)) is None)
    sink = RequestSink(dispatcher, channel)
    got: list[Event] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_take, channel, got)
            await anyio.wait_all_tasks_blocked()
            for piece in ("Once", " upon"):
                sink(TokenChunk(piece, 1))
                sink.flush()
                await anyio.wait_all_tasks_blocked()
                assert got == []  # the text went to on_text; the consumer task was not woken
            sink(TokenChunk(" a time", 2))
            sink(FINISHED)
            sink.flush()
    assert taken == [("Once", True), (" upon", True), (" a time", True)]
    assert got == [FINISHED]


@pytest.mark.anyio
async def test_a_chunk_on_text_refuses_and_all_text_after_it_reach_the_consumer_in_order() -> None:
    """Refused (say the NATS send buffer is full), a chunk goes to the task; while the task still holds
    it, later text queues behind it instead of overtaking it through ``on_text``."""
    taken: list[str] = []
    refuse = {" upon"}

    def on_text(chunk: TokenChunk, alone: bool) -> bool:
        if chunk.text in refuse:
            return False
        taken.append(chunk.text)
        return True

    dispatcher = LoopDispatcher(asyncio.get_running_loop(), 0.0)
    channel = EventChannel(on_text)
    sink = RequestSink(dispatcher, channel)
    with anyio.fail_after(10):
        for piece in ("Once", " upon"):
            sink(TokenChunk(piece, 1))
            sink.flush()
            await anyio.wait_all_tasks_blocked()
        first = await channel.get()  # the task takes the refused chunk and is busy with it
        refuse.clear()
        sink(TokenChunk(" a", 1))
        sink.flush()
        await anyio.wait_all_tasks_blocked()
        assert taken == ["Once"]  # " a" did not overtake " upon", which the task still holds
        sink(FINISHED)
        sink.flush()
        await anyio.wait_all_tasks_blocked()
        rest = await channel.get()
        last = await channel.get()
    assert first == [TokenChunk(" upon", 1)]
    assert rest == [TokenChunk(" a", 1)]
    assert last == [FINISHED]


@pytest.mark.anyio
async def test_a_closed_channel_refuses_events_and_the_sink_then_cancels_the_request() -> None:
    dispatcher = LoopDispatcher(asyncio.get_running_loop(), 0.0)
    channel = EventChannel()
    sink = RequestSink(dispatcher, channel)
    channel.close()
    with anyio.fail_after(10):
        sink(TokenChunk("Once", 1))
        sink.flush()
        await anyio.wait_all_tasks_blocked()
    with pytest.raises(anyio.BrokenResourceError):  # what the engine takes as "cancel this request"
        sink(TokenChunk(" upon", 1))


@pytest.mark.anyio
async def test_text_after_the_interval_goes_at_once_and_leaves_no_timer_to_wake_the_loop() -> None:
    """Decoding slower than the interval (a loaded machine): each token is delivered when it comes and no
    timer is armed after it (one would wake the loop for nothing once per token). Text that comes within
    the interval is held and arms the timer that delivers it."""
    dispatcher = LoopDispatcher(asyncio.get_running_loop(), 3600.0)
    channel = EventChannel()
    sink = RequestSink(dispatcher, channel)
    with anyio.fail_after(10):
        sink(TokenChunk("Once", 1))  # the first text: at once
        sink.flush()
        assert await channel.get() == [TokenChunk("Once", 1)]
        assert not dispatcher._timer
        for piece in (" upon", " a"):
            dispatcher._hold_until = 0.0  # the interval has passed since the last delivery
            sink(TokenChunk(piece, 1))
            sink.flush()
            assert await channel.get() == [TokenChunk(piece, 1)]
            assert not dispatcher._timer
        assert dispatcher.wakeups == 3
        sink(TokenChunk(" time", 1))  # within the interval: held, and a timer armed for it
        sink.flush()
        await anyio.wait_all_tasks_blocked()
        assert dispatcher._timer and dispatcher.wakeups == 3 and not channel._batches

"""Text chunks the engine produced while the bridge's consumer lagged reach it merged: fewer events, the
same text, token counts and log probabilities."""

from __future__ import annotations

import anyio
import pytest

from bridges import RyotBridge
from bridges._ryot_delivery import coalesced
from ryot import Finished, RyotEngine, SamplingParams, TokenChunk, TokenLogprob
from ryot.types import Event, Timings, Usage

FINISHED = Finished("length", Usage(3, 4, 0), Timings(0.0, 0.0, 0.0, 0), "abcd")


def lp(token: str) -> TokenLogprob:
    return TokenLogprob(token, token.encode(), -0.5)


def test_adjacent_text_chunks_merge_and_the_terminal_event_stays_last() -> None:
    events: list[Event] = [
        TokenChunk("a", 1, (lp("a"),)),
        TokenChunk("", 1, (lp("b"),)),  # held back (start of a stop string)
        TokenChunk("bc", 1, (lp("c"),)),
        FINISHED,
    ]
    assert coalesced(events) == [TokenChunk("abc", 3, (lp("a"), lp("b"), lp("c"))), FINISHED]
    assert coalesced([FINISHED]) == [FINISHED]
    single: list[Event] = [TokenChunk("a", 1)]
    assert coalesced(single) is single


@pytest.mark.anyio
async def test_streamed_chunks_join_to_the_finished_text_and_token_count(engine: RyotEngine) -> None:
    bridge = RyotBridge(engine)  # not closed: the engine belongs to the session
    chunks: list[TokenChunk] = []
    finished: Finished | None = None
    async for event in bridge.stream("Once upon a time", SamplingParams(max_tokens=12, temperature=0)):
        if isinstance(event, Finished):
            finished = event
        else:
            chunks.append(event)
    assert finished is not None
    assert "".join(c.text for c in chunks) == finished.text
    assert sum(c.n_tokens for c in chunks) == finished.usage.completion_tokens


@pytest.mark.anyio
async def test_concurrent_streams_share_loop_wake_ups_and_keep_their_greedy_text(engine: RyotEngine) -> None:
    """The engine hands a decode step's tokens over back to back and the bridge wakes the event loop once
    for all requests that have some: three greedy streams decoded together cost well under one wake-up
    per token event, and each gives the text it gives alone."""
    bridge = RyotBridge(engine)  # not closed: the engine belongs to the session
    prompts = ["The river", "A recipe for bread:", "Dear diary,"]
    params = SamplingParams(max_tokens=16, temperature=0)
    alone = [engine.generate(p, params).text for p in prompts]
    texts = [""] * len(prompts)
    events = 0

    async def one(i: int) -> None:
        nonlocal events
        async for event in bridge.stream(prompts[i], params):
            if isinstance(event, Finished):
                texts[i] = event.text
            else:
                events += 1

    async with anyio.create_task_group() as tg:
        for i in range(len(prompts)):
            tg.start_soon(one, i)
    assert texts == alone
    dispatcher = bridge._dispatcher()
    assert dispatcher.wakeups <= events * 2 // 3, (dispatcher.wakeups, events)


@pytest.mark.anyio
async def test_first_text_and_the_end_go_at_once_later_text_waits_for_the_interval_and_merges() -> None:
    """The delivery rules, driven like the engine drives them (events, then ``flush``), with an interval
    of an hour so that nothing depends on timing: a request's first text is delivered at once, later text
    is held (no wake-up at all), and the end goes at once with the held text merged before it."""
    import asyncio

    from bridges._ryot_delivery import EventChannel, LoopDispatcher, RequestSink

    dispatcher = LoopDispatcher(asyncio.get_running_loop(), 3600.0)
    channel = EventChannel()
    sink = RequestSink(dispatcher, channel)
    with anyio.fail_after(10):
        sink(TokenChunk("", 1))  # no text yet (a held-back stop-string start): still urgent
        sink.flush()
        assert await channel.get() == [TokenChunk("", 1)]
        sink(TokenChunk("Once", 1))
        sink.flush()
        assert await channel.get() == [TokenChunk("Once", 1)]
        for piece in (" upon", " a", " time"):
            sink(TokenChunk(piece, 1))
            sink.flush()
        await anyio.wait_all_tasks_blocked()
        assert not channel._batches and dispatcher.wakeups == 2
        sink(FINISHED)
        sink.flush()
        events = await channel.get()
    assert coalesced(events) == [TokenChunk(" upon a time", 3), FINISHED]
    assert dispatcher.wakeups == 3


@pytest.mark.anyio
async def test_with_no_interval_every_decode_step_is_delivered_at_once(engine: RyotEngine) -> None:
    bridge = RyotBridge(engine, chunk_interval_s=0.0)  # not closed: the engine belongs to the session
    chunks: list[TokenChunk] = []
    finished: Finished | None = None
    async for event in bridge.stream("Once upon a time", SamplingParams(max_tokens=12, temperature=0)):
        if isinstance(event, Finished):
            finished = event
        else:
            chunks.append(event)
    assert finished is not None and finished.usage.completion_tokens == 12
    assert "".join(c.text for c in chunks) == finished.text
    assert sum(c.n_tokens for c in chunks) == 12
    with pytest.raises(ValueError, match="chunk_interval_s"):
        RyotBridge(engine, chunk_interval_s=-1.0)


@pytest.mark.anyio
async def test_a_generation_past_its_timeout_raises_and_is_counted(engine: RyotEngine) -> None:
    from bridges import BridgeTimeoutError

    bridge = RyotBridge(engine)  # not closed: the engine belongs to the session
    with pytest.raises(BridgeTimeoutError):
        async for _ in bridge.stream("Once upon a time", SamplingParams(max_tokens=500), timeout_s=0.001):
            pass
    assert bridge.metrics.failures == 1

"""Text chunks the engine produced while the bridge's consumer lagged reach it merged: fewer events, the
same text, token counts and log probabilities."""

from __future__ import annotations

import anyio
import pytest

from bridges import RyotBridge
from bridges.ryot import _coalesced
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
    assert _coalesced(events) == [TokenChunk("abc", 3, (lp("a"), lp("b"), lp("c"))), FINISHED]
    assert _coalesced([FINISHED]) == [FINISHED]
    single: list[Event] = [TokenChunk("a", 1)]
    assert _coalesced(single) is single


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

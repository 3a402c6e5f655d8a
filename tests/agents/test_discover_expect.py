"""`Bus.discover(expect=n)`: a quiet gap between answers does not end the collection before n answers.

Real nats-server (the ``bus`` fixture). Two responders on ``$SRV.STATS``; the second answers only well after
the first (a gap 30x the quiet window), as an instance on a busy machine may.
"""

from __future__ import annotations

import json

import anyio
import pytest

from agents.messaging import Bus, Message

pytestmark = pytest.mark.anyio

QUIET_S = 0.05
GAP_S = 1.5


async def _collect(bus: Bus, expect: int) -> list[dict[str, object]]:
    first_sent = anyio.Event()

    async def first(msg: Message) -> None:
        await bus.publish(msg.reply, json.dumps({"name": "first"}).encode())
        first_sent.set()

    async def late(msg: Message) -> None:
        await first_sent.wait()
        await anyio.sleep(GAP_S)  # the gap under test, not a wait for a state
        await bus.publish(msg.reply, json.dumps({"name": "late"}).encode())

    async with bus.subscription("$SRV.STATS", first), bus.subscription("$SRV.STATS", late):
        await bus.flush()
        return await bus.discover("STATS", timeout_s=30, quiet_s=QUIET_S, expect=expect)


async def test_expected_answers_are_waited_for_across_a_quiet_gap(bus: Bus) -> None:
    answers = await _collect(bus, expect=2)
    assert sorted(str(a["name"]) for a in answers) == ["first", "late"]


async def test_without_an_expected_count_the_quiet_gap_ends_the_collection(bus: Bus) -> None:
    answers = await _collect(bus, expect=1)
    assert [a["name"] for a in answers] == ["first"]

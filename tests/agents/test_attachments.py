"""Binary attachments after a payload's JSON, and the accept grace (real nats-server).

An agent that declares ``takes_attachment`` gets the raw bytes after the JSON as ``Call.attachment``
and may answer with ``Call.reply_attachment``; with ``accept_grace_s``, a call that ends within the grace
(even after waiting on a worker thread) is answered by its ``End`` alone, in the accept's place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import pytest

from agents import Agent, AgentRunner, BadInputError, Bus, Call
from agents.protocol import (
    Attached,
    End,
    Reply,
    agent_subject,
    join_attachment,
    split_attachment,
    stream_message_adapter,
)
from orchestrator import CallContext, testing
from orchestrator.testing import running

pytestmark = pytest.mark.anyio


class Reverser(Agent):
    """Reverses its attachment in a worker thread (once ``gate`` opens, if it has one)."""

    name = "t-reverser"
    team = "analysis"
    description = "Reverses the bytes of its attachment."
    takes_attachment = True
    accept_grace_s = 60.0  # far longer than any call here takes: they all end within it

    def __init__(self, gate: anyio.Event | None = None) -> None:
        self.gate = gate

    async def handle(self, call: Call) -> Mapping[str, Any]:
        if self.gate is not None:
            await self.gate.wait()
        data = bytes(call.attachment or b"")
        call.reply_attachment = await anyio.to_thread.run_sync(lambda: data[::-1])
        return {"size": len(data)}


class GatedReverser(Reverser):
    """A grace that its gated calls outlast: the gate opens only once the accept was seen."""

    accept_grace_s = 0.05


class Plain(Agent):
    """Takes no attachment."""

    name = "t-plain"
    team = "analysis"
    description = "Echoes its input."

    async def handle(self, call: Call) -> Mapping[str, Any]:
        return {"echo": call.input}


@asynccontextmanager
async def _run(bus: Bus, agent: Agent) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        await tg.start(AgentRunner(bus, agent, concurrency=2).run)
        yield
        tg.cancel_scope.cancel()


def test_split_finds_the_attachment_after_the_json_only() -> None:
    raw = bytes(range(256))  # NUL bytes inside the attachment too
    envelope, attachment = split_attachment(join_attachment(b'{"a": "x"}', raw))
    assert envelope == b'{"a": "x"}' and attachment is not None and bytes(attachment) == raw
    assert split_attachment(b'{"a": 1}') == (b'{"a": 1}', None)
    empty = split_attachment(join_attachment(b"{}", b""))[1]
    assert empty is not None and bytes(empty) == b""


async def test_an_attachment_travels_raw_both_ways_through_the_orchestrator(bus: Bus) -> None:
    data = bytes(range(256)) * 40
    async with running(bus, [Reverser(), Plain()]) as orchestrator:
        out = await testing.call(orchestrator, "t-reverser", Attached({}, data))
        assert out == {"size": len(data)} and bytes(getattr(out, "attachment")) == data[::-1]  # noqa: B009
        with pytest.raises(BadInputError, match="takes no binary attachment"):
            await testing.call(orchestrator, "t-plain", Attached({"x": 1}, b"raw"))
        assert await testing.call(orchestrator, "t-plain", {"x": 1}) == {"echo": {"x": 1}}


async def test_a_call_within_the_accept_grace_is_answered_by_its_end_alone(bus: Bus) -> None:
    subject = agent_subject(Reverser.team, Reverser.name)
    headers = CallContext.with_timeout(30).headers()
    async with _run(bus, Reverser()), bus.inbox() as box:  # waits on a thread, ends within the grace
        reply = await box.request(subject, join_attachment(b"{}", b"abc"), headers=headers, timeout_s=30)
    envelope, attachment = split_attachment(reply.data)
    event = stream_message_adapter.validate_json(envelope)
    assert isinstance(event, End) and event.output == {"size": 3}
    assert attachment is not None and bytes(attachment) == b"cba"


async def test_a_call_that_outlasts_the_accept_grace_is_accepted_first(bus: Bus) -> None:
    gate = anyio.Event()
    headers = CallContext.with_timeout(30).headers()
    async with _run(bus, GatedReverser(gate)), bus.inbox() as box:
        subject = agent_subject(Reverser.team, Reverser.name)
        reply = await box.request(subject, join_attachment(b"{}", b"abc"), headers=headers, timeout_s=30)
        assert Reply.model_validate_json(reply.data).ok  # the accept, while the call still waits
        gate.set()
        envelope, attachment = split_attachment((await box.next(30)).data)
    assert isinstance(stream_message_adapter.validate_json(envelope), End)
    assert attachment is not None and bytes(attachment) == b"cba"

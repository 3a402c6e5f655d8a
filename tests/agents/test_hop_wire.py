"""The hop on the wire (real nats-server): one message for a call that ends at once, the accept first
otherwise, and header blocks that cannot be broken out of.

A spy connection subscribed to the callers' subjects sees every message the agent sends them, in the
order the agent sent them (one publisher, one subscriber: NATS keeps that order); a second call on
another subject is the barrier after which any accept of the first would have been seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from agents import Agent, AgentRunner, Bus, Call
from agents.messaging import Message
from agents.protocol import End, Reply, agent_subject, stream_message_adapter
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator import CallContext

pytestmark = pytest.mark.anyio


class Instant(Agent):
    """Answers with its input, without ever waiting."""

    name = "t-instant"
    team = "analysis"
    description = "Echoes its input at once."

    async def handle(self, call: Call) -> Mapping[str, Any]:
        return {"echo": call.input}


class Gated(Agent):
    """Answers once the test opens its gate."""

    name = "t-gated"
    team = "analysis"
    description = "Waits for the test, then answers."

    def __init__(self) -> None:
        self.gate = anyio.Event()

    async def handle(self, call: Call) -> Mapping[str, Any]:
        await self.gate.wait()
        return {"opened": True}


class Spy:
    """Every message on ``t.hop.>``, in arrival order."""

    def __init__(self) -> None:
        self.seen: list[Message] = []
        self._arrived = anyio.Event()

    async def on_message(self, msg: Message) -> None:
        self.seen.append(msg)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def wait_for(self, subject: str) -> None:
        with anyio.fail_after(10):
            while not any(m.subject == subject for m in self.seen):
                await self._arrived.wait()

    def on(self, subject_prefix: str) -> list[Message]:
        return [m for m in self.seen if m.subject.startswith(subject_prefix)]


@pytest.fixture
async def spy(nats_server: EmbeddedNats) -> AsyncIterator[Spy]:
    watcher = Spy()
    async with (
        await Bus.connect(nats_server.url, name="spy") as spy_bus,
        spy_bus.subscription("t.hop.>", watcher.on_message),
    ):
        await spy_bus.flush()
        yield watcher


@asynccontextmanager
async def _run(bus: Bus, agent: Agent) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        await tg.start(AgentRunner(bus, agent, concurrency=4).run)
        yield
        tg.cancel_scope.cancel()


async def test_a_call_that_ends_at_once_is_answered_by_its_end_alone(bus: Bus, spy: Spy) -> None:
    async with _run(bus, Instant()):
        subject = agent_subject(Instant.team, Instant.name)
        async with bus.inbox("t.hop.first") as box:
            reply = await box.request(
                subject, b'{"x": 1}', headers=CallContext.with_timeout(5).headers(), timeout_s=5
            )
        event = stream_message_adapter.validate_json(reply.data)
        assert isinstance(event, End)
        assert (event.seq, event.output) == (0, {"echo": {"x": 1}})
        async with bus.inbox("t.hop.barrier") as box:  # any accept of the first call was sent before this
            await box.request(subject, b"{}", headers=CallContext.with_timeout(5).headers(), timeout_s=5)
        await spy.wait_for("t.hop.barrier.r")
        assert [m.subject for m in spy.on("t.hop.first")] == ["t.hop.first.r"]


async def test_a_call_that_waits_is_accepted_first(bus: Bus, spy: Spy) -> None:
    agent = Gated()
    async with _run(bus, agent):
        subject = agent_subject(Gated.team, Gated.name)
        async with bus.inbox("t.hop.gated") as box:
            reply = await box.request(
                subject, b"{}", headers=CallContext.with_timeout(5).headers(), timeout_s=5
            )
            accept = Reply.model_validate_json(reply.data)
            assert accept.ok and accept.instance
            agent.gate.set()
            end = stream_message_adapter.validate_json((await box.next(5)).data)
        assert isinstance(end, End) and end.output == {"opened": True}
        await spy.wait_for("t.hop.gated")  # the spy's own connection may hear it after the caller's
        assert [m.subject for m in spy.on("t.hop.gated")] == ["t.hop.gated.r", "t.hop.gated"]


async def test_a_caller_with_its_own_reply_subject_gets_the_accept_then_the_stream(
    bus: Bus, spy: Spy
) -> None:
    async with _run(bus, Instant()):
        async with bus.inbox("t.hop.stream") as stream:
            reply = await bus.request(
                agent_subject(Instant.team, Instant.name),
                b'{"y": 2}',
                headers=CallContext.with_timeout(5).headers(stream.subject),
                timeout_s=5,
            )
            assert Reply.model_validate_json(reply.data).ok
            end = stream_message_adapter.validate_json((await stream.next(5)).data)
        assert isinstance(end, End) and end.output == {"echo": {"y": 2}}
        await spy.wait_for("t.hop.stream")
        assert [m.subject for m in spy.on("t.hop.stream")] == ["t.hop.stream"]


async def test_header_values_cannot_end_their_line(bus: Bus, spy: Spy) -> None:
    await bus.publish(
        "t.hop.headers", b"x", {"X-Value": " a\r\nX-Injected: yes\r\n\r\nPUB evil 1 ", "X-B": "é"}
    )
    await spy.wait_for("t.hop.headers")
    (msg,) = spy.on("t.hop.headers")
    assert msg.headers == {"X-Value": "a  X-Injected: yes    PUB evil 1", "X-B": "é"}
    assert msg.data == b"x"


async def test_a_call_accepted_before_the_accept_sender_runs_is_not_sent_an_accept(
    bus: Bus, spy: Spy
) -> None:
    """A request parsed after the last batch's accepts check, but before the accept sender ran, is a batch
    of its own: it ends in its worker's turn and is answered by its End alone, as any call that never waits.

    The order the agent's reader makes when reads follow each other closely, made here in one loop turn:
    two calls (the second still owes its accept when the check behind the first's worker runs, so the
    accept sender is woken), then, in a callback after that check, a third.
    """
    runner = AgentRunner(bus, Instant(), concurrency=4)
    subject = agent_subject(Instant.team, Instant.name)
    async with anyio.create_task_group() as tg:
        await tg.start(runner.run)
        with anyio.fail_after(10):
            while runner._accepts_due is None:  # the accept sender waits for work
                await anyio.sleep(0.01)
        async with bus.inbox("t.hop.batch.c.r") as third:  # where its reply goes
            calls = [
                Message(subject, b"{}", CallContext.with_timeout(5).headers(), f"t.hop.batch.{name}.r")
                for name in ("a", "b", "c")
            ]
            assert runner._accept(calls[0]) is None  # both owed to the accept sender (None: no reply now)
            assert runner._accept(calls[1]) is None
            asyncio.get_running_loop().call_soon(runner._accept, calls[2])  # behind the check
            end = stream_message_adapter.validate_json((await third.next(5)).data)
        assert isinstance(end, End) and end.output == {"echo": {}}
        async with bus.inbox("t.hop.barrier2") as box:  # an accept of the third was sent before this
            await box.request(subject, b"{}", headers=CallContext.with_timeout(5).headers(), timeout_s=5)
        await spy.wait_for("t.hop.barrier2.r")
        assert [m.subject for m in spy.on("t.hop.batch.c")] == ["t.hop.batch.c.r"]
        tg.cancel_scope.cancel()

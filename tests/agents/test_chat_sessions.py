"""Chat sessions in JetStream KV: a session started on one ``chat`` replica continues on another.

Each replica is a ``ChatAgent`` with a memory of its own over a NATS connection of its own; the only thing
they share is the session's real nats-server (JetStream on) and the real Gemma 3 270M.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import pytest

from agents import Bus
from agents.inference import ChatAgent, SharedChatMemory
from agents.inference._chat import ChatTurn, session_key
from agents.jetstream import JetStream
from bridges import RyotBridge
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator.testing import call, running
from ryot import RyotEngine

pytestmark = pytest.mark.anyio


@pytest.fixture
async def other_bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    """A second connection: the other replica's process."""
    async with await Bus.connect(nats_server.url, name="replica-2") as connected:
        yield connected


async def test_a_session_continues_on_another_replica(bus: Bus, other_bus: Bus, engine: RyotEngine) -> None:
    session = f"s-{uuid.uuid4().hex}"
    first_replica = ChatAgent(RyotBridge(engine), memory=await SharedChatMemory.open(JetStream(bus)))
    async with running(bus, [first_replica]) as orch:
        first = await call(orch, "chat", {"session": session, "message": "My name is Ada.", "max_tokens": 4})
    # The first replica is gone; a replica in another process answers the next turn.
    second_replica = ChatAgent(RyotBridge(engine), memory=await SharedChatMemory.open(JetStream(other_bus)))
    async with running(other_bus, [second_replica]) as orch:
        second = await call(
            orch, "chat", {"session": session, "message": "What is my name?", "max_tokens": 3}
        )
        fresh = await call(
            orch, "chat", {"session": f"{session}-x", "message": "What is my name?", "max_tokens": 3}
        )
        reset = await call(
            orch, "chat", {"session": session, "message": "What is my name?", "max_tokens": 3, "reset": True}
        )
    assert (first["turn"], first["history_turns"]) == (1, 0)
    assert (second["turn"], second["history_turns"], second["remembered_turns"]) == (2, 1, 2)
    assert second["usage"]["prompt_tokens"] > fresh["usage"]["prompt_tokens"] + 5  # turn 1 in the prompt
    assert (reset["turn"], reset["history_turns"]) == (1, 0)


async def test_racing_replicas_both_keep_their_turn_and_tenants_stay_apart(bus: Bus, other_bus: Bus) -> None:
    one = await SharedChatMemory.open(JetStream(bus))
    two = await SharedChatMemory.open(JetStream(other_bus))
    key = session_key("acme", f"race-{uuid.uuid4().hex}")

    async def record(memory: SharedChatMemory, i: int) -> None:
        await memory.record(key, ChatTurn(f"q{i}", f"a{i}", 10), system="be brief" if i == 0 else None)

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(record, (one, two)[i % 2], i)
    stored = await two.load(key)
    assert stored.started == 6 and sorted(t.user for t in stored.turns) == [f"q{i}" for i in range(6)]
    assert stored.system == "be brief"
    other_tenant = await one.load(session_key("globex", key.partition("\x00")[2]))
    assert other_tenant.started == 0 and not other_tenant.turns
    await one.forget(key)
    assert (await two.load(key)).started == 0

"""`Orchestrator.stats()` waits for every instance the heartbeats report, so listings miss no late answer.

Real nats-server (the ``bus`` fixture). Two instances are known from their heartbeats; one answers
``$SRV.STATS`` at once, the other well after the collection's quiet window (as an agent whose event loop is
busy decoding may). The model listing (``GET /v1/models``, Ollama's ``/api/tags``), the agent listing and
the dashboard all read the answers through it.
"""

from __future__ import annotations

import json

import anyio
import pytest

from agents import Bus
from agents.messaging import Message
from agents.protocol import Heartbeat, heartbeat_subject
from orchestrator import Orchestrator, OrchestratorConfig

pytestmark = pytest.mark.anyio

GAP_S = 1.0
"""How late the second instance answers: 20x the collection's quiet window (0.05 s), well under its bound."""


def beat(agent: str) -> Heartbeat:
    return Heartbeat(
        agent=agent,
        team="storage",
        instance=f"{agent}-1",
        direct_subject=f"neurectomy.storage.{agent}.{agent}-1",
        in_flight=0,
        mailbox_depth=0,
        mailbox_size=8,
        concurrency=1,
        state="up",
        interval_s=600,
    )


def stats(beat: Heartbeat) -> bytes:
    return json.dumps(
        {
            "name": beat.agent,
            "id": beat.instance,
            "metadata": {"team": beat.team, "model": f"{beat.agent}-model"},
            "endpoints": [{"subject": f"neurectomy.storage.{beat.agent}", "data": {}}],
        }
    ).encode()


async def test_a_late_answer_of_a_heartbeating_instance_is_listed(bus: Bus) -> None:
    orch = Orchestrator(bus, OrchestratorConfig(discovery_timeout_s=30), specs=())
    prompt, late = beat("t-prompt"), beat("t-late")
    prompt_sent = anyio.Event()

    async def answer_at_once(msg: Message) -> None:
        await bus.publish(msg.reply, stats(prompt))
        prompt_sent.set()

    async def answer_late(msg: Message) -> None:
        await prompt_sent.wait()
        await anyio.sleep(GAP_S)  # the lateness under test, not a wait for a state
        await bus.publish(msg.reply, stats(late))

    async with anyio.create_task_group() as tg:
        await tg.start(orch.run)
        async with (
            bus.subscription("$SRV.STATS", answer_at_once),
            bus.subscription("$SRV.STATS", answer_late),
        ):
            await bus.flush()
            with anyio.fail_after(30):
                while orch.monitor.instances() < 2:
                    for b in (prompt, late):
                        await bus.publish(heartbeat_subject(b.team, b.agent), b.model_dump_json().encode())
                    await orch.monitor.next_beat()
            models = await orch.models()
            prompt_sent = anyio.Event()
            listed = {a.name: a.replicas for a in await orch.agents()}
            prompt_sent = anyio.Event()
            without_count = await bus.discover("STATS", timeout_s=30)  # the quiet gap ends it
        tg.cancel_scope.cancel()
    assert sorted(m.id for m in models) == ["t-late-model", "t-prompt-model"]
    assert listed == {"t-late": 1, "t-prompt": 1}
    assert [a["name"] for a in without_count] == ["t-prompt"]

"""Heartbeats of the agent instances on one bus: one timer and one message per interval for all of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from agents import Agent, AgentRunner, Bus, Call
from agents._heartbeats import clock_for
from agents.messaging import Message
from agents.protocol import HEARTBEAT_PREFIX, HEARTBEATS_SUBJECT, Heartbeat, Heartbeats
from orchestrator._load import LoadMonitor

pytestmark = pytest.mark.anyio

INTERVAL_S = 0.05


class Echo(Agent):
    name = "t-beat-echo"
    team = "analysis"
    description = "Answers with its input."

    async def handle(self, call: Call) -> Mapping[str, Any]:
        return dict(call.input)


class Heard:
    """Every heartbeat message on the bus: single beats by subject, and the batches."""

    def __init__(self) -> None:
        self.singles: list[Heartbeat] = []
        self.batches: list[list[Heartbeat]] = []
        self.changed = anyio.Event()

    async def on_message(self, msg: Message) -> None:
        if msg.subject == HEARTBEATS_SUBJECT:
            self.batches.append(Heartbeats.model_validate_json(msg.data).beats)
        else:
            self.singles.append(Heartbeat.model_validate_json(msg.data))
        self.changed.set()
        self.changed = anyio.Event()

    async def batches_where(self, predicate: Any, count: int = 1) -> list[list[Heartbeat]]:
        """Wait (at most 10 s) until ``count`` batches satisfy ``predicate``; returns them."""
        with anyio.fail_after(10):
            while len(found := [b for b in self.batches if predicate(b)]) < count:
                await self.changed.wait()
        return found


async def test_instances_on_one_bus_beat_together_in_one_message_per_interval(bus: Bus) -> None:
    heard = Heard()
    runners = [AgentRunner(bus, Echo(), heartbeat_s=INTERVAL_S) for _ in range(3)]
    async with bus.subscription(f"{HEARTBEAT_PREFIX}.>", heard.on_message):
        await bus.flush()
        async with anyio.create_task_group() as tg:
            for runner in runners:
                await tg.start(runner.run)
            ids = {r.instance_id for r in runners}
            batches = await heard.batches_where(lambda b: {beat.instance for beat in b} == ids, count=5)
            assert clock_for(bus, INTERVAL_S).members == 3
            tg.cancel_scope.cancel()
    # each instance beat alone once, at its start (so that it is seen at once); then only in batches
    started = [b.instance for b in heard.singles if b.state == "up"]
    assert sorted(started) == sorted(ids)
    assert all(len(b) == 3 and b[0].interval_s == INTERVAL_S for b in batches)
    # the last beat of each, when it stops, goes alone and says it is draining
    assert sorted(b.instance for b in heard.singles if b.state == "draining") == sorted(ids)


async def test_the_timer_passes_to_another_instance_when_its_keeper_stops(bus: Bus) -> None:
    heard = Heard()
    first, second, third = (AgentRunner(bus, Echo(), heartbeat_s=INTERVAL_S) for _ in range(3))
    async with bus.subscription(HEARTBEATS_SUBJECT, heard.on_message):
        await bus.flush()
        async with anyio.create_task_group() as rest:
            await rest.start(second.run)
            await rest.start(third.run)
            async with anyio.create_task_group() as keeper:
                await keeper.start(first.run)
                await heard.batches_where(lambda b: len(b) == 3)
                keeper.cancel_scope.cancel()  # the first joined, so it keeps the timer
            remaining = {second.instance_id, third.instance_id}
            await heard.batches_where(lambda b: {beat.instance for beat in b} == remaining, count=3)
            assert clock_for(bus, INTERVAL_S).members == 2
            rest.cancel_scope.cancel()
    assert clock_for(bus, INTERVAL_S).members == 0


async def test_the_orchestrator_keeps_instances_that_beat_in_batches_healthy(bus: Bus) -> None:
    monitor = LoadMonitor(bus, ttl_factor=3.0)
    heard = Heard()
    runners = [AgentRunner(bus, Echo(), heartbeat_s=INTERVAL_S) for _ in range(2)]
    async with anyio.create_task_group() as tg, bus.subscription(HEARTBEATS_SUBJECT, heard.on_message):
        await tg.start(monitor.run)
        for runner in runners:
            await tg.start(runner.run)
        # ten intervals: long past the three intervals of silence after which a start beat alone expires
        await heard.batches_where(lambda b: len(b) == 2, count=10)
        healthy = {i.beat.instance for i in monitor.healthy(Echo.name)}
        assert healthy == {r.instance_id for r in runners}
        tg.cancel_scope.cancel()


def _beat(instance: str, interval_s: float) -> Message:
    beat = Heartbeat(
        agent="t-silent",
        team="analysis",
        instance=instance,
        direct_subject=f"neurectomy.agent.analysis.t-silent.{instance}",
        in_flight=0,
        mailbox_depth=0,
        mailbox_size=8,
        concurrency=1,
        interval_s=interval_s,
    )
    return Message(f"{HEARTBEAT_PREFIX}.t-silent.{instance}", beat.model_dump_json().encode(), {}, "")


@pytest.mark.parametrize("replicas", [1, 2])
async def test_a_silent_instance_leaves_the_healthy_list(bus: Bus, replicas: int) -> None:
    # One replica takes a path of its own in healthy() (no list of expired ones, nothing to sort): an
    # instance whose beats stop must drop out there as with several replicas.
    monitor = LoadMonitor(bus, ttl_factor=3.0)
    if replicas == 2:
        await monitor._on_beat(_beat("lasting", 3600.0))
    await monitor._on_beat(_beat("silent", INTERVAL_S))
    assert {i.beat.instance for i in monitor.healthy("t-silent")} == {"silent", "lasting"}.difference(
        [] if replicas == 2 else ["lasting"]
    )
    with anyio.fail_after(10):  # three intervals of silence (0.15 s), however slow the machine
        while any(i.beat.instance == "silent" for i in monitor.healthy("t-silent")):
            await anyio.sleep(INTERVAL_S)
    assert [i.beat.instance for i in monitor.healthy("t-silent")] == (["lasting"] if replicas == 2 else [])
    assert monitor.load("t-silent") == (replicas - 1, 0.0)

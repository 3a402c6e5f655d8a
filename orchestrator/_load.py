"""Live view of the agent instances: who is up, and how loaded, from their heartbeats."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
import structlog
from anyio.abc import TaskStatus
from pydantic import ValidationError

from agents.messaging import Bus, Message
from agents.protocol import HEARTBEAT_PREFIX, HEARTBEATS_SUBJECT, Heartbeat, Heartbeats

__all__ = ("Instance", "LoadMonitor")

log = structlog.get_logger("neurectomy.orchestrator")


@dataclass(slots=True)
class Instance:
    """One agent instance as last heard.

    Attributes:
        beat: Its last heartbeat.
        seen: ``time.monotonic()`` when it arrived.
        dispatched: Calls this orchestrator sent it since that heartbeat (load not yet reported).
    """

    beat: Heartbeat
    seen: float
    dispatched: int = 0

    @property
    def load(self) -> float:
        """Calls in flight and waiting per worker (the lower, the sooner a new call starts)."""
        b = self.beat
        return (b.in_flight + b.mailbox_depth + self.dispatched) / max(b.concurrency, 1)


class LoadMonitor:
    """Keeps the latest heartbeat of every agent instance.

    An instance is healthy while its heartbeats keep coming (the last one younger than ``ttl_factor``
    intervals) and it is not draining. Between heartbeats, calls counted by
    :meth:`dispatched` count towards its load, so a burst does not all land on one replica.

    Args:
        bus: Connected bus.
        ttl_factor: Heartbeat intervals after which a silent instance counts as gone.
    """

    def __init__(self, bus: Bus, *, ttl_factor: float = 3.0) -> None:
        self.bus = bus
        self._ttl_factor = ttl_factor
        self._instances: dict[str, dict[str, Instance]] = {}
        self._beat = anyio.Event()
        self.started = False

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen to heartbeats until cancelled."""
        async with self.bus.subscription(f"{HEARTBEAT_PREFIX}.>", self._on_beat):
            await self.bus.flush()
            self.started = True
            task_status.started()
            await anyio.sleep_forever()

    async def _on_beat(self, msg: Message) -> None:
        """One instance's beat (its first or its last), or the periodic beats of a process's instances."""
        try:
            if msg.subject == HEARTBEATS_SUBJECT:
                beats = Heartbeats.model_validate_json(msg.data).beats
            else:
                beats = [Heartbeat.model_validate_json(msg.data)]
        except ValidationError:
            log.warning("unreadable heartbeat", subject=msg.subject)
            return
        now = time.monotonic()
        up = False
        for beat in beats:
            group = self._instances.setdefault(beat.agent, {})
            if beat.state == "draining":
                group.pop(beat.instance, None)
                continue
            group[beat.instance] = Instance(beat, now)
            up = True
        if up:
            self._beat.set()
            self._beat = anyio.Event()

    async def next_beat(self) -> None:
        """Wait for the next heartbeat of any instance that is up (e.g. to wait until replicas are seen)."""
        await self._beat.wait()

    def healthy(self, agent: str) -> list[Instance]:
        """Healthy instances of ``agent``, least loaded first (ties: by instance id, deterministic).

        Instances silent for more than ``ttl_factor`` heartbeat intervals are dropped on the way.
        """
        group = self._instances.get(agent)
        if not group:
            return []
        now, ttl = time.monotonic(), self._ttl_factor
        if len(group) == 1:  # the common case of one replica: no list of expired ones, nothing to sort
            (inst,) = group.values()
            if now - inst.seen <= inst.beat.interval_s * ttl:
                return [inst]
            group.clear()
            return []
        for key in [k for k, inst in group.items() if now - inst.seen > inst.beat.interval_s * ttl]:
            del group[key]
        if len(group) < 2:
            return list(group.values())
        return sorted(group.values(), key=lambda i: (i.load, i.beat.instance))

    def instances(self) -> int:
        """Healthy instances of every agent heard from (what a ``$SRV`` discovery should hear back)."""
        return sum(len(self.healthy(agent)) for agent in list(self._instances))

    def load(self, agent: str) -> tuple[int, float]:
        """``(healthy replicas, summed load)`` of ``agent``."""
        instances = self.healthy(agent)
        return len(instances), sum(i.load for i in instances)

    def dispatched(self, instance: Instance) -> None:
        """A call was sent to ``instance``: it counts towards its load until :meth:`done`."""
        instance.dispatched += 1

    def done(self, instance: Instance | None) -> None:
        """A call counted by :meth:`dispatched` has ended."""
        if instance is not None and instance.dispatched > 0:
            instance.dispatched -= 1

    def forget(self, instance: Instance) -> None:
        """Drop an instance that did not answer (no responders on its direct subject)."""
        group = self._instances.get(instance.beat.agent, {})
        if group.get(instance.beat.instance) is instance:
            del group[instance.beat.instance]

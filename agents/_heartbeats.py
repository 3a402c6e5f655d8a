"""One heartbeat timer per connection: the periodic beats of all its agent instances in one message.

Every :class:`~agents.actor.AgentRunner` must tell the orchestrator every ``heartbeat_s`` seconds that
it is up and how loaded it is. With one timer and one message per instance, an idle process of 40
agents woke 40 times a second, and the server and every orchestrator handled 40 messages a second.
Here the instances on one :class:`~agents.messaging.Bus` with the same interval share a
:class:`HeartbeatClock`: one timer, and per tick one :class:`~agents.protocol.Heartbeats` message on
:data:`~agents.protocol.HEARTBEATS_SUBJECT` holding every member's beat (split into several messages
past :data:`MAX_BEATS_PER_MESSAGE`). The interval, and with it the orchestrator's failure detection
(``heartbeat_ttl_factor`` intervals of silence), is unchanged.

The timer runs in the task of one member, the *keeper*; the other members wait on an event, which
costs nothing. When the keeper leaves (its runner stops), the next member takes the timer over.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import NoReturn

import anyio

from agents.messaging import Bus
from agents.protocol import HEARTBEATS_SUBJECT, Heartbeat, Heartbeats

__all__ = ("MAX_BEATS_PER_MESSAGE", "HeartbeatClock", "clock_for")

MAX_BEATS_PER_MESSAGE = 256
"""Beats per :class:`~agents.protocol.Heartbeats` message (about 250 bytes each: ~64 KB, far below
NATS's default max payload of 1 MB)."""

_clocks: weakref.WeakKeyDictionary[Bus, dict[float, HeartbeatClock]] = weakref.WeakKeyDictionary()


def clock_for(bus: Bus, interval_s: float) -> HeartbeatClock:
    """The heartbeat clock of ``bus`` for ``interval_s`` (made on first use, one per bus and interval)."""
    clocks = _clocks.setdefault(bus, {})
    clock = clocks.get(interval_s)
    if clock is None:
        clock = clocks[interval_s] = HeartbeatClock(bus, interval_s)
    return clock


class HeartbeatClock:
    """Publishes the beats of its members together, every ``interval_s`` seconds.

    Args:
        bus: Connected bus the beats go out on.
        interval_s: Seconds between two ticks.
    """

    def __init__(self, bus: Bus, interval_s: float) -> None:
        self.bus = bus
        self.interval_s = interval_s
        self._members: dict[object, Callable[[], Heartbeat]] = {}
        self._keeper: object | None = None
        self._vacant = anyio.Event()

    @property
    def members(self) -> int:
        """Instances beating on this clock."""
        return len(self._members)

    async def attend(self, beat: Callable[[], Heartbeat]) -> NoReturn:
        """Have ``beat()`` (the instance's current heartbeat) published at every tick, until cancelled.

        The instance's first beat is its own business (publish it at once, so that the orchestrator
        sees it without waiting for a tick); its beats stop when this is cancelled.
        """
        token = object()
        self._members[token] = beat
        try:
            while True:
                if self._keeper is None:
                    self._keeper = token
                if self._keeper is token:
                    await self._keep()
                else:
                    await self._vacant.wait()
        finally:
            del self._members[token]
            if self._keeper is token:
                self._keeper = None
                self._vacant.set()  # the next member to wake takes the timer over
                self._vacant = anyio.Event()

    async def _keep(self) -> NoReturn:
        next_tick = anyio.current_time() + self.interval_s
        while True:
            await anyio.sleep(max(next_tick - anyio.current_time(), 0.0))
            next_tick = max(next_tick + self.interval_s, anyio.current_time())
            await self.publish()

    async def publish(self) -> None:
        """Publish every member's current beat now (nothing while disconnected)."""
        if not self.bus.is_connected or not self._members:
            return
        beats = [beat() for beat in self._members.values()]
        for start in range(0, len(beats), MAX_BEATS_PER_MESSAGE):
            chunk = Heartbeats(beats=beats[start : start + MAX_BEATS_PER_MESSAGE])
            await self.bus.publish(HEARTBEATS_SUBJECT, chunk.model_dump_json().encode())

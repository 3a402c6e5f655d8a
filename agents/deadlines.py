"""The calls an agent instance is running, and the one timer that enforces their deadlines.

Each worker of an :class:`~agents.actor.AgentRunner` owns a :class:`WorkerSlot`: the cancel scope its
calls run in (one scope for a run of calls, replaced only after a call was cancelled, instead of a scope
with its own deadline timer per call) and the call it is running. The runner's :class:`DeadlineTimer`
keeps a single event loop timer, armed for the earliest deadline among the running calls; when it fires,
it cancels the scopes of the calls whose deadline has passed and arms itself for the next one.

Per call that costs two clock reads and a comparison (a new timer only when a call's deadline comes
before the armed one); a cancel scope with a deadline costs a timer, its cancellation and the scope's own
bookkeeping on every call, which was the largest part of an agent's CPU per call
(``benchmarks/orchestrator.py --profile agent64``).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import anyio

__all__ = ("DEADLINE_SLACK_S", "DeadlineTimer", "WorkerSlot")

DEADLINE_SLACK_S = 0.001
"""A call whose deadline is this close (seconds) when the timer fires is cancelled then, instead of the
timer being armed again for a fraction of a millisecond (event loop timers round to milliseconds)."""


class WorkerSlot:
    """One worker's running call and the cancel scope it runs in.

    Attributes:
        scope: The scope the worker's calls run in (a new one after each cancellation).
        call: The call the worker has taken (``None`` while it waits for one); an ``agents.actor.Call``.
        running: Whether the call's handler is running (only then may the scope be cancelled).
        deadline: The running call's deadline on the event loop's clock (``loop.time()`` seconds).
        expired: Whether the timer cancelled the call for its deadline.
    """

    __slots__ = ("call", "deadline", "expired", "running", "scope")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.call: Any = None
        self.running = False
        self.deadline = math.inf
        self.expired = False


class DeadlineTimer:
    """One timer for the deadlines of every call an instance runs.

    Must be used from the event loop's thread (as the workers and their handlers are).
    """

    __slots__ = ("_at", "_handle", "_loop", "_slots")

    def __init__(self) -> None:
        self._slots: list[WorkerSlot] = []
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, slot: WorkerSlot) -> None:
        """Watch ``slot`` (a worker started, on the running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._slots.append(slot)

    def remove(self, slot: WorkerSlot) -> None:
        """Stop watching ``slot`` (its worker ended); the timer stops with the last one."""
        self._slots.remove(slot)
        if not self._slots and self._handle is not None:
            self._handle.cancel()
            self._handle, self._at = None, math.inf

    def start(self, slot: WorkerSlot, deadline: float, now: float | None = None) -> None:
        """Mark ``slot``'s call running until :meth:`stop`, to be cancelled at ``deadline``.

        Args:
            slot: The worker's slot (its ``call`` set).
            deadline: Absolute deadline, ``time.time()`` seconds (the ``Neurectomy-Deadline`` header).
            now: ``time.time()`` just read by the caller (read here if ``None``).
        """
        loop = self._loop
        assert loop is not None, "start() before add()"
        at = loop.time() + (deadline - (time.time() if now is None else now))
        slot.deadline, slot.expired, slot.running = at, False, True
        if at < self._at:
            self._arm(loop, at)

    @staticmethod
    def stop(slot: WorkerSlot) -> None:
        """The slot's handler returned or raised: its scope is no longer cancelled for it."""
        slot.running = False

    def cancel_call(self, call: object, reason: str) -> bool:
        """Cancel the handler of ``call`` if a worker is running it; whether one was."""
        for slot in self._slots:
            if slot.call is call and slot.running:
                slot.scope.cancel(reason)
                return True
        return False

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._at = loop.call_at(at, self._fire), at

    def _fire(self) -> None:
        self._handle, self._at = None, math.inf
        loop = self._loop
        assert loop is not None
        now = loop.time() + DEADLINE_SLACK_S
        earliest = math.inf
        for slot in self._slots:
            if not slot.running:
                continue
            if slot.deadline <= now:
                slot.expired = True
                slot.running = False
                slot.scope.cancel("deadline passed")
            elif slot.deadline < earliest:
                earliest = slot.deadline
        if earliest < math.inf:
            self._arm(loop, earliest)

"""An agent instance's mailbox: calls accepted and not yet taken by a worker.

Bounded, and a put never waits (a full mailbox refuses: the caller fails over to another replica);
workers wait for a call. It does for :class:`agents.actor.AgentRunner` what an anyio memory object
stream did, for a fraction of the cost per call (no event, no dictionary of waiting receivers, no
library lookup per operation): a call put while a worker waits goes straight to that worker, without
taking a place in the buffer. Runs on asyncio (as the NATS client does).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ("Mailbox", "MailboxClosedError", "MailboxFullError")

T = TypeVar("T")


class MailboxFullError(Exception):
    """The buffer holds ``size`` items and no worker waits."""


class MailboxClosedError(Exception):
    """The mailbox was closed: the instance is shutting down."""


class Mailbox(Generic[T]):
    """A bounded queue from the accepting handler to the workers.

    Args:
        size: Items that may wait in the buffer while every worker is busy.
    """

    __slots__ = ("_closed", "_items", "_waiting", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: deque[T] = deque()
        self._waiting: deque[asyncio.Future[T | None]] = deque()
        self._closed = False

    @property
    def depth(self) -> int:
        """Items in the buffer (waiting for a worker)."""
        return len(self._items)

    def put_nowait(self, item: T) -> None:
        """Hand ``item`` to a waiting worker, else buffer it.

        Raises:
            MailboxFullError: The buffer is full.
            MailboxClosedError: :meth:`close` was called.
        """
        if self._closed:
            raise MailboxClosedError
        waiting = self._waiting
        while waiting:
            worker = waiting.popleft()
            if not worker.done():  # (a worker cancelled while waiting left its future behind)
                worker.set_result(item)
                return
        if len(self._items) >= self.size:
            raise MailboxFullError
        self._items.append(item)

    async def get(self) -> T | None:
        """The next item, waiting for one; ``None`` once the mailbox is closed and empty.

        Always lets the event loop run at least once: a worker that finds an item buffered yields first,
        so taking one buffered item after another does not starve the rest of the instance (the NATS
        reader among them); a worker that finds none waits for the next item handed to it (one task
        switch per item, not two).
        """
        if self._items:
            await asyncio.sleep(0)
            if self._items:  # (another worker may have taken it meanwhile)
                return self._items.popleft()
        if self._closed:
            return None
        waiter: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and (item := waiter.result()) is not None:
                # Handed over, then cancelled before the worker ran (asyncio's own cancellation; anyio
                # lets a task whose wait is over wake first): first in line again, not lost.
                self._items.appendleft(item)
            waiter.cancel()
            raise

    def close(self) -> None:
        """Refuse further items; waiting workers get ``None``, the others take what is buffered first."""
        self._closed = True
        while self._waiting:
            worker = self._waiting.popleft()
            if not worker.done():
                worker.set_result(None)

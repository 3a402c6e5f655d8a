"""The bus's generator-based contexts: an inbox on a given subject, and a subscription with a handler.

Kept apart from :mod:`agents.messaging` because mypyc, which compiles that module
(:mod:`agents._compiled`), does not compile async generators (``@asynccontextmanager`` functions
are ones). Neither is on a call's path: :meth:`~agents.messaging.Bus.inbox` with a subject, and
:meth:`~agents.messaging.Bus.subscription` (heartbeats, cancels, the task queue's bells, spans), open
once per consumer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from nats.aio.client import Client
from nats.aio.msg import Msg

from agents._inbox import Inbox, Message, Timers, to_message
from agents._natsfast import WriteTurn

__all__ = ("subject_inbox", "subscription")


@asynccontextmanager
async def subject_inbox(nc: Client, timers: Timers, turn: WriteTurn, subject: str) -> AsyncIterator[Inbox]:
    """An :class:`Inbox` subscribed to ``subject`` for the duration of the block.

    Also to ``subject.>`` for the replies of its requests, unless ``subject`` has wildcards.
    """
    box = Inbox(nc, timers, turn, subject)

    async def deliver(msg: Msg) -> None:
        box._deliver(msg)

    subs = [await nc.subscribe(subject, cb=deliver)]
    if not {"*", ">"} & set(subject.split(".")):  # replies to Inbox.request come to <subject>.r
        subs.append(await nc.subscribe(f"{subject}.>", cb=deliver))
    try:
        yield box
    finally:
        with anyio.CancelScope(shield=True):
            if not nc.is_closed:
                for sub in subs:
                    await sub.unsubscribe()


@asynccontextmanager
async def subscription(
    nc: Client, subject: str, handler: Callable[[Message], Awaitable[None]], queue: str
) -> AsyncIterator[None]:
    """Call ``handler`` for each message on ``subject`` while the block runs.

    In queue group ``queue`` unless it is ``""``; the subscription is drained at the end (at most 5 s).
    """

    async def callback(msg: Msg) -> None:
        await handler(to_message(msg))

    sub = await nc.subscribe(subject, queue=queue, cb=callback)
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            if not nc.is_closed:
                await sub.drain()  # type: ignore[no-untyped-call]

"""Replies to a caller in this same process, handed to its inbox without nats-server.

In ``neurectomy serve`` the agents and the API/orchestrator share one process and one event loop, yet
every reply and stream chunk went agent → socket → nats-server → socket → caller. A :class:`LocalInbox`
is a bus's wildcard inbox subscription (``<prefix>.>``) as seen from the same process: every
:class:`agents.messaging.Bus` registers it here when it starts its inboxes and unregisters it when it
closes (:func:`register`), and an agent finds the caller's inbox by the reply subject of a request it
received (:func:`find`) and delivers its accept, chunks and ``End``/``Error`` to it directly
(:meth:`LocalInbox.deliver`): the caller's ``Bus._demux`` → ``Inbox._deliver`` gets the
:class:`~agents._message.Message` the inbox would have made of the reader's ``Msg`` (no headers: an agent's
answers carry none), without a ``Msg`` first, so the queue, push sink, reply
slot and waiter behave as before, and a message for an inbox already closed is dropped as before.

An agent answering a request that was itself handed over in this process (an
:class:`~agents._message.LocalRequest`) is given the caller's inbox with it and delivers to that directly
(``Inbox.deliver``, the same ``Inbox._deliver`` without the look-up); this module finds the caller for
requests that came over NATS.

Only answers take this path (a request still goes over NATS: queue groups, failover, discovery), and only
to the reply subject of a request received (``<inbox>.r``) or the inbox it names (``<inbox>``), as NATS
``allow_responses`` would permit: see ``Call`` in :mod:`agents._call`.

Delivery is a direct call, not ``loop.call_soon``: ``Inbox._deliver`` never waits and is written to run in
any context (nats-py's read loop task, or a loop callback outside any task when bytes are handed over
eagerly); the sender is an agent's worker task or the bridge's loop callback, and the receiving side
(queue, futures, the API's push sink writing to the HTTP transport) calls nothing of the agent's back,
synchronously (a cancel goes over NATS). A direct call keeps the sender's order without any queue and
costs no loop turn, which is the point. What the receiving side raises is logged, never passed to the
agent (as :class:`agents._natsfast.DirectQueue` does for nats-py's reader).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from agents._inbox import LOCAL_ANSWERS, REPLY_SUFFIX
from agents._message import Message, new_message

__all__ = ("LocalInbox", "delivered", "find", "register")

log = structlog.get_logger("neurectomy.nats")


_INBOXES: dict[str, LocalInbox] = {}
"""Inbox prefix (``_INBOX.<nuid>``) → the bus's inbox subscription, for every bus of this process."""


def delivered() -> int:
    """Messages delivered to an inbox in this process without nats-server, since the process started."""
    return LOCAL_ANSWERS.value


class LocalInbox:
    """One bus's wildcard inbox subscription, reachable from the same process.

    Args:
        prefix: The subscription's prefix (it receives ``<prefix>.>``).
        demux: Takes each message, as the subscription's reader callback does (``Bus._demux``).
    """

    __slots__ = ("_demux", "_loop", "prefix")

    def __init__(self, prefix: str, demux: Callable[[Message], None]) -> None:
        self.prefix = prefix
        self._demux: Callable[[Message], None] | None = demux
        self._loop = asyncio.get_running_loop()

    @property
    def is_open(self) -> bool:
        """Whether it still takes messages (its bus has not begun to close)."""
        return self._demux is not None

    def close(self) -> None:
        """Take no more messages and unregister; idempotent.

        What is delivered later is dropped, as nats-server drops a message for a subscription that is gone.
        """
        self._demux = None
        if _INBOXES.get(self.prefix) is self:
            del _INBOXES[self.prefix]

    def deliver(self, subject: str, data: bytes) -> None:
        """Hand a message without headers on ``subject`` (under :attr:`prefix`) to the receiving bus now.

        Never raises: what the receiving side raises is logged. Dropped if the inbox closed.
        """
        demux = self._demux
        if demux is None:
            return
        LOCAL_ANSWERS.value += 1
        try:
            demux(new_message(subject, data, {}, ""))
        except Exception:
            log.exception("local delivery failed", subject=subject)


def register(prefix: str, demux: Callable[[Message], None]) -> LocalInbox:
    """Make a bus's inbox subscription ``<prefix>.>`` reachable by :func:`find`; :meth:`LocalInbox.close` it.

    Must be called in the event loop the bus runs in.
    """
    box = _INBOXES[prefix] = LocalInbox(prefix, demux)
    return box


def find(reply: str) -> LocalInbox | None:
    """The inbox subscription in this process and event loop that receives ``reply``, if any.

    ``reply`` is a fresh inbox's reply subject (``<prefix>.<key>.r``) or the inbox itself
    (``<prefix>.<key>``); any other subject (an inbox of :meth:`Bus.inbox` with a subject of its own, a
    bus in another process or loop) gives ``None``.
    """
    if not _INBOXES:
        return None
    head = reply.removesuffix(REPLY_SUFFIX)
    box = _INBOXES.get(head.rpartition(".")[0])
    if box is None or box._loop is not asyncio.get_running_loop():
        return None
    return box

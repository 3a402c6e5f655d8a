"""The project's NATS client: :class:`Bus` (connection, request/reply, inboxes, micro services, discovery).

Only this module and its parts import ``nats`` (an import-linter contract holds them to that); the
orchestrator and the agents speak to NATS through :class:`Bus`, so NATS errors are turned into
``agents.errors`` here and nowhere else. The parts, each re-exported here where public:

- :mod:`agents._natsconnect`: :class:`NatsAuth`, :func:`server_urls`, the connection itself;
- :mod:`agents._natsfast`: the shortcuts through nats-py's send buffer and read loop;
- :mod:`agents._inbox`: :class:`Inbox`, :class:`Message` and the inboxes' one deadline timer;
- :mod:`agents._localinbox`: answers to a caller in this same process, delivered without nats-server
  (:attr:`Bus.local_replies`, :meth:`Bus.local_inbox`, :meth:`Bus.send_local`);
- :mod:`agents._localrequest`: requests to an agent instance in this same process, handed to its endpoint
  without nats-server (:attr:`Bus.local_requests`);
- :mod:`agents._service`: :meth:`Bus.service` (:data:`Handler`, :data:`StatsData`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import nats.errors
from mypy_extensions import mypyc_attr
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from agents._inbox import Inbox, Message, Timers
from agents._localinbox import LocalInbox, delivered, find, register
from agents._localrequest import requests_delivered
from agents._message import LocalTarget
from agents._natsconnect import NatsAuth, PermissionDenials, connect, server_urls
from agents._natsfast import (
    CONNECTED,
    WriteTurn,
    deliver_from_reader,
    drop_unsent,
    flush_in_order,
    publish,
    send_now,
    use_fast_parser,
)
from agents._service import Handler, StatsData, micro_service
from agents._subscriptions import subject_inbox, subscription
from agents.errors import DeadlineExceededError, NoRespondersError
from agents.natsheaders import parse_header_lines

__all__ = ("Bus", "Handler", "Inbox", "Message", "NatsAuth", "StatsData", "server_urls")

_INBOX_FLUSH_TIMEOUT_S = 10.0
"""How long the first inbox of a bus waits for the server to confirm its subscription (a PING's PONG)."""

JETSTREAM_STARTUP_TIMEOUT_S = 60.0
"""Default of how long setting up JetStream streams, consumers and KV buckets waits for a cluster that is not
ready yet (no meta or stream leader), in seconds (the setting ``nats.jetstream_startup_timeout_s``)."""


class _FreshInbox:
    """The context of :meth:`Bus.inbox` without a subject (:meth:`Bus.open_inbox`, :meth:`Bus.close_inbox`).

    A class rather than a generator-based context manager: every call to an agent opens one.
    """

    __slots__ = ("_box", "_bus")

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._box: Inbox | None = None

    async def __aenter__(self) -> Inbox:
        box = self._box = await self._bus.open_inbox()
        return box

    async def __aexit__(self, *exc_info: object) -> None:
        if self._box is not None:
            self._bus.close_inbox(self._box)


@mypyc_attr(native_class=False)  # compiled methods, a Python class: _heartbeats holds it weakly
class Bus:
    """A connected NATS client with the operations the orchestrator and agents need.

    Create with :meth:`connect`; use as an async context manager or call :meth:`aclose`.
    """

    def __init__(self, nc: Client, *, denials: PermissionDenials | None = None) -> None:
        # nats-py's header parser, replaced on this client by one returning the same dict at a fraction of
        # the cost (agents.natsheaders); nats-py's status-line handling around it stays.
        nc._parse_header_lines = parse_header_lines  # type: ignore[method-assign]
        use_fast_parser(nc)  # messages for the subscriptions delivered from the reader: no detours
        self._nc = nc
        self._closed = False
        self.stream_replicas = 1
        """Replicas of the JetStream streams and KV buckets created on this bus (set by the runtime)."""
        self.jetstream_startup_timeout_s = JETSTREAM_STARTUP_TIMEOUT_S
        """How long JetStream set-up on this bus waits for a cluster still electing leaders, in seconds
        (set by the runtime from ``nats.jetstream_startup_timeout_s``; see :mod:`agents.jetstream`)."""
        self.permission_denials = denials or PermissionDenials()
        """The permission violations the server reported on this connection (filled by :meth:`connect`)."""
        # One wildcard subscription, <prefix>.>, carries every inbox of this bus (made on first use).
        self._inboxes: dict[str, Inbox] = {}
        self._inbox_prefix = ""
        self._inbox_sub: Subscription | None = None
        self._inbox_lock = anyio.Lock()
        self._inbox_ids = itertools.count()
        self._timers = Timers()
        self._turn = WriteTurn()
        self._local: LocalInbox | None = None
        self.local_replies = False
        """Whether answers to a request this bus received go straight to the caller's inbox when that inbox
        is a bus's of this process and event loop (:meth:`local_inbox`), without nats-server (set by the
        runtime from ``nats.local_replies``; off: every message goes over NATS)."""
        self.local_requests = False
        """Whether a request to an agent instance's direct subject goes straight to its endpoint when that
        endpoint is in this process and event loop (:mod:`agents._localrequest`), without nats-server. Set by
        the runtime from ``nats.local_requests``, and only on a bus whose NATS role may publish to agent
        subjects (off: every request goes over NATS)."""

    @classmethod
    async def connect(
        cls, url: str, *, name: str, connect_timeout_s: float = 2.0, auth: NatsAuth | None = None
    ) -> Bus:
        """Connect to the NATS server at ``url`` (or to one of a comma-separated list of servers).

        Args:
            url: ``nats://host:4222``, or several separated by commas.
            name: Client name (shown by the server).
            connect_timeout_s: How long to try, in seconds.
            auth: Credentials and TLS (none by default).

        Raises:
            ConnectionError: No server can be reached within ``connect_timeout_s`` seconds, or the server
                refused the credentials (``Authorization Violation``).
        """
        denials = PermissionDenials()
        nc = await connect(url, name=name, connect_timeout_s=connect_timeout_s, auth=auth, denials=denials)
        return cls(nc, denials=denials)

    @property
    def inboxes_started(self) -> bool:
        """Whether :meth:`open_inbox_now` can open inboxes (the first :meth:`open_inbox` started them)."""
        return self._inbox_sub is not None

    @property
    def is_connected(self) -> bool:
        """Whether the client is connected right now."""
        return bool(self._nc.is_connected)

    @property
    def server_version(self) -> str:
        """Version of the connected nats-server."""
        return str(self._nc.connected_server_version)

    @property
    def max_payload(self) -> int:
        """Largest message the server accepts, in bytes."""
        return int(self._nc._max_payload)  # (nats-py's max_payload property: read on every call)

    def new_inbox(self) -> str:
        """A unique subject for replies to this client."""
        return str(self._nc.new_inbox())

    async def publish(
        self, subject: str, data: bytes, headers: dict[str, str] | None = None, *, reply: str = ""
    ) -> None:
        """Publish one message (fire and forget at the NATS level); ``reply`` is its reply subject."""
        await publish(self._nc, subject, data, headers, reply)

    async def request(
        self, subject: str, data: bytes, *, headers: dict[str, str] | None = None, timeout_s: float
    ) -> Message:
        """Send a request and wait for its reply.

        Raises:
            NoRespondersError: Nobody is subscribed to ``subject`` (answered at once by the server), or
                the connection to NATS is down.
            DeadlineExceededError: No reply within ``timeout_s`` seconds.
        """
        async with self.inbox() as box:
            return await box.request(subject, data, headers=headers, timeout_s=timeout_s)

    def _demux(self, msg: Msg | Message) -> None:
        key = msg.subject[len(self._inbox_prefix) + 1 :].partition(".")[0]
        box = self._inboxes.get(key)
        if box is not None:  # else: a late message for a finished call
            box._deliver(msg)

    async def _start_inboxes(self) -> None:
        async with self._inbox_lock:
            if self._inbox_sub is None:
                prefix = self.new_inbox()
                # No callback: nats-py would run a task that takes each message from the subscription's
                # queue; the queue is replaced by one that hands it to _demux in nats-py's read loop, or
                # (eager) as its bytes arrive while that loop waits (agents._natsfast.FastParser.take_eager).
                sub = await self._nc.subscribe(f"{prefix}.>")
                deliver_from_reader(sub, self._demux, eager=True, message=self._demux)
                # A request handed to an agent in this process (local_requests) skips nats-server, so it no
                # longer follows this SUB on the wire; an answer the agent sends over NATS (an error reply,
                # or with local_replies off) would be dropped by a server that has not seen the SUB yet
                # (seen under load: a refused request's error reply lost). So wait for the server's PONG
                # after the SUB (flush_in_order: nats-py's own flush writes its PING ahead of the pending
                # SUB). One round trip, once per bus.
                with contextlib.suppress(nats.errors.Error):  # not connected: the SUB goes with the reconnect
                    await flush_in_order(self._nc, _INBOX_FLUSH_TIMEOUT_S)
                self._inbox_sub = sub
                self._inbox_prefix = prefix
                self._local = register(prefix, self._demux)

    async def open_inbox(self) -> Inbox:
        """A fresh inbox (a token under this bus's wildcard subscription); :meth:`close_inbox` it after use.

        :meth:`inbox` without a subject is the same as a context manager.
        """
        if self._inbox_sub is None:
            await self._start_inboxes()
        return self.open_inbox_now()

    def open_inbox_now(self) -> Inbox:
        """:meth:`open_inbox` without a coroutine, once this bus's inbox subscription exists.

        Raises:
            RuntimeError: No inbox was opened on this bus yet (use :meth:`open_inbox` once).
        """
        if self._inbox_sub is None:
            raise RuntimeError("the bus's inbox subscription is not started: await open_inbox() first")
        key = str(next(self._inbox_ids))
        box = self._inboxes[key] = Inbox(
            self._nc,
            self._timers,
            self._turn,
            f"{self._inbox_prefix}.{key}",
            self._inboxes,
            local_requests=self.local_requests,
        )
        return box

    def close_inbox(self, box: Inbox) -> None:
        """Stop delivering to ``box`` (made by :meth:`open_inbox`); later messages to it are dropped."""
        self._inboxes.pop(box.subject[len(self._inbox_prefix) + 1 :], None)
        box.close()  # (an agent in this process holding it drops its later answers)

    def inbox(self, subject: str | None = None) -> AbstractAsyncContextManager[Inbox]:
        """An inbox receiving on ``subject`` (a fresh one if ``None``) for the duration of the block.

        A fresh inbox costs no NATS subscription: it is a token under this bus's one wildcard
        subscription. A given ``subject`` gets its own subscription (and one to ``subject.>`` for the
        replies of :meth:`Inbox.request`, unless ``subject`` has wildcards).
        """
        if subject is None:
            return _FreshInbox(self)
        return subject_inbox(self._nc, self._timers, self._turn, subject)

    def subscription(
        self, subject: str, handler: Callable[[Message], Awaitable[None]], *, queue: str = ""
    ) -> AbstractAsyncContextManager[None]:
        """Call ``handler`` for each message on ``subject`` while the block runs (then drain)."""
        return subscription(self._nc, subject, handler, queue)

    def service(
        self,
        *,
        name: str,
        description: str,
        metadata: dict[str, str],
        subject: str,
        queue_group: str,
        handler: Handler,
        stats_data: StatsData,
    ) -> AbstractAsyncContextManager[str]:
        """Register a NATS micro service with one endpoint; yields the instance id.

        ``$SRV.PING``, ``$SRV.INFO`` and ``$SRV.STATS`` answer for it while the block runs; ``handler``
        runs from nats-py's reader and must not block. The arguments and the second, per-instance
        endpoint are described at :func:`agents._service.micro_service`.
        """
        return micro_service(
            self._nc,
            name=name,
            description=description,
            metadata=metadata,
            subject=subject,
            queue_group=queue_group,
            handler=handler,
            stats_data=stats_data,
        )

    def publish_now(self, subject: str, data: bytes, *, at_once: bool = False, write: bool = False) -> bool:
        """Queue one message (no headers, no reply subject) for sending without waiting.

        For an agent's replies and stream messages (:func:`agents._natsfast.send_now`): in order
        with :meth:`publish`, one coroutine call fewer per message.

        Args:
            subject: Where to publish.
            data: The payload.
            at_once: Write it to the connection now if it is the first message of this turn of the event
                loop and nothing else is pending (the bus's :class:`WriteTurn`, as for requests): for the
                answer of the only call an agent has in hand, which then leaves without waiting for
                nats-py's flusher task. Else (many calls at once) the answers of a turn leave together.
            write: Write it to the connection now if nothing else is pending, without marking the turn:
                the caller knows it is the only message of its turn (one generation's chunk of a delivery).

        Returns:
            Whether it was queued; if not (reconnecting, the send buffer full, a subject nats-py refuses),
            send it with :meth:`publish`, which waits or raises.
        """
        return send_now(self._nc, subject, data, turn=self._turn if at_once else None, write=write)

    def local_inbox(self, reply: str) -> LocalInbox | None:
        """The caller's inbox, if a request received with reply subject ``reply`` came from this process.

        ``None`` unless :attr:`local_replies` is on and ``reply`` (``<inbox>.r``, or ``<inbox>``) is a fresh
        inbox (:meth:`open_inbox`) of a bus of this process and event loop; answers to it then go through
        :meth:`send_local`. Only for the reply subject of a request this bus received (as NATS
        ``allow_responses`` permits), never for a subject a message merely names.
        """
        return find(reply) if self.local_replies else None

    @staticmethod
    def local_deliveries() -> int:
        """Messages delivered to an inbox in this process without nats-server since the process started.

        All buses of the process together (:meth:`send_local`).
        """
        return delivered()

    @staticmethod
    def local_requests_delivered() -> int:
        """Requests handed to an agent instance's endpoint in this process without nats-server.

        Since the process started, all buses together (:attr:`local_requests`).
        """
        return requests_delivered()

    def send_local(self, box: LocalTarget, subject: str, data: bytes) -> bool:
        """Deliver ``data`` (no headers) on ``subject`` to ``box`` now, if NATS would.

        ``box``: the caller's inbox subscription (:meth:`local_inbox`), or its inbox itself (named by an
        ``agents._message.LocalRequest``).

        The conditions NATS puts on a publish hold: this connection is up (not reconnecting, draining or
        closed) and ``data`` is within :attr:`max_payload`. A message for an inbox closed meanwhile is
        dropped, as nats-server drops one nobody subscribes to.

        Returns:
            Whether it was taken; if not, nothing was delivered and it must go over NATS (:meth:`publish`,
            which waits or raises as for any message), and so must every later message of the same call,
            so that they stay in order behind it.
        """
        nc = self._nc  # (nats-py's is_connected and max_payload properties read directly: every answer)
        if (nc._status != CONNECTED and not nc.is_connected) or len(data) > nc._max_payload:
            return False
        box.deliver(subject, data)
        return True

    async def discover(
        self, verb: str = "INFO", *, timeout_s: float = 0.25, quiet_s: float = 0.05, expect: int = 1
    ) -> list[dict[str, Any]]:
        """Ask every micro service instance ``$SRV.<verb>`` and collect the answers.

        Collection stops ``quiet_s`` seconds after the last answer once ``expect`` answers are in, or
        after ``timeout_s`` in all. A caller that knows how many instances run (from their heartbeats)
        passes that count, so that a gap between answers on a busy machine does not end it early.

        Args:
            verb: ``PING``, ``INFO`` or ``STATS``.
            timeout_s: Upper bound on the whole collection, in seconds.
            quiet_s: Gap after an answer that ends the collection early, in seconds.
            expect: Answers to wait for (up to ``timeout_s``) before a quiet gap may end the collection.
        """
        answers: list[dict[str, Any]] = []
        end = time.monotonic() + timeout_s
        async with self.inbox() as box:
            await self._nc.publish(f"$SRV.{verb}", b"", reply=box.subject)
            while (remaining := end - time.monotonic()) > 0:
                wait = remaining if len(answers) < max(expect, 1) else min(remaining, quiet_s)
                try:
                    msg = await box.next(wait)
                except (DeadlineExceededError, NoRespondersError):
                    break
                try:
                    answers.append(json.loads(msg.data))
                except ValueError:
                    continue
        return answers

    async def flush(self, timeout_s: float = 2.0) -> None:
        """Wait until the server has processed everything sent so far (subscriptions made are in place).

        Raises:
            nats.errors.FlushTimeoutError: The server did not answer within ``timeout_s``.
        """
        await flush_in_order(self._nc, timeout_s)

    async def aclose(self) -> None:
        """Drain subscriptions and close the connection (a lost connection's unsent messages are dropped).

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self._local is not None:  # no more local deliveries: as the subscription's drain ends NATS's
            self._local.close()
            for box in self._inboxes.values():  # (nor to an inbox an agent was given by a LocalRequest)
                box.close()
        if self._nc.is_closed:
            return
        with anyio.move_on_after(5):
            try:
                await self._nc.drain()
            except nats.errors.Error:  # e.g. reconnecting: nothing to drain
                pass
        if not self._nc.is_closed:
            drop_unsent(self._nc)  # the server is gone: closing must not try to send what waits
            try:
                await self._nc.close()
            except asyncio.CancelledError:
                # nats-py's close awaits the lost transport's close waiter, which its own reconnect
                # attempt can leave cancelled (seen under load): not a cancellation of this task, which
                # is re-raised (anyio cancels through Task.cancel, so cancelling() counts it).
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

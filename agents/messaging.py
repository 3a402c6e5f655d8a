"""The project's one NATS module: connection, request/reply, inboxes, micro services, discovery.

Only this module imports ``nats`` (an import-linter contract holds it to that); the orchestrator and the
agents speak to NATS through :class:`Bus`, so NATS errors are turned into ``agents.errors`` here and
nowhere else.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import nats
import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointConfig, EndpointStats, Service, ServiceConfig
from nats.protocol.command import hpub_cmd, pub_cmd

from agents.errors import AgentError, DeadlineExceededError, NoRespondersError
from agents.natsdelivery import deliver_directly, publish_now
from agents.natsheaders import header_block, parse_header_lines
from agents.protocol import SERVICE_VERSION

_NO_RESPONDERS = "503"
log = structlog.get_logger("neurectomy.nats")


@dataclass(frozen=True, slots=True)
class Message:
    """A received NATS message.

    Attributes:
        subject: Subject it was published on.
        data: Payload bytes.
        headers: NATS headers (empty dict when none).
        reply: Reply subject, or ``""``.
    """

    subject: str
    data: bytes
    headers: dict[str, str]
    reply: str


@dataclass(frozen=True, slots=True)
class NatsAuth:
    """How a client proves who it is to NATS, and how it checks the server (all optional).

    Attributes:
        user: User name (with ``password``).
        password: Password of ``user``.
        credentials_file: A ``.creds`` file (user JWT and nkey seed; NATS decentralised auth).
        nkey_seed_file: A file holding an nkey seed (``SU...``).
        tls_ca_file: PEM CA bundle that verifies the server's certificate (turns TLS on).
        tls_cert_file: PEM client certificate (mutual TLS; with ``tls_key_file``).
        tls_key_file: PEM key of ``tls_cert_file``.
    """

    user: str | None = None
    password: str | None = None
    credentials_file: Path | None = None
    nkey_seed_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context (``None`` when neither a CA nor a client certificate is given).

        Raises:
            OSError: A certificate file cannot be read.
            ssl.SSLError: A certificate or key is invalid.
        """
        if self.tls_ca_file is None and self.tls_cert_file is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls_ca_file) if self.tls_ca_file else None)
        if self.tls_cert_file is not None:
            key = str(self.tls_key_file) if self.tls_key_file else None
            context.load_cert_chain(str(self.tls_cert_file), key)
        return context

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``nats.aio.client.Client.connect`` for these settings."""
        options: dict[str, Any] = {}
        if self.user is not None:
            options["user"] = self.user
            options["password"] = self.password or ""
        if self.credentials_file is not None:
            options["user_credentials"] = str(self.credentials_file)
        if self.nkey_seed_file is not None:
            options["nkeys_seed"] = str(self.nkey_seed_file)
        context = self.tls_context()
        if context is not None:
            options["tls"] = context
        return options


def server_urls(url: str) -> list[str]:
    """``nats://a:4222,nats://b:4222`` as a list of server URLs (a cluster's seed servers)."""
    return [u.strip() for u in url.split(",") if u.strip()]


_WHITESPACE = re.compile(r"\s")


async def _publish(nc: Client, subject: str, data: bytes, headers: dict[str, str] | None, reply: str) -> None:
    """``nc.publish``, with the header block from :func:`header_block` when there are headers.

    Goes through nats-py's own send path (its pending buffer and flusher). Whatever that fast path
    does not check (the connection's state, the payload limit, an empty subject or one with whitespace)
    is left to ``nc.publish``, which raises nats-py's errors for it.
    """
    if (
        nc._status != Client.CONNECTED
        or not subject
        or len(data) > nc.max_payload
        or _WHITESPACE.search(subject)
        or (reply and _WHITESPACE.search(reply))
    ):
        await nc.publish(subject, data, reply=reply, headers=headers)
        return
    nc.stats["out_msgs"] += 1
    nc.stats["out_bytes"] += len(data)
    if headers:
        await nc._send_command(hpub_cmd(subject, reply, header_block(headers), data))
    else:  # (an agent's replies and stream messages)
        await nc._send_command(pub_cmd(subject, reply, data))
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()


def _message(msg: Msg) -> Message:
    return Message(msg.subject, msg.data, dict(msg.headers or {}), msg.reply or "")


class Inbox:
    """Messages sent to one subject, read one at a time, with a timeout per read.

    Made by :meth:`Bus.inbox`. Arriving messages are buffered (unbounded: an inbox lives for one call)
    until read; a read waits on a future with a timer instead of a task per read. :meth:`request` sends a
    request whose reply comes to this inbox too (on ``<subject>.r``), so one call needs no other inbox.
    """

    __slots__ = ("_bus", "_queue", "_reply", "_reply_subject", "_waiter", "subject")

    def __init__(self, bus: Bus, subject: str) -> None:
        self._bus = bus
        self.subject = subject
        self._queue: deque[Msg] = deque()
        self._reply_subject = f"{subject}.r"
        self._reply: Msg | None = None
        self._waiter: asyncio.Future[None] | None = None

    def _deliver(self, msg: Msg) -> None:
        if msg.subject == self._reply_subject:
            self._reply = msg
        else:
            self._queue.append(msg)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout_s: float) -> None:
        """Wait until a message arrives or ``timeout_s`` seconds pass (whichever comes first)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout_s, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def next(self, timeout_s: float) -> Message:
        """The next message.

        Raises:
            DeadlineExceededError: Nothing arrived within ``timeout_s`` seconds.
            NoRespondersError: The message is a NATS 503 status (nobody received the request).
        """
        if timeout_s <= 0:
            raise DeadlineExceededError("deadline passed while waiting for the agent")
        if not self._queue:
            await self._wait(timeout_s)
            if not self._queue:
                raise DeadlineExceededError(f"no message on {self.subject} within {timeout_s:.3f} s")
        msg = self._queue.popleft()
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            raise NoRespondersError(f"no responders on {msg.subject}")
        return _message(msg)

    async def request(
        self, subject: str, data: bytes, *, headers: dict[str, str] | None = None, timeout_s: float
    ) -> Message:
        """Send a request with this inbox as the reply subject and wait for its reply.

        Messages that arrive on :attr:`subject` meanwhile (say, a stream that starts before the reply)
        stay buffered for :meth:`next`. One request at a time per inbox.

        Raises:
            NoRespondersError: Nobody is subscribed to ``subject`` (answered at once by the server), or
                the connection to NATS is down.
            DeadlineExceededError: No reply within ``timeout_s`` seconds.
        """
        if timeout_s <= 0:
            raise DeadlineExceededError(f"deadline passed before the request to {subject}")
        nc = self._bus._nc
        if not nc.is_connected:  # reconnecting: answer now instead of buffering until the timeout
            raise NoRespondersError(f"NATS is not connected (request to {subject} not sent)")
        self._reply = None
        await _publish(nc, subject, data, headers, self._reply_subject)
        if self._reply is None:
            deadline = time.monotonic() + timeout_s
            while self._reply is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceededError(f"no reply from {subject} within {timeout_s:.3f} s")
                await self._wait(remaining)
        msg, self._reply = self._reply, None
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            raise NoRespondersError(f"no agent listens on {subject}")
        return _message(msg)


class _FreshInbox:
    """The context of :meth:`Bus.inbox` without a subject: a token under the bus's wildcard subscription.

    A class rather than a generator-based context manager: every call to an agent opens one.
    """

    __slots__ = ("_bus", "_key")

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._key = ""

    async def __aenter__(self) -> Inbox:
        bus = self._bus
        if bus._inbox_sub is None:
            await bus._start_inboxes()
        key = self._key = str(next(bus._inbox_ids))
        box = bus._inboxes[key] = Inbox(bus, f"{bus._inbox_prefix}.{key}")
        return box

    async def __aexit__(self, *exc_info: object) -> None:
        del self._bus._inboxes[self._key]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


Handler = Callable[[Message], bytes | None]
"""A service endpoint's handler: the reply bytes, or ``None`` if it answers ``Message.reply`` itself later.

It never waits: it runs from nats-py's reader (:mod:`agents.natsdelivery`)."""
StatsData = Callable[[], dict[str, Any]]


class Bus:
    """A connected NATS client with the operations the orchestrator and agents need.

    Create with :meth:`connect`; use as an async context manager or call :meth:`aclose`.
    """

    def __init__(self, nc: Client) -> None:
        # nats-py's header parser, replaced on this client by one returning the same dict at a fraction of
        # the cost (agents.natsheaders); nats-py's status-line handling around it stays.
        nc._parse_header_lines = parse_header_lines  # type: ignore[method-assign]
        self._nc = nc
        self._closed = False
        self.stream_replicas = 1
        """Replicas of the JetStream streams and KV buckets created on this bus (set by the runtime)."""
        # One wildcard subscription, <prefix>.>, carries every inbox of this bus (made on first use).
        self._inboxes: dict[str, Inbox] = {}
        self._inbox_prefix = ""
        self._inbox_sub: Subscription | None = None
        self._inbox_lock = anyio.Lock()
        self._inbox_ids = itertools.count()

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
        connected = False

        async def on_error(exc: Exception) -> None:
            if not connected and "authorization violation" in str(exc).lower():
                raise exc  # refused credentials: fail now instead of retrying them forever
            log.warning("nats client error", error=f"{type(exc).__name__}: {exc}")

        nc = Client()
        try:
            await nc.connect(
                servers=server_urls(url),
                name=name,
                error_cb=on_error,
                connect_timeout=max(1, math.ceil(connect_timeout_s)),
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,  # type: ignore[arg-type]  # seconds; nats-py annotates int, uses float
                **(auth.connect_options() if auth is not None else {}),
            )
        except (OSError, nats.errors.Error) as exc:
            with anyio.CancelScope(shield=True):
                await nc.close()
            raise ConnectionError(f"cannot connect to NATS at {url}: {exc}") from exc
        connected = True
        return cls(nc)

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
        return int(self._nc.max_payload)

    def new_inbox(self) -> str:
        """A unique subject for replies to this client."""
        return str(self._nc.new_inbox())

    async def publish(
        self, subject: str, data: bytes, headers: dict[str, str] | None = None, *, reply: str = ""
    ) -> None:
        """Publish one message (fire and forget at the NATS level); ``reply`` is its reply subject."""
        await _publish(self._nc, subject, data, headers, reply)

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

    async def _demux(self, msg: Msg) -> None:
        key = msg.subject[len(self._inbox_prefix) + 1 :].partition(".")[0]
        box = self._inboxes.get(key)
        if box is not None:  # else: a late message for a finished call
            box._deliver(msg)

    async def _start_inboxes(self) -> None:
        async with self._inbox_lock:
            if self._inbox_sub is None:
                prefix = self.new_inbox()
                self._inbox_sub = await self._nc.subscribe(f"{prefix}.>", cb=self._demux)
                self._inbox_prefix = prefix

    def inbox(self, subject: str | None = None) -> AbstractAsyncContextManager[Inbox]:
        """An inbox receiving on ``subject`` (a fresh one if ``None``) for the duration of the block.

        A fresh inbox costs no NATS subscription: it is a token under this bus's one wildcard
        subscription. A given ``subject`` gets its own subscription (and one to ``subject.>`` for the
        replies of :meth:`Inbox.request`, unless ``subject`` has wildcards).
        """
        if subject is None:
            return _FreshInbox(self)
        return self._subject_inbox(subject)

    @asynccontextmanager
    async def _subject_inbox(self, subject: str) -> AsyncIterator[Inbox]:
        box = Inbox(self, subject)

        async def deliver(msg: Msg) -> None:
            box._deliver(msg)

        subs = [await self._nc.subscribe(subject, cb=deliver)]
        if not {"*", ">"} & set(subject.split(".")):  # replies to Inbox.request come to <subject>.r
            subs.append(await self._nc.subscribe(f"{subject}.>", cb=deliver))
        try:
            yield box
        finally:
            with anyio.CancelScope(shield=True):
                if not self._nc.is_closed:
                    for sub in subs:
                        await sub.unsubscribe()

    @asynccontextmanager
    async def subscription(
        self, subject: str, handler: Callable[[Message], Awaitable[None]], *, queue: str = ""
    ) -> AsyncIterator[None]:
        """Call ``handler`` for each message on ``subject`` while the block runs (then drain)."""

        async def callback(msg: Msg) -> None:
            await handler(_message(msg))

        sub = await self._nc.subscribe(subject, queue=queue, cb=callback)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                if not self._nc.is_closed:
                    await sub.drain()  # type: ignore[no-untyped-call]

    @asynccontextmanager
    async def service(
        self,
        *,
        name: str,
        description: str,
        metadata: dict[str, str],
        subject: str,
        queue_group: str,
        handler: Handler,
        stats_data: StatsData,
    ) -> AsyncIterator[str]:
        """Register a NATS micro service with one endpoint; yields the instance id.

        ``$SRV.PING``, ``$SRV.INFO`` and ``$SRV.STATS`` answer for it while the block runs;
        ``stats_data()`` fills the endpoint's ``data`` in STATS. ``handler`` returns the reply bytes, or
        ``None`` if it publishes the reply to the request's reply subject (``Message.reply``) itself later;
        if it raises an :class:`AgentError`, the reply is a micro error with the wire code. It runs from
        nats-py's reader as each request is parsed (:func:`agents.natsdelivery.deliver_directly`), so it
        must not block.

        A second endpoint, ``<subject>.<instance id>``, reaches this instance alone (the orchestrator
        sends there to pick the least-loaded replica; the shared ``subject`` is the fallback).
        """

        async def endpoint(request: Request) -> None:
            # nats.micro's Request keeps the reply subject to itself; the handler may answer it later.
            # Read from its message directly: Request's properties cost a call each on every request.
            try:
                reply = on_request(request._msg)
            except AgentError as exc:
                await request.respond_error(exc.code, exc.message)
                return
            if reply is not None:
                await request.respond(reply)

        def on_request(raw: Msg) -> bytes | None:
            return handler(Message(raw.subject, raw.data, raw.headers or {}, raw.reply or ""))

        def stats(_: EndpointStats) -> dict[str, Any]:
            return stats_data()

        later_in, later_out = anyio.create_memory_object_stream[tuple[str, bytes, dict[str, str] | None]](
            math.inf
        )

        async def send_later() -> None:  # answers publish_now could not queue
            async with later_out:
                async for to, body, headers in later_out:
                    try:
                        await _publish(self._nc, to, body, headers, "")
                    except (nats.errors.Error, OSError) as exc:
                        log.warning("reply not sent", subject=to, error=f"{type(exc).__name__}: {exc}")

        def later(to: str, body: bytes, headers: dict[str, str] | None) -> None:
            later_in.send_nowait((to, body, headers))

        config = ServiceConfig(
            name=name,
            version=SERVICE_VERSION,
            description=description,
            metadata=metadata,
            queue_group=queue_group,
            stats_handler=stats,
        )
        svc: Service = await add_service(self._nc, config)
        try:
            async with anyio.create_task_group() as tg, later_in:
                tg.start_soon(send_later)
                await svc.add_endpoint(
                    EndpointConfig(name=name, subject=subject, queue_group=queue_group, handler=endpoint)
                )
                await svc.add_endpoint(
                    EndpointConfig(
                        name=f"{name}-direct",
                        subject=f"{subject}.{svc.id}",
                        queue_group=svc.id,
                        handler=endpoint,
                    )
                )
                for added in svc._endpoints:
                    deliver_directly(self._nc, added, on_request, later)
                try:
                    yield svc.id
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                if not self._nc.is_closed:
                    await svc.stop()

    def publish_now(self, subject: str, data: bytes) -> bool:
        """Queue one message (no headers, no reply subject) for sending without waiting.

        For an agent's replies and stream messages (:func:`agents.natsdelivery.publish_now`): in order
        with :meth:`publish`, one coroutine call fewer per message.

        Returns:
            Whether it was queued; if not (reconnecting, the send buffer full, a subject nats-py refuses),
            send it with :meth:`publish`, which waits or raises.
        """
        return publish_now(self._nc, subject, data)

    async def discover(
        self, verb: str = "INFO", *, timeout_s: float = 0.25, quiet_s: float = 0.05
    ) -> list[dict[str, Any]]:
        """Ask every micro service instance ``$SRV.<verb>`` and collect the answers.

        Collection stops ``quiet_s`` seconds after the last answer, or after ``timeout_s`` in all.

        Args:
            verb: ``PING``, ``INFO`` or ``STATS``.
            timeout_s: Upper bound on the whole collection, in seconds.
            quiet_s: Gap after an answer that ends the collection early, in seconds.
        """
        answers: list[dict[str, Any]] = []
        end = time.monotonic() + timeout_s
        async with self.inbox() as box:
            await self._nc.publish(f"$SRV.{verb}", b"", reply=box.subject)
            while (remaining := end - time.monotonic()) > 0:
                wait = remaining if not answers else min(remaining, quiet_s)
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
        """Wait until the server has processed everything sent so far."""
        await self._nc.flush(timeout=max(1, math.ceil(timeout_s)))

    async def aclose(self) -> None:
        """Drain subscriptions and close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._nc.is_closed:
            return
        with anyio.move_on_after(5):
            try:
                await self._nc.drain()
            except nats.errors.Error:
                pass
        if not self._nc.is_closed:
            await self._nc.close()

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

"""The project's one NATS module: connection, request/reply, inboxes, micro services, discovery.

Only this module imports ``nats`` (an import-linter contract holds it to that); the orchestrator and the
agents speak to NATS through :class:`Bus`, so NATS errors are turned into ``agents.errors`` here and
nowhere else.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
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

from agents.errors import AgentError, DeadlineExceededError, NoRespondersError
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


def _message(msg: Msg) -> Message:
    return Message(msg.subject, msg.data, dict(msg.headers or {}), msg.reply or "")


class Inbox:
    """A subscription read one message at a time, with a timeout per read."""

    def __init__(self, sub: Subscription, subject: str) -> None:
        self._sub = sub
        self.subject = subject

    async def next(self, timeout_s: float) -> Message:
        """The next message.

        Raises:
            DeadlineExceededError: Nothing arrived within ``timeout_s`` seconds.
            NoRespondersError: The message is a NATS 503 status (nobody received the request).
        """
        if timeout_s <= 0:
            raise DeadlineExceededError("deadline passed while waiting for the agent")
        try:
            msg = await self._sub.next_msg(timeout=timeout_s)
        except nats.errors.TimeoutError:
            raise DeadlineExceededError(f"no message on {self.subject} within {timeout_s:.3f} s") from None
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            raise NoRespondersError(f"no responders on {msg.subject}")
        return _message(msg)


Handler = Callable[[Message], Awaitable[bytes]]
StatsData = Callable[[], dict[str, Any]]


class Bus:
    """A connected NATS client with the operations the orchestrator and agents need.

    Create with :meth:`connect`; use as an async context manager or call :meth:`aclose`.
    """

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._closed = False

    @classmethod
    async def connect(cls, url: str, *, name: str, connect_timeout_s: float = 2.0) -> Bus:
        """Connect to the NATS server at ``url``.

        Raises:
            ConnectionError: The server cannot be reached within ``connect_timeout_s`` seconds.
        """

        async def on_error(exc: Exception) -> None:
            log.warning("nats client error", error=f"{type(exc).__name__}: {exc}")

        try:
            nc = await nats.connect(
                url,
                name=name,
                error_cb=on_error,
                connect_timeout=max(1, math.ceil(connect_timeout_s)),
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
            )
        except (OSError, nats.errors.Error) as exc:
            raise ConnectionError(f"cannot connect to NATS at {url}: {exc}") from exc
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

    async def publish(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Publish one message (fire and forget at the NATS level)."""
        await self._nc.publish(subject, data, headers=headers)

    async def request(
        self, subject: str, data: bytes, *, headers: dict[str, str] | None = None, timeout_s: float
    ) -> Message:
        """Send a request and wait for its reply.

        Raises:
            NoRespondersError: Nobody is subscribed to ``subject`` (answered at once by the server), or
                the connection to NATS is down.
            DeadlineExceededError: No reply within ``timeout_s`` seconds.
        """
        if timeout_s <= 0:
            raise DeadlineExceededError(f"deadline passed before the request to {subject}")
        if not self._nc.is_connected:  # reconnecting: answer now instead of buffering until the timeout
            raise NoRespondersError(f"NATS is not connected (request to {subject} not sent)")
        try:
            msg = await self._nc.request(subject, data, timeout=timeout_s, headers=headers)
        except nats.errors.NoRespondersError:
            raise NoRespondersError(f"no agent listens on {subject}") from None
        except nats.errors.TimeoutError:
            raise DeadlineExceededError(f"no reply from {subject} within {timeout_s:.3f} s") from None
        return _message(msg)

    @asynccontextmanager
    async def inbox(self, subject: str | None = None) -> AsyncIterator[Inbox]:
        """Subscribe to ``subject`` (a fresh inbox if ``None``) for the duration of the block."""
        subject = subject or self.new_inbox()
        sub = await self._nc.subscribe(subject)
        try:
            yield Inbox(sub, subject)
        finally:
            with anyio.CancelScope(shield=True):
                if not self._nc.is_closed:
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
        ``stats_data()`` fills the endpoint's ``data`` in STATS. ``handler`` returns the reply bytes; if
        it raises an :class:`AgentError`, the reply is a micro error with the wire code.

        A second endpoint, ``<subject>.<instance id>``, reaches this instance alone (the orchestrator
        sends there to pick the least-loaded replica; the shared ``subject`` is the fallback).
        """

        async def endpoint(request: Request) -> None:
            msg = Message(request.subject, request.data, dict(request.headers or {}), "")
            try:
                reply = await handler(msg)
            except AgentError as exc:
                await request.respond_error(exc.code, exc.message)
                return
            await request.respond(reply)

        def stats(_: EndpointStats) -> dict[str, Any]:
            return stats_data()

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
            await svc.add_endpoint(
                EndpointConfig(name=name, subject=subject, queue_group=queue_group, handler=endpoint)
            )
            await svc.add_endpoint(
                EndpointConfig(
                    name=f"{name}-direct", subject=f"{subject}.{svc.id}", queue_group=svc.id, handler=endpoint
                )
            )
            yield svc.id
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                if not self._nc.is_closed:
                    await svc.stop()

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

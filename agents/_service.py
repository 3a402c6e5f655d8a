"""An agent's NATS micro service: registration, ``$SRV`` discovery and stats, requests from nats-py's reader.

:meth:`agents.messaging.Bus.service` is :func:`micro_service` on the bus's connection.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import nats.errors
import structlog
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointConfig, EndpointStats, Service, ServiceConfig

from agents._inbox import Message, to_message
from agents._localrequest import LocalEndpoint
from agents._localrequest import register as register_local
from agents._natsfast import publish
from agents.errors import AgentError
from agents.natsdelivery import deliver_directly
from agents.protocol import HEADER_ERROR_FIELD, SERVICE_VERSION

__all__ = ("Handler", "StatsData", "micro_service")

log = structlog.get_logger("neurectomy.nats")

Handler = Callable[[Message], bytes | None]
"""A service endpoint's handler: the reply bytes, or ``None`` if it answers ``Message.reply`` itself later.

It never waits: it runs from nats-py's reader (:mod:`agents.natsdelivery`)."""
StatsData = Callable[[], dict[str, Any]]


@asynccontextmanager
async def micro_service(
    nc: Client,
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
    if it raises an :class:`AgentError`, the reply is a micro error with the wire code (and the error's
    field in :data:`~agents.protocol.HEADER_ERROR_FIELD`, when it has one). It runs from
    nats-py's reader as each request is parsed (:func:`agents.natsdelivery.deliver_directly`), so it
    must not block.

    A second endpoint, ``<subject>.<instance id>``, reaches this instance alone (the orchestrator
    sends there to pick the least-loaded replica; the shared ``subject`` is the fallback); a caller in
    this process may hand it requests directly (:mod:`agents._localrequest`) while the block runs.
    """

    async def endpoint(request: Request) -> None:
        # nats.micro's Request keeps the reply subject to itself; the handler may answer it later.
        # Read from its message directly: Request's properties cost a call each on every request.
        try:
            reply = handler(to_message(request._msg))
        except AgentError as exc:
            field = {HEADER_ERROR_FIELD: exc.field} if exc.field else None
            await request.respond_error(exc.code, exc.message, headers=field)
            return
        if reply is not None:
            await request.respond(reply)

    def stats(_: EndpointStats) -> dict[str, Any]:
        return stats_data()

    later_in, later_out = anyio.create_memory_object_stream[tuple[str, bytes, dict[str, str] | None]](
        math.inf
    )

    async def send_later() -> None:  # answers publish_now could not queue
        async with later_out:
            async for to, body, headers in later_out:
                try:
                    await publish(nc, to, body, headers, "")
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
    svc: Service = await add_service(nc, config)
    try:
        async with anyio.create_task_group() as tg, later_in:
            tg.start_soon(send_later)
            await svc.add_endpoint(
                EndpointConfig(name=name, subject=subject, queue_group=queue_group, handler=endpoint)
            )
            direct = f"{subject}.{svc.id}"
            await svc.add_endpoint(
                EndpointConfig(name=f"{name}-direct", subject=direct, queue_group=svc.id, handler=endpoint)
            )
            local: LocalEndpoint | None = None
            for added in svc._endpoints:
                deliver = deliver_directly(nc, added, handler, later)
                sub = added._subscription
                if sub is not None and sub.subject == direct:
                    local = register_local(direct, nc, deliver)
            try:
                yield svc.id
            finally:
                if local is not None:  # from now on requests to it go over NATS, which drains them
                    local.close()
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            if not nc.is_closed:
                await svc.stop()

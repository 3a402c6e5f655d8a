"""Requests to an agent handled from nats-py's reader, without the subscription's queue and task.

nats-py hands every message of a callback subscription to an ``asyncio.Queue``, which a task of the
subscription empties by calling the callback; nats.micro wraps that callback in a ``Request`` and its
own timing. An agent's accept never waits (it decides at once: into the mailbox, or ``busy``), so
:func:`deliver_directly` replaces the queue of a nats.micro endpoint's subscription with a
:class:`DirectDelivery`, whose ``put_nowait`` (called by nats-py's reader for each message it parsed)
runs the accept right there and queues its answer on nats-py's send buffer (:func:`publish_now`): one
queue, one task switch and one event loop turn per request fewer. An answer that cannot go out that way
(reconnecting, over the send buffer's limit) is handed to ``later``, which publishes it the ordinary
way. The endpoint's ``$SRV.STATS`` counters are kept as nats.micro keeps them.

This relies on internals of nats-py 2.16 (pinned in ``constraints.txt``): ``Subscription._pending_queue``
and ``_pending_size``, ``Client._pending``, ``_pending_data_size``, ``_flush_queue``, ``_flusher_task``,
and the counters of ``nats.micro.service.Endpoint``. The subscription's own task keeps waiting on the
queue it had, then on :meth:`DirectDelivery.get`, which never returns, until the endpoint stops;
messages that arrived before the switch are handled at the switch.

What it saves per call is measured with ``benchmarks/orchestrator.py`` (``docs/collective.md``, "The hop's
own cost").
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.micro.request import ERROR_CODE_HEADER, ERROR_HEADER
from nats.micro.service import Endpoint
from nats.protocol.command import hpub_cmd, pub_cmd

from agents.errors import AgentError
from agents.natsheaders import header_block

__all__ = ("DirectDelivery", "Later", "deliver_directly", "publish_now")

log = structlog.get_logger("neurectomy.nats")

_WHITESPACE = re.compile(r"\s")

Later = Callable[[str, bytes, "dict[str, str] | None"], None]
"""Takes an answer (subject, payload, headers) that must be published the ordinary (awaited) way."""


def publish_now(nc: Client, subject: str, data: bytes, headers: dict[str, str] | None = None) -> bool:
    """Put one message (no reply subject) on nats-py's send buffer and wake its flusher, without waiting.

    Returns:
        Whether it was queued; ``False`` when ``nc.publish`` must take it (not connected, an empty
        subject or one with whitespace, over the payload limit or the send buffer's limit, no flusher).
    """
    if (
        nc._status != Client.CONNECTED
        or not subject
        or len(data) > nc._max_payload
        or _WHITESPACE.search(subject)
        or nc._flusher_task is None
        or nc._flusher_task.done()
        or nc._flush_queue is None
    ):
        return False
    cmd = hpub_cmd(subject, "", header_block(headers), data) if headers else pub_cmd(subject, "", data)
    if 0 < nc._max_pending_size < nc._pending_data_size + len(cmd):
        return False  # nc.publish flushes first
    nc.stats["out_msgs"] += 1
    nc.stats["out_bytes"] += len(data)
    nc._pending.append(cmd)
    nc._pending_data_size += len(cmd)
    if nc._flush_queue.empty():  # else the flusher is due anyway and writes this too
        nc._flush_queue.put_nowait(asyncio.get_running_loop().create_future())
    return True


class DirectDelivery:
    """Stands in for a nats.micro endpoint subscription's queue: each message is handled as it is put.

    Args:
        nc: The connection.
        endpoint: The nats.micro endpoint whose counters to keep.
        pending: The subscription (its pending byte count is settled at once).
        handler: Takes the request; returns the reply payload, or ``None`` if it answers later itself;
            raises :class:`AgentError` for an error answer (nats.micro's error headers).
        later: Publishes an answer :func:`publish_now` could not queue.
    """

    __slots__ = ("_endpoint", "_handler", "_later", "_nc", "_sub")

    def __init__(
        self,
        nc: Client,
        endpoint: Endpoint,
        pending: Any,
        handler: Callable[[Msg], bytes | None],
        later: Later,
    ) -> None:
        self._nc = nc
        self._endpoint = endpoint
        self._sub = pending
        self._handler = handler
        self._later = later

    def put_nowait(self, msg: Msg) -> None:
        """Handle ``msg`` now (called by nats-py's reader; never raises)."""
        endpoint = self._endpoint
        started = time.perf_counter_ns()
        endpoint._num_requests += 1
        try:
            self._sub._pending_size -= len(msg.data)
            headers: dict[str, str] | None = None
            try:
                reply = self._handler(msg)
            except AgentError as exc:
                reply, headers = b"", {ERROR_HEADER: exc.message, ERROR_CODE_HEADER: exc.code}
            except Exception as exc:  # as nats.micro answers a handler's unexpected error
                log.exception("request handler failed", subject=msg.subject)
                endpoint._num_errors += 1
                endpoint._last_error = repr(exc)  # type: ignore[assignment]
                reply, headers = b"", {ERROR_HEADER: repr(exc), ERROR_CODE_HEADER: "500"}
            if reply is not None and msg.reply and not publish_now(self._nc, msg.reply, reply, headers):
                self._later(msg.reply, reply, headers)
        except Exception:  # nats-py's reader would take it for a protocol error and reconnect
            log.exception("request delivery failed", subject=msg.subject)
        endpoint._processing_time += time.perf_counter_ns() - started
        endpoint._average_processing_time = int(endpoint._processing_time / endpoint._num_requests)

    # The rest of the queue interface nats-py's Subscription uses.
    def qsize(self) -> int:
        """Messages waiting (none: each is handled as it is put)."""
        return 0

    def empty(self) -> bool:
        """Whether no message waits (always)."""
        return True

    def task_done(self) -> None:
        """Nothing to account for."""

    async def join(self) -> None:
        """Returns at once: no message waits."""

    async def get(self) -> Msg:
        """Never returns: the subscription's own task waits here until the endpoint stops (cancelling it)."""
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")  # pragma: no cover


def deliver_directly(
    nc: Client, endpoint: Endpoint, handler: Callable[[Msg], bytes | None], later: Later
) -> None:
    """Have ``endpoint``'s requests handled by ``handler`` from nats-py's reader (see the module docs)."""
    sub = endpoint._subscription
    if sub is None:
        raise RuntimeError("the endpoint is not subscribed")
    queued, sink = sub._pending_queue, DirectDelivery(nc, endpoint, sub, handler, later)
    sub._pending_queue = sink  # type: ignore[assignment]
    while not queued.empty():  # arrived before the switch: handled now, in order
        sink.put_nowait(queued.get_nowait())

"""Requests to an agent handled from nats-py's reader, without the subscription's queue and task.

nats-py hands every message of a callback subscription to an ``asyncio.Queue``, which a task of the
subscription empties by calling the callback; nats.micro wraps that callback in a ``Request`` and its
own timing. An agent's accept never waits (it decides at once: into the mailbox, or ``busy``), so
:func:`deliver_directly` replaces the queue of a nats.micro endpoint's subscription with a
:class:`agents._natsfast.DirectQueue` whose callback (:class:`DirectDelivery`, called by nats-py's reader
for each message it parsed) runs the accept right there and queues its answer on nats-py's send buffer
(:func:`publish_now`, from :mod:`agents._natsfast`, the one home of these nats-py shortcuts): one
queue, one task switch and one event loop turn per request fewer. An answer that cannot go out that way
(reconnecting, over the send buffer's limit) is handed to ``later``, which publishes it the ordinary
way. The endpoint's ``$SRV.STATS`` counters are kept as nats.micro keeps them, the request count and
processing time in native fields of the delivery, which the endpoint reads (:mod:`agents._endpointcounts`).

Besides the internals :mod:`agents._natsfast` relies on, this relies on the counters of nats-py 2.16's
``nats.micro.service.Endpoint``. The subscription's own task keeps waiting on the queue it had, then on
:meth:`agents._natsfast.DirectQueue.get`, which never returns, until the endpoint stops; messages that
arrived before the switch are handled at the switch.

What it saves per call is measured with ``benchmarks/orchestrator.py`` (``docs/collective.md``, "The hop's
own cost").
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter_ns

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.micro.request import ERROR_CODE_HEADER, ERROR_HEADER
from nats.micro.service import Endpoint

from agents._endpointcounts import count_in
from agents._message import Message, to_message
from agents._natsfast import deliver_from_reader, publish_now
from agents.errors import AgentError
from agents.protocol import HEADER_ERROR_FIELD

__all__ = ("DirectDelivery", "Later", "deliver_directly", "publish_now")

log = structlog.get_logger("neurectomy.nats")

Later = Callable[[str, bytes, "dict[str, str] | None"], None]
"""Takes an answer (subject, payload, headers) that must be published the ordinary (awaited) way."""


class DirectDelivery:
    """Handles each request of a nats.micro endpoint as nats-py's reader parses it, keeping its counters.

    The endpoint's request count and processing time are this object's :attr:`requests` and
    :attr:`processing_ns` from now on (:func:`agents._endpointcounts.count_in`): nats.micro's ``$SRV.STATS``
    reads them there, exact at any moment.

    Args:
        nc: The connection.
        endpoint: The nats.micro endpoint whose counters to keep.
        handler: Takes the request (as a :class:`~agents._message.Message`); returns the reply payload, or
            ``None`` if it answers later itself; raises :class:`AgentError` for an error answer (nats.micro's
            error headers).
        later: Publishes an answer :func:`publish_now` could not queue.
    """

    __slots__ = ("_endpoint", "_handler", "_later", "_nc", "processing_ns", "requests")

    requests: int
    """Requests handled (nats.micro's ``num_requests``), with those the endpoint had counted before."""
    processing_ns: int
    """Their handling time in all, nanoseconds (``perf_counter_ns``; nats.micro's ``processing_time``)."""

    def __init__(
        self,
        nc: Client,
        endpoint: Endpoint,
        handler: Callable[[Message], bytes | None],
        later: Later,
    ) -> None:
        self._nc = nc
        self._endpoint = endpoint
        self._handler = handler
        self._later = later
        self.requests = 0
        self.processing_ns = 0
        count_in(endpoint, self)

    def deliver(self, msg: Msg) -> None:
        """Handle ``msg`` now and answer it (called by nats-py's reader through the subscription's queue)."""
        self.deliver_message(to_message(msg))

    def deliver_message(self, msg: Message) -> None:
        """:meth:`deliver` of a request that is a :class:`~agents._message.Message` already.

        For a request handed over in this process (:mod:`agents._localrequest`), without a ``Msg``.
        """
        started = perf_counter_ns()
        self.requests += 1
        try:
            headers: dict[str, str] | None = None
            try:
                reply = self._handler(msg)
            except AgentError as exc:
                reply, headers = b"", {ERROR_HEADER: exc.message, ERROR_CODE_HEADER: exc.code}
                if exc.field:
                    headers[HEADER_ERROR_FIELD] = exc.field
            except Exception as exc:  # as nats.micro answers a handler's unexpected error
                log.exception("request handler failed", subject=msg.subject)
                endpoint = self._endpoint
                endpoint._num_errors += 1
                endpoint._last_error = repr(exc)  # type: ignore[assignment]
                reply, headers = b"", {ERROR_HEADER: repr(exc), ERROR_CODE_HEADER: "500"}
            if reply is not None and msg.reply and not publish_now(self._nc, msg.reply, reply, headers):
                self._later(msg.reply, reply, headers)
        finally:  # the queue logs what this raises; the time counts either way
            self.processing_ns += perf_counter_ns() - started


def deliver_directly(
    nc: Client, endpoint: Endpoint, handler: Callable[[Message], bytes | None], later: Later
) -> Callable[[Message], None]:
    """Have ``endpoint``'s requests handled by ``handler`` from nats-py's reader (see the module docs).

    Returns:
        What the reader's path calls with each request once it is a :class:`~agents._message.Message`
        (:meth:`DirectDelivery.deliver_message`), for a caller in this process to hand it requests the
        same way without a ``Msg`` (:mod:`agents._localrequest`).
    """
    sub = endpoint._subscription
    if sub is None:
        raise RuntimeError("the endpoint is not subscribed")
    delivery = DirectDelivery(nc, endpoint, handler, later)
    deliver_from_reader(sub, delivery.deliver, message=delivery.deliver_message)
    return delivery.deliver_message

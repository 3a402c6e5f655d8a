"""Requests to an agent instance in this same process, handed to its endpoint without nats-server.

In ``neurectomy serve`` the orchestrator, the composing agents and the agents share one process and one
event loop, yet every request went caller → socket → nats-server → socket → agent, ~0.3-0.4 ms of a
streamed generation's time to first token on the 2-core machine (docs/ryot.md, "Before the engine: the
hop to the agent"). The answers already skip nats-server (:mod:`agents._localinbox`); this does the same
for the request itself, in one case only: a request to an instance's **direct subject**
(``<agent subject>.<instance id>``, the one the router sends to after choosing the least-loaded healthy
instance) whose endpoint lives in this process and event loop. Nothing else changes:

- The choice of instance is the router's, as before; the agent's shared subject (its queue group, where
  NATS picks among the replicas of every process) always goes over NATS, as do cancels, heartbeats,
  ``$SRV`` and requests to instances in other processes.
- The endpoint gets the :class:`~agents._message.Message` (subject, reply subject, payload, headers) it
  would have made of the ``Msg`` nats-py's reader builds, through the same
  :class:`agents.natsdelivery.DirectDelivery` (the agent's accept path, its ``$SRV.STATS`` counters, its
  answers), so the agent checks headers, scopes and input exactly as for a request from the wire.
- Only a bus whose NATS role may publish to agent subjects (``Bus.local_requests``: the API's and the
  composers', never the plain agent role's) sends this way, so a request goes locally only where
  nats-server would have let it through; the sender's connection must be up and the payload within the
  server's ``max_payload``, as for a publish.

Delivery is a direct call from the caller's task, like :meth:`agents._localinbox.LocalInbox.deliver`:
the accept path never waits (it decides at once: into the mailbox, or an error answer) and answers
through the caller's inbox or NATS, never back into the caller synchronously except through
``Inbox._deliver``, which only stores the reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from nats.aio.client import Client

from agents._message import Message
from agents._natsfast import CONNECTED

__all__ = ("DeliveryCount", "LocalEndpoint", "find", "register", "requests_delivered")

log = structlog.get_logger("neurectomy.nats")


class DeliveryCount:
    """Messages handed over in this process (a holder: incremented without a ``global`` statement)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


_DELIVERED = DeliveryCount()
_ENDPOINTS: dict[str, LocalEndpoint] = {}
"""Direct subject of an agent instance → its endpoint, for every instance of this process."""


def requests_delivered() -> int:
    """Requests handed to an endpoint in this process without nats-server, since the process started."""
    return _DELIVERED.value


class LocalEndpoint:
    """One instance's direct endpoint (``<agent subject>.<instance id>``), reachable from this process.

    Args:
        subject: The endpoint's subject.
        nc: The agent's connection (a request is taken only while it is up).
        deliver: Takes each request as the endpoint's reader path does (``DirectDelivery.deliver_message``).
    """

    __slots__ = ("_deliver", "_loop", "_nc", "subject")

    def __init__(self, subject: str, nc: Client, deliver: Callable[[Message], None]) -> None:
        self.subject = subject
        self._nc = nc
        self._deliver: Callable[[Message], None] | None = deliver
        self._loop = asyncio.get_running_loop()

    def close(self) -> None:
        """Take no more requests and unregister; idempotent (later requests go over NATS)."""
        self._deliver = None
        if _ENDPOINTS.get(self.subject) is self:
            del _ENDPOINTS[self.subject]

    def deliver(self, message: Message) -> bool:
        """Hand a request for :attr:`subject` to the endpoint now; whether it took it.

        ``False``: the endpoint is closed or the agent's connection down; send it over NATS. ``message`` is
        what the agent's reader would make of the request (:func:`~agents._message.new_message`), or a
        :class:`~agents._message.LocalRequest` (its deadline a number, its reply inbox named). Never raises:
        what the endpoint raises is logged (as nats-py's reader would).
        """
        deliver = self._deliver
        nc = self._nc
        if deliver is None or (nc._status != CONNECTED and not nc.is_connected):
            return False
        _DELIVERED.value += 1
        try:
            deliver(message)
        except Exception:
            log.exception("local request failed", subject=self.subject)
        return True


def register(subject: str, nc: Client, deliver: Callable[[Message], None]) -> LocalEndpoint:
    """Make an instance's direct endpoint reachable by :func:`find`; :meth:`LocalEndpoint.close` it.

    Must be called in the event loop the endpoint's connection runs in.
    """
    endpoint = _ENDPOINTS[subject] = LocalEndpoint(subject, nc, deliver)
    return endpoint


def find(subject: str) -> LocalEndpoint | None:
    """The endpoint of ``subject`` in this process and event loop, if it is an instance's direct one."""
    if not _ENDPOINTS:
        return None
    endpoint = _ENDPOINTS.get(subject)
    if endpoint is None or endpoint._loop is not asyncio.get_running_loop():
        return None
    return endpoint

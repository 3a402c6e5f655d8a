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

**Running the call in the caller's task.** A caller that waits for the call's last message anyway (the
orchestrator's ``invoke``: it wants the output alone, not a stream as it comes) delivers with
``here=True``. While the endpoint takes such a request, :func:`caller_waits` is true, and the agent's accept
path may hand back, through :func:`run_here`, a coroutine that runs the call (when a worker is idle: see
:meth:`agents.actor.AgentRunner._accept`); :meth:`LocalEndpoint.deliver` returns it and the caller awaits it
in its own task: no mailbox, no worker's wake-up, no wake-up of the caller for the answer (the actor
runtimes' "calling-thread" dispatch to an idle actor). The accept path's checks and refusals happen before,
as for every request; the call's ``End``/``Error`` reaches the caller's inbox as before.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from nats.aio.client import Client

from agents._message import Message, new_message

__all__ = (
    "HANDOVER",
    "DeliveryCount",
    "HandOver",
    "LocalEndpoint",
    "caller_waits",
    "find",
    "register",
    "requests_delivered",
    "run_here",
)

log = structlog.get_logger("neurectomy.nats")


class DeliveryCount:
    """Messages handed over in this process (a holder: incremented without a ``global`` statement)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


_DELIVERED = DeliveryCount()
_ENDPOINTS: dict[str, LocalEndpoint] = {}
"""Direct subject of an agent instance → its endpoint, for every instance of this process."""


class HandOver(threading.local):
    """The request an endpoint takes now from a caller in this process that can run its call (per thread).

    Attributes:
        open: Whether such a request is being delivered (only inside :meth:`LocalEndpoint.deliver` with
            ``here=True``).
        work: The coroutine the endpoint's handler handed back for the caller to await (:func:`run_here`).
    """

    open: bool = False
    work: Coroutine[Any, Any, None] | None = None


HANDOVER = HandOver()
"""The one hand-over of this process (a thread's own: each event loop runs in one thread)."""


def caller_waits() -> bool:
    """Whether the request being handled now comes from a caller in this process that can run the call.

    True only inside :meth:`LocalEndpoint.deliver` with ``here=True``: the caller waits, in its own task, for
    the call's last message and nothing before it, and awaits what :func:`run_here` is given.
    """
    return HANDOVER.open


def run_here(work: Coroutine[Any, Any, None]) -> None:
    """Have the caller (:func:`caller_waits`) await ``work`` in its task once the endpoint took the request.

    At most once per request: the call's handler runs there, and its answer reaches the caller's inbox.

    Raises:
        RuntimeError: No such caller is delivering a request now (``work`` is closed, never run).
    """
    hand = HANDOVER
    if not hand.open:
        work.close()
        raise RuntimeError("run_here() outside a local delivery whose caller waits")
    hand.open, hand.work = False, work


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

    def deliver(
        self, data: bytes, reply: str, headers: dict[str, str], *, here: bool = False
    ) -> bool | Coroutine[Any, Any, None]:
        """Hand a request to the endpoint now; whether it took it (``False``: closed, send it over NATS).

        Never raises: what the endpoint raises is logged (as nats-py's reader would).

        Args:
            data: The payload.
            reply: The reply subject.
            headers: The headers as the endpoint's reader would parse them (a dict of the endpoint's own).
            here: The caller waits in its task for the call's last message and nothing before it: the
                endpoint may hand back the call's work for it to await (see the module docs).

        Returns:
            ``False`` (not taken), ``True`` (taken), or, with ``here``, the coroutine that runs the call:
            the caller must await it at once (the call's answer reaches its inbox before it ends, unless the
            answer had to go over NATS).
        """
        deliver = self._deliver
        if deliver is None or not self._nc.is_connected:
            return False
        _DELIVERED.value += 1
        hand = HANDOVER
        hand.open = here  # (the accept path delivers nothing to an endpoint: never re-entered)
        try:
            deliver(new_message(self.subject, data, headers, reply))
        except Exception:
            log.exception("local request failed", subject=self.subject)
        finally:
            work, hand.open, hand.work = hand.work, False, None
        return True if work is None else work


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

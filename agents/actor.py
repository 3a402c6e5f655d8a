"""Agents as actors on NATS.

An :class:`Agent` does one kind of work (``handle``). An :class:`AgentRunner` runs one instance of it on
the bus:

* registers a NATS micro service named after the agent, with one endpoint on
  ``neurectomy.agent.<team>.<agent>`` in the queue group ``<agent>`` (replicas share the load and fail
  over for each other); ``$SRV.PING|INFO|STATS`` answer, STATS carrying the runner's own counters;
* accepts a request into a bounded mailbox and replies ``Reply{ok}`` as soon as the workers woken by it
  have had their turn, or refuses at once with the wire code ``busy`` when the mailbox is full
  (backpressure the orchestrator can route around). A call that ends in that turn (a worker was idle and
  the work did not wait on anything) has its ``End``/``Error`` sent as the reply instead of the accept,
  when the caller reads its reply in the stream's inbox (reply subject ``<stream inbox>.r``, as
  :meth:`agents.messaging.Inbox.request` does): one message instead of two;
* runs ``concurrency`` workers that take calls from the mailbox, stream ``Chunk`` messages and one
  ``End``/``Error`` to the caller's inbox, and honour the deadline header and cancel messages: a call
  whose deadline passed or whose caller cancelled it before it started is not run; a running one is
  cancelled (one timer per instance for every deadline, :mod:`agents.deadlines`);
* handles calls with the same session key (header ``Neurectomy-Session``, else the input's ``session``
  field) one after another, in the order they were accepted, whatever the concurrency;
* publishes a :class:`~agents.protocol.Heartbeat` (load and its own subject) at once and then every
  ``heartbeat_s`` seconds, which the orchestrator uses to pick the least-loaded healthy replica (the
  periodic beats of all instances on one bus go out together, on one timer: :mod:`agents._heartbeats`);
* on shutdown stops accepting (the service unsubscribes), lets queued calls finish for a grace period,
  then cancels what is left.

The call is :mod:`agents._call`; the runner's accept path :mod:`agents._accept`, its workers
:mod:`agents._worker`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import anyio
import structlog
from anyio.abc import TaskStatus
from mypy_extensions import mypyc_attr
from pydantic import BaseModel

from agents._accept import AcceptPath
from agents._call import Call
from agents._heartbeats import clock_for
from agents._worker import WorkerPool, parse_input
from agents.deadlines import DeadlineTimer
from agents.limits import DEFAULT_MAX_INPUT_BYTES
from agents.mailbox import Mailbox
from agents.messaging import Bus
from agents.protocol import CANCEL_PREFIX, Heartbeat, agent_subject, heartbeat_subject
from agents.scopes import OperationScopes

__all__ = ("Agent", "AgentRunner", "Call", "RunnerStats", "parse_input")

log = structlog.get_logger("neurectomy.agents")


@mypyc_attr(allow_interpreted_subclasses=True)  # the agents subclass it in Python
class Agent(ABC):
    """One kind of agent: a name, a team, a description, and the work it does.

    Subclasses set the class attributes and implement :meth:`handle`.
    """

    name: ClassVar[str]
    team: ClassVar[str]
    description: ClassVar[str]
    capabilities: ClassVar[tuple[str, ...]] = ()
    input_model: ClassVar[type[BaseModel] | None] = None
    """If set, the input is validated against it before ``handle`` (errors name the field)."""
    output_model: ClassVar[type[BaseModel] | None] = None
    """The shape of ``handle``'s output, for the registry and the docs (not enforced at run time)."""
    bridges: ClassVar[tuple[str, ...]] = ()
    """Engines the agent reaches through a bridge: any of ``ryot``, ``sigma``, ``vault``, ``collective``
    (other agents, through the orchestrator)."""
    text_input: ClassVar[str | None] = "text"
    """Input field that takes the text a plan step hands on (None if the agent takes no text)."""
    text_output: ClassVar[str | None] = "text"
    """Output field that holds the agent's main text result (None if it has none)."""
    scopes: ClassVar[OperationScopes] = OperationScopes()
    """The scope its calls need (``write`` unless declared; see :mod:`agents.scopes`)."""
    takes_attachment: ClassVar[bool] = False
    """Whether requests may carry a binary attachment (`Call.attachment`); others are refused."""
    max_input_bytes: ClassVar[int] = DEFAULT_MAX_INPUT_BYTES
    """Largest JSON input it takes, in bytes (the request's payload before a binary attachment, which does
    not count). A larger one is refused with ``too_large`` on ``input``, naming both sizes, before it is
    decoded: the decode runs on the event loop, up to ~0.3 µs per byte of pathological JSON (lists of
    small containers or numbers). Agents whose input model allows more declare more, from their model's
    limits (:func:`agents.limits.text_input_bytes`); :data:`~agents.limits.NATS_MAX_PAYLOAD_BYTES` for
    a model only the wire bounds."""
    accept_grace_s: ClassVar[float] = 0.0
    """How long a call's accept may wait, seconds: a call that ends within it (short work that still
    waits, e.g. on a worker thread) answers with its ``End`` alone, one NATS message instead of two.
    Keep it far below the caller's accept timeout (``orchestrator.accept_timeout_s``, 2 s)."""

    @abstractmethod
    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Do the work of one call; stream with ``call.emit(...)``; return the output.

        Raises:
            AgentError: A failure the caller should see with its wire code.
        """

    def metadata(self) -> dict[str, str]:
        """Extra ``$SRV.INFO`` metadata (e.g. the model name)."""
        return {}

    def stats(self) -> dict[str, Any]:
        """Extra ``$SRV.STATS`` data (e.g. engine counters)."""
        return {}


@dataclass(slots=True)
class RunnerStats:
    """Counters of one runner (reported in ``$SRV.STATS`` endpoint data)."""

    received: int = 0
    accepted: int = 0
    refused_busy: int = 0
    refused_bad: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    in_flight: int = 0
    processing_s_total: float = 0.0


class AgentRunner(AcceptPath, WorkerPool):
    """Runs one instance of an agent on the bus.

    Args:
        bus: Connected bus.
        agent: The agent to run.
        mailbox_size: Calls that may wait; one more is refused with ``busy``.
        concurrency: Calls handled at the same time.
        drain_grace_s: On shutdown, how long queued and running calls may still finish, in seconds.
        heartbeat_s: Seconds between heartbeats.
    """

    def __init__(
        self,
        bus: Bus,
        agent: Agent,
        *,
        mailbox_size: int = 16,
        concurrency: int = 1,
        drain_grace_s: float = 5.0,
        heartbeat_s: float = 1.0,
    ) -> None:
        self.bus = bus
        self.agent = agent
        self.subject = agent_subject(agent.team, agent.name)
        self.stats = RunnerStats()
        self.instance_id = ""
        self._mailbox_size = mailbox_size
        self._concurrency = concurrency
        self._drain_grace_s = drain_grace_s
        self._heartbeat_s = heartbeat_s
        self._draining = False
        self._sessions: dict[str, deque[Call]] = {}
        self._mailbox: Mailbox[Call] = Mailbox(mailbox_size)
        self._active: dict[str, Call] = {}
        self._workers_scope = anyio.CancelScope(shield=True)
        self._deadlines = DeadlineTimer()
        needs = agent.scopes
        self._scope_of_every_call = needs.default if needs.op_field is None else None
        """The scope every call needs, when it does not depend on the input (else ``None``)."""
        self._workers_done = anyio.Event()
        self._accepted_reply: Any = ("", b"")
        """(instance id, ``Reply{ok, instance}`` as JSON) — the same bytes for every accepted call."""
        self._owed: list[Call] = []
        """Calls accepted since the last accepts check (the batch it looks at once their workers ran)."""
        self._accepts_owed: list[Call] = []
        """Calls whose accept the accepts check found still owed: the accept sender sends them."""
        self._accepts_due: anyio.Event | None = None
        """Set to wake the accept sender (``None`` while it does not run: accepts are then sent at once)."""
        self._call_log: Any = log
        self._log_done = True

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; reports started once registered and subscribed.

        On cancellation: stop accepting, let queued and running calls finish for ``drain_grace_s``,
        then cancel the rest.
        """
        metadata = {
            "team": self.agent.team,
            "description": self.agent.description,
            "capabilities": ",".join(self.agent.capabilities),
            **self.agent.metadata(),
        }
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._run_workers)
            async with self.bus.subscription(f"{CANCEL_PREFIX}.*", self._on_cancel):
                try:
                    async with self.bus.service(
                        name=self.agent.name,
                        description=self.agent.description,
                        metadata=metadata,
                        subject=self.subject,
                        queue_group=self.agent.name,
                        handler=self._accept,
                        stats_data=self._stats_data,
                    ) as instance_id:
                        self.instance_id = instance_id
                        await self._heartbeat()
                        await self.bus.flush()
                        log.info(
                            "agent started", agent=self.agent.name, team=self.agent.team, subject=self.subject
                        )
                        task_status.started()
                        await clock_for(self.bus, self._heartbeat_s).attend(self._beat)
                finally:
                    with anyio.CancelScope(shield=True):
                        self._draining = True
                        with anyio.move_on_after(1):
                            await self._heartbeat()
                        await self._drain()

    async def _run_workers(self) -> None:
        # Shielded: cancelling the runner must not cut calls short; _drain() decides when they stop.
        with self._workers_scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._send_accepts)
                async with anyio.create_task_group() as workers:
                    for _ in range(self._concurrency):
                        workers.start_soon(self._work)
                tg.cancel_scope.cancel()  # no call left that could still owe an accept
        self._workers_done.set()

    async def _drain(self) -> None:
        self._mailbox.close()  # workers finish the mailbox, then their loops end
        with anyio.move_on_after(self._drain_grace_s):
            await self._workers_done.wait()
        self._workers_scope.cancel()
        await self._workers_done.wait()
        log.info("agent stopped", agent=self.agent.name, completed=self.stats.completed)

    @property
    def direct_subject(self) -> str:
        """The subject that reaches this instance alone (empty until registered)."""
        return f"{self.subject}.{self.instance_id}" if self.instance_id else ""

    def _beat(self) -> Heartbeat:
        """This instance's heartbeat as of now."""
        return Heartbeat(
            agent=self.agent.name,
            team=self.agent.team,
            instance=self.instance_id,
            direct_subject=self.direct_subject,
            in_flight=self.stats.in_flight,
            mailbox_depth=self._mailbox.depth,
            mailbox_size=self._mailbox_size,
            concurrency=self._concurrency,
            state="draining" if self._draining else "up",
            interval_s=self._heartbeat_s,
        )

    async def _heartbeat(self) -> None:
        """Publish this instance's heartbeat alone, now (its first, and its last when it drains)."""
        if self.bus.is_connected:
            await self.bus.publish(
                heartbeat_subject(self.agent.team, self.agent.name), self._beat().model_dump_json().encode()
            )

    def _stats_data(self) -> dict[str, Any]:
        return {
            **asdict(self.stats),
            "mailbox_depth": self._mailbox.depth,
            "mailbox_size": self._mailbox_size,
            **self.agent.stats(),
        }

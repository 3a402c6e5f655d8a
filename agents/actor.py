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
* publishes a :class:`~agents.protocol.Heartbeat` (load and its own subject) every ``heartbeat_s``
  seconds, which the orchestrator uses to pick the least-loaded healthy replica;
* on shutdown stops accepting (the service unsubscribes), lets queued calls finish for a grace period,
  then cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pydantic_core
import structlog
from anyio.abc import TaskStatus
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode
from pydantic import BaseModel, ValidationError

from agents.deadlines import DeadlineTimer, WorkerSlot
from agents.errors import (
    AgentBusyError,
    AgentError,
    AgentFailedError,
    BadInputError,
    CancelledByCallerError,
    DeadlineExceededError,
)
from agents.mailbox import Mailbox, MailboxClosedError, MailboxFullError
from agents.messaging import Bus, Message
from agents.protocol import (
    CANCEL_PREFIX,
    DEFAULT_TENANT,
    HEADER_DEADLINE,
    HEADER_IDEMPOTENCY_KEY,
    HEADER_REQUEST_ID,
    HEADER_SCOPES,
    HEADER_SESSION,
    HEADER_STREAM_INBOX,
    HEADER_TENANT,
    HEADER_TRACE_ID,
    Error,
    Heartbeat,
    Reply,
    WireError,
    agent_subject,
    heartbeat_subject,
    join_attachment,
    split_attachment,
)
from agents.scopes import OperationScopes, check_scope, parse_scopes_header
from agents.tracing import TRACEPARENT, SpanKind, remote_context, start_child, tracer

_tracer = tracer("neurectomy.agents")
_NO_SCOPE = contextlib.nullcontext()
log = structlog.get_logger("neurectomy.agents")


@dataclass(slots=True)
class Call:
    """One accepted request, as the agent sees it.

    Attributes:
        request_id: Id given by the caller (also on every log line of this call).
        input: The decoded JSON input.
        deadline: Absolute deadline, ``time.time()`` seconds.
        tenant: Tenant the call runs for.
        trace_id: Trace id carried across hops.
        inbox: Subject the caller listens on.
        scopes: The caller's scopes (``Neurectomy-Scopes``); calls it makes on the caller's behalf carry them.
        idempotency_key: Names the call across the caller's retries (empty when the caller sent none).
        traceparent: The caller's W3C ``traceparent`` (empty: none); the handler's span is its child.
        attachment: The request's binary attachment (`agents.protocol.split_attachment`), or None.
        reply_attachment: Set by the handler: raw bytes sent after its ``End`` (None: none).
    """

    request_id: str
    input: Any
    deadline: float
    tenant: str
    trace_id: str
    inbox: str
    _bus: Bus
    session: str = ""
    scopes: frozenset[str] = frozenset()
    _turn: anyio.Event | None = None
    """Set when the call's turn in its session comes (session calls only)."""
    _seq: int = 0
    cancelled_by_caller: bool = False
    idempotency_key: str = ""
    traceparent: str = ""
    _accept_to: str = ""
    """The reply subject while the call still owes the caller its accept (empty once it went out, or the
    call's End/Error in its place)."""
    _accept: bytes = b""
    """The accept (``Reply{ok, instance}``) as JSON."""
    _started: float = 0.0
    """When a worker started it (``time.perf_counter()``; 0 until then)."""
    _span: Span | None = None
    """Its span, when the caller's trace is sampled."""
    _span_token: Token[otel_context.Context] | None = None
    attachment: memoryview | None = None
    reply_attachment: bytes | bytearray | memoryview | None = None

    def remaining_s(self) -> float:
        """Seconds left until the deadline (negative once passed)."""
        return self.deadline - time.time()

    async def emit(self, data: Mapping[str, Any]) -> None:
        """Send one chunk of streamed output to the caller."""
        if self._accept_to:
            await self._send_accept()
        await self._send(self.inbox, _wire_json("chunk", self._seq, "data", data))
        self._seq += 1

    async def _send(self, subject: str, body: bytes) -> None:
        """Publish ``body``: queued at once when the connection can take it, else as a publish does."""
        if not self._bus.publish_now(subject, body):
            await self._bus.publish(subject, body)

    async def _send_accept(self) -> None:
        """Send the accept if it is still owed (no-op otherwise)."""
        to, self._accept_to = self._accept_to, ""
        if to:
            await self._send(to, self._accept)

    async def _last(self, body: bytes) -> None:
        """Send the call's last message.

        As the reply, in place of an accept still owed, when the caller reads its reply in the stream's
        inbox; else to the inbox (after the accept, if still owed).
        """
        to, self._accept_to = self._accept_to, ""
        if to and to != f"{self.inbox}.r":  # a caller with a reply subject of its own gets the accept first
            await self._send(to, self._accept)
            to = ""
        to = to or self.inbox
        if not self._bus.publish_now(to, body):
            await self._bus.publish(to, body)

    async def _finish(self, output: Mapping[str, Any]) -> None:
        body = _wire_json("end", self._seq, "output", output)
        if self.reply_attachment is not None:
            body = join_attachment(body, self.reply_attachment)
        await self._last(body)

    async def _fail(self, error: AgentError) -> None:
        wire = WireError(code=error.code, message=error.message, field=error.field)
        await self._last(Error(seq=self._seq, error=wire).model_dump_json().encode())


def _wire_json(kind: str, seq: int, key: str, value: Mapping[str, Any]) -> bytes:
    """``Chunk``/``End`` as JSON, byte for byte what ``model_dump_json`` writes, without building the model.

    ``pydantic_core.to_json`` serialises ``Any`` values by their runtime type as the models do (NaN and
    infinity as ``null``, like the models' default ``ser_json_inf_nan``).
    """
    if not isinstance(value, dict):
        value = dict(value)
    return pydantic_core.to_json({"type": kind, "seq": seq, key: value}, inf_nan_mode="null")


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


def parse_input(model: type[BaseModel], data: Any) -> Any:
    """Validate ``data`` against ``model``.

    Raises:
        BadInputError: Naming the first offending field.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise BadInputError(first["msg"], field=where) from None


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


class AgentRunner:
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
        self._accepted_reply: tuple[str, bytes] = ("", b"")
        """(instance id, ``Reply{ok, instance}`` as JSON) — the same bytes for every accepted call."""
        self._owed: list[Call] = []
        """Calls accepted since the accept sender last ran (it sends the accepts their workers did not)."""
        self._accepts_due: anyio.Event | None = None
        """Set to wake the accept sender (``None`` while it does not run: accepts are then sent at once)."""

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
                        while True:
                            await anyio.sleep(self._heartbeat_s)
                            await self._heartbeat()
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

    async def _send_accepts(self) -> None:
        """Send the accepts of calls that did not end in the turn that accepted them.

        The first call accepted after its last round schedules :meth:`_accepts_check` behind the worker
        its acceptance woke (``call_soon``); woken from there, the round runs once every worker woken in
        that turn has run up to its first wait (a call that ended meanwhile had its last message sent as
        the reply), and sends the accepts still owed, in acceptance order.
        """
        try:
            while True:
                self._accepts_due = due = anyio.Event()
                if self._owed:  # accepted while the last round was sending: their workers go first
                    await anyio.lowlevel.checkpoint()
                else:
                    await due.wait()
                if self.agent.accept_grace_s:  # calls that end meanwhile send their End in its place
                    await anyio.sleep(self.agent.accept_grace_s)
                owed, self._owed = self._owed, []
                for call in owed:
                    if call._accept_to:
                        await call._send_accept()
        finally:
            self._accepts_due = None

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

    async def _heartbeat(self) -> None:
        beat = Heartbeat(
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
        if self.bus.is_connected:
            await self.bus.publish(
                heartbeat_subject(self.agent.team, self.agent.name), beat.model_dump_json().encode()
            )

    def _stats_data(self) -> dict[str, Any]:
        return {
            **asdict(self.stats),
            "mailbox_depth": self._mailbox.depth,
            "mailbox_size": self._mailbox_size,
            **self.agent.stats(),
        }

    def _accept(self, msg: Message) -> bytes | None:
        """Take a request into the mailbox, or refuse it; the reply bytes (``None``: the reply comes later).

        Runs from the NATS client's reader as the request is parsed, so it never waits.

        Raises:
            BadInputError: Headers missing or the input not JSON.
            ForbiddenError: The caller's scopes lack the one the call needs.
            AgentBusyError: The mailbox is full, or the instance is shutting down.
        """
        self.stats.received += 1
        headers = msg.headers
        inbox = headers.get(HEADER_STREAM_INBOX) or (msg.reply[:-2] if msg.reply.endswith(".r") else "")
        request_id = headers.get(HEADER_REQUEST_ID, "")
        try:
            deadline = float(headers.get(HEADER_DEADLINE, "nan"))
        except ValueError:
            deadline = float("nan")
        if not inbox or not request_id or math.isnan(deadline):
            self.stats.refused_bad += 1
            required = f"{HEADER_REQUEST_ID}, {HEADER_DEADLINE} and {HEADER_STREAM_INBOX}"
            raise BadInputError(f"request headers {required} (or a reply subject <inbox>.r) are required")
        envelope, attachment = split_attachment(msg.data)
        if attachment is not None and not self.agent.takes_attachment:
            self.stats.refused_bad += 1
            raise BadInputError(f"{self.agent.name} takes no binary attachment", field="input")
        try:
            payload = pydantic_core.from_json(envelope) if envelope else {}
        except ValueError as exc:
            self.stats.refused_bad += 1
            raise BadInputError(f"input is not JSON: {exc}", field="input") from None
        scopes = parse_scopes_header(headers.get(HEADER_SCOPES))
        if self._scope_of_every_call not in scopes:  # (held: check_scope would pass, whatever the input)
            try:  # before the mailbox and before the input is validated
                check_scope(self.agent.name, self.agent.scopes, payload, scopes)
            except AgentError:
                self.stats.refused_bad += 1
                raise
        session = headers.get(HEADER_SESSION, "")
        if not session and isinstance(payload, dict) and isinstance(payload.get("session"), str):
            session = payload["session"]
        tenant = headers.get(HEADER_TENANT, DEFAULT_TENANT)
        call = Call(
            request_id=request_id,
            input=payload,
            deadline=deadline,
            tenant=tenant,
            trace_id=headers.get(HEADER_TRACE_ID, request_id),
            idempotency_key=headers.get(HEADER_IDEMPOTENCY_KEY, ""),
            inbox=inbox,
            _bus=self.bus,
            session=f"{tenant}/{session}" if session else "",
            scopes=scopes,
            traceparent=headers.get(TRACEPARENT, ""),
            attachment=attachment,
        )
        if session:
            call._turn = anyio.Event()
        try:
            self._mailbox.put_nowait(call)
        except MailboxFullError:
            self.stats.refused_busy += 1
            raise AgentBusyError(
                f"{self.agent.name}: mailbox full ({self._mailbox_size} calls waiting)"
            ) from None
        except MailboxClosedError:
            raise AgentBusyError(f"{self.agent.name}: shutting down") from None
        self.stats.accepted += 1
        self._active[request_id] = call
        if call.session:
            queue = self._sessions.setdefault(call.session, deque())
            queue.append(call)
            if len(queue) == 1:
                call._turn.set()  # type: ignore[union-attr]
        instance, reply = self._accepted_reply
        if instance != self.instance_id or not reply:
            reply = Reply(ok=True, instance=self.instance_id).model_dump_json().encode()
            self._accepted_reply = (self.instance_id, reply)
        due = self._accepts_due
        if due is None or not msg.reply:  # no accept sender running, or nobody waits for the accept
            return reply if msg.reply else None
        call._accept, call._accept_to = reply, msg.reply
        self._owed.append(call)
        if len(self._owed) == 1:
            asyncio.get_running_loop().call_soon(self._accepts_check)  # after the worker woken above
        return None

    def _accepts_check(self) -> None:
        """Wake the accept sender if a call still owes its accept; else (all ended at once) forget them.

        Runs right after the worker woken by the first of these calls: when that call (the only one,
        unless calls came in a batch) has ended, the accept sender is not woken at all.
        """
        due = self._accepts_due
        if any(call._accept_to for call in self._owed):
            if due is not None:
                due.set()
        else:
            self._owed.clear()

    async def _on_cancel(self, msg: Message) -> None:
        request_id = msg.subject.rsplit(".", 1)[-1]
        call = self._active.get(request_id)
        if call is not None:
            call.cancelled_by_caller = True  # not run if it has not started
            self._deadlines.cancel_call(call, "cancelled by the caller")

    async def _work(self) -> None:
        """One worker: serves the mailbox's calls one at a time until it is closed and empty.

        The calls run in the slot's cancel scope, which the deadline timer or a cancel message cancels
        for the call running then; the call is answered once out of that scope, and a new scope serves
        the next calls.
        """
        # The worker is its own task with its own context: bound once, the log context is set per call.
        tokens = structlog.contextvars.bind_contextvars(agent=self.agent.name, request_id="", trace_id="")
        ids = (tokens["request_id"].var, tokens["trace_id"].var)
        slot = WorkerSlot()
        self._deadlines.add(slot)
        try:
            while True:
                interrupted: tuple[Mapping[str, Any] | None, AgentError | None] | None = None
                with slot.scope:
                    interrupted = await self._serve_calls(slot, ids)
                if slot.call is None:
                    return  # the mailbox is closed and empty
                output, error = interrupted or (None, None)
                caught = slot.scope.cancelled_caught
                slot.scope = anyio.CancelScope()
                await self._end(slot, output, error, caught=caught)
        finally:
            if slot.call is not None:  # cancelled with the workers (the drain's grace ended)
                self._done(slot, "cancelled")
            self._deadlines.remove(slot)

    async def _serve_calls(
        self, slot: WorkerSlot, ids: tuple[ContextVar[Any], ContextVar[Any]]
    ) -> tuple[Mapping[str, Any] | None, AgentError | None] | None:
        """Serve calls until the mailbox is closed and empty (``None``) or the scope was cancelled.

        A call whose handler returned while its cancellation was on the way leaves the scope at once with
        its output or error; one whose handler was cancelled leaves with the cancellation (``slot.call``
        says which call, either way).
        """
        get, agent, deadlines = self._mailbox.get, self.agent, self._deadlines
        while (call := await get()) is not None:
            ids[0].set(call.request_id)
            ids[1].set(call.trace_id)
            slot.call = call
            if call._turn is not None:
                await call._turn.wait()  # earlier calls of the session go first
            self.stats.in_flight += 1
            call._started = time.perf_counter()
            if call.traceparent:  # untraced calls make no span and switch no context
                self._start_span(call)
            output: Mapping[str, Any] | None = None
            error: AgentError | None = None
            now = time.time()
            if call.cancelled_by_caller:
                pass  # answered as cancelled, never run
            elif call.deadline <= now:
                error = DeadlineExceededError(f"{agent.name}: deadline passed before the call ran")
            else:
                deadlines.start(slot, call.deadline, now)
                try:
                    if agent.input_model is not None:
                        call.input = parse_input(agent.input_model, call.input)
                    output = await agent.handle(call)
                except AgentError as exc:
                    error = exc
                except Exception as exc:
                    log.exception("agent failed")
                    error = AgentFailedError(f"{agent.name} failed: {type(exc).__name__}: {exc}")
                finally:
                    deadlines.stop(slot)
                if slot.scope.cancel_called:  # cancelled as it returned: leave the scope first
                    return output, error
            await self._end(slot, output, error, caught=False)
        return None

    def _start_span(self, call: Call) -> None:
        span = start_child(_tracer, "agent", parent=remote_context(call.traceparent), kind=SpanKind.SERVER)
        if span.is_recording():
            span.update_name(f"agent {self.agent.name}")
            span.set_attributes({"neurectomy.agent": self.agent.name, "neurectomy.team": self.agent.team})
            call._span, call._span_token = span, otel_context.attach(trace.set_span_in_context(span))

    async def _end(
        self, slot: WorkerSlot, output: Mapping[str, Any] | None, error: AgentError | None, *, caught: bool
    ) -> None:
        """Answer ``slot.call`` with its output or error (``caught``: its handler was cancelled)."""
        call = slot.call
        outcome = "completed"
        if call.cancelled_by_caller:
            error, outcome = CancelledByCallerError("cancelled by the caller"), "cancelled"
        elif caught:
            error = DeadlineExceededError(f"{self.agent.name}: deadline passed")
        if error is not None:
            if outcome != "cancelled":
                outcome = "failed"
            if call._span is not None:
                call._span.set_status(StatusCode.ERROR, error.code)
        try:
            # The last message goes out even when the drain's grace ends now. A shield scope costs more
            # than the rest of a call's bookkeeping; it matters only once the workers' scope is cancelled
            # (a publish waits only when nats-py's buffer is full), so only then is it paid.
            shield = anyio.CancelScope(shield=True) if self._workers_scope.cancel_called else _NO_SCOPE
            with shield:
                if error is not None:
                    await call._fail(error)
                elif output is not None:
                    await call._finish(output)
        finally:
            self._done(slot, outcome)

    def _done(self, slot: WorkerSlot, outcome: str) -> None:
        """Forget ``slot.call`` (answered, or cut off by the drain): counters, span, its session's next."""
        call: Call = slot.call
        slot.call = None
        if call._span is not None and call._span_token is not None:
            otel_context.detach(call._span_token)
            call._span.end()
        self._active.pop(call.request_id, None)
        stats = self.stats
        seconds = 0.0
        if call._started:  # (else cut off while waiting for its turn in a session)
            stats.in_flight -= 1
            seconds = time.perf_counter() - call._started
            stats.processing_s_total += seconds
        setattr(stats, outcome, getattr(stats, outcome) + 1)
        if call._turn is not None:
            self._next_in_session(call)
        log.debug("call done", outcome=outcome, seconds=round(seconds, 4))

    def _next_in_session(self, call: Call) -> None:
        queue = self._sessions.get(call.session)
        if not queue:
            return
        if queue[0] is call:
            queue.popleft()
        else:  # pragma: no cover - only when the worker was cancelled before its turn
            queue.remove(call)
        if queue:
            queue[0]._turn.set()  # type: ignore[union-attr]
        else:
            del self._sessions[call.session]

"""Dispatching one call to an agent over NATS and relaying its stream back.

The call's context and the headers that carry it are in `orchestrator._call_context` (re-exported here).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Final

import anyio
import pydantic_core
import structlog
from opentelemetry.trace import INVALID_SPAN, StatusCode
from pydantic import ValidationError
from pydantic_core import SchemaSerializer, core_schema

from agents._attachment import join_attachment, split_attachment
from agents.errors import (
    AgentError,
    DeadlineExceededError,
    InstanceLostError,
    NoRespondersError,
    StreamBrokenError,
    TooLargeError,
    error_from_wire,
)
from agents.messaging import Bus, Inbox, Message
from agents.natsheaders import header_block
from agents.protocol import (
    HEADER_ERROR_FIELD,
    Attached,
    Chunk,
    End,
    Error,
    Reply,
    agent_subject,
    cancel_subject,
    stream_message_adapter,
)
from agents.tracing import TRACEPARENT, SpanKind, start_child, traceparent, tracer
from orchestrator._call_context import CallContext, new_id
from orchestrator._generators import call_events
from orchestrator._observe import CallObserver

__all__ = ("PROBE_S", "AgentCall", "CallContext", "call_agent", "call_for_output", "new_id")

log = structlog.get_logger("neurectomy.orchestrator")
PROBE_S = 0.5
"""Seconds of silence from the instance running a call between checks that it still sends heartbeats."""
_tracer = tracer("neurectomy.orchestrator")
_REQUEST_JSON: Final = SchemaSerializer(
    core_schema.any_schema(), core_schema.CoreConfig(ser_json_inf_nan="constants")
)
"""A request's JSON: ``pydantic_core.to_json(payload)``'s bytes (NaN and infinity as its ``NaN`` and
``Infinity`` constants), the serializer built once instead of per call (a test compares the bytes)."""
_PUSHED_PROBE_FACTOR = 4
"""After a window in which chunks were pushed, the next look at the instance's heartbeats comes this many
``probe_s`` later: the stream's task wakes 4× less while tokens flow, and an instance lost mid-stream is
found at most ``2 × 4 × probe_s`` after its last chunk (4 s by default; with 1 s heartbeats and a TTL of 3,
at most ~1 s later than with every window ``probe_s``)."""


_STREAM_MESSAGE = b'{"type":'
"""How a stream message sent in the accept's place starts, as ``agents.actor`` writes it (a ``Reply`` has no
``type``; any other spelling takes the slower path, with the same result)."""
_CHUNK_MESSAGE = b'{"type":"chunk"'
"""How a ``Chunk`` starts as ``agents._call`` writes it: only such messages are parsed for a push consumer
(any other message, or spelling, is read by :meth:`AgentCall.next`, with the same result)."""
_validate_stream: Callable[[bytes], Chunk | End | Error] = stream_message_adapter.validator.validate_json
"""``stream_message_adapter.validate_json`` without the adapter's Python wrapper (its keyword checks cost
~0.7 µs of ~3 on every call's End): the same validator, the same result and errors."""
_END_MESSAGE = b'{"type":"end"'
"""How an ``End`` starts as ``agents._call`` writes it: read by :data:`_validate_end` first."""
_validate_end: Callable[[bytes], End] = End.__pydantic_validator__.validate_json
"""An ``End``'s JSON as an :class:`End`: what ``stream_message_adapter`` makes of a message whose ``type`` is
``"end"`` (the union's tag), without the union's dispatch (about a third less work on every call's End). A
message it refuses is read again by :data:`_validate_stream`, which raises what it always raised."""
_validate_chunk: Callable[[bytes], Chunk] = Chunk.__pydantic_validator__.validate_json
"""A pushed chunk's JSON as a :class:`Chunk`: what ``stream_message_adapter`` makes of a message with
``"type":"chunk"`` (the union's tag), without the adapter's Python wrapper. A payload with an attachment
after its JSON (none of a chunk's) fails here and is read by :meth:`AgentCall.next`, as is anything else."""


def _with_attachment(event: Chunk | End | Error, attachment: memoryview | None) -> Chunk | End | Error:
    """An ``End`` whose output carries the attachment that followed its JSON (`agents.protocol.Attached`)."""
    if attachment is None or not isinstance(event, End):
        return event
    return End.model_construct(seq=event.seq, output=Attached(event.output, attachment))


def _accepted(reply: Message, agent: str) -> tuple[str, Chunk | End | Error | None]:
    """The id of the instance that accepted the call; or the call's last message, sent in the accept's place.

    An agent whose call ended before its accept went out answers with the call's ``End``/``Error`` (a
    stream message, with a ``type``) instead of ``Reply{ok}`` (see ``agents.actor``).

    Raises:
        AgentError: The agent refused (busy, bad headers, ...), or the reply is unreadable.
    """
    if reply.headers:
        code = reply.headers.get("Nats-Service-Error-Code")
        if code:
            raise error_from_wire(
                code, reply.headers.get("Nats-Service-Error", code), reply.headers.get(HEADER_ERROR_FIELD)
            )
    try:
        envelope, attachment = split_attachment(reply.data)
        if envelope.startswith(_STREAM_MESSAGE):  # the common case: read straight into the model
            event: Chunk | End | Error
            if envelope.startswith(_END_MESSAGE):
                try:
                    event = _validate_end(envelope)
                except ValueError:  # the union raises what it always raised, or reads what End cannot
                    event = _validate_stream(envelope)
            else:
                event = _validate_stream(envelope)
            return "", event if attachment is None else _with_attachment(event, attachment)
        data = pydantic_core.from_json(envelope)
        if isinstance(data, dict) and "type" in data:
            return "", _with_attachment(stream_message_adapter.validate_python(data), attachment)
        parsed = Reply.model_validate(data)
    except ValueError:  # pydantic's ValidationError is one too
        raise StreamBrokenError(f"{agent} sent an unreadable reply") from None
    if not parsed.ok:
        err = parsed.error
        raise error_from_wire(err.code, err.message, err.field) if err else StreamBrokenError("refused")
    return parsed.instance, None


def call_agent(
    bus: Bus,
    team: str,
    agent: str,
    payload: Mapping[str, Any],
    ctx: CallContext,
    *,
    accept_timeout_s: float,
    subject: str | None = None,
    alive: Callable[[str], bool] | None = None,
    probe_s: float = PROBE_S,
) -> AsyncGenerator[Chunk | End, None]:
    """Call an agent: an async generator of its chunks, then its :class:`End`.

    Leaving early (break, exception, cancellation) publishes a cancel for the call, so the agent stops.

    Args:
        bus: Connected bus.
        team: The agent's team.
        agent: The agent's name.
        payload: Its input (JSON-serialisable).
        ctx: Request id, deadline, tenant, trace id.
        accept_timeout_s: How long the agent may take to accept or refuse, in seconds.
        subject: Where to send (default: the agent's shared subject; the router passes an instance's
            direct subject).
        alive: ``alive(instance_id)`` tells whether the instance that accepted the call still sends
            heartbeats; checked every ``probe_s`` seconds of silence, so a crashed instance fails the call
            with :class:`InstanceLostError` within a few heartbeats instead of at the deadline.
        probe_s: Seconds of silence between liveness checks.

    Raises:
        NoRespondersError: No instance of the agent is running (immediately).
        AgentBusyError: The agent's mailbox is full.
        TooLargeError: The payload, as JSON, exceeds the NATS server's max payload.
        DeadlineExceededError: The deadline passed (the agent is told to cancel).
        AgentError: Whatever the agent reported (bad input, failure, ...).
        StreamBrokenError: Chunks were lost or arrived out of order.
        InstanceLostError: The instance that accepted the call stopped sending heartbeats.
    """
    call = AgentCall(bus, agent, ctx, alive, probe_s)
    return call_events(call, team, subject or agent_subject(team, agent), payload, accept_timeout_s)


class AgentCall:
    """One call on the wire: the request and its accept, then the stream messages, checked and in order.

    Shared by :func:`call_agent` (a generator, for streams), :func:`call_for_output` (a plain
    coroutine: most calls want the output alone, and a generator per call costs more) and the router's
    streams (:meth:`orchestrator.Router.open_stream`).

    A stream's consumer may take its chunks as they arrive instead of reading them (:meth:`push`): each is
    checked as :meth:`next` checks it (in sequence, before the deadline) and handed over inside nats-py's
    read loop, without waking the consumer's task; everything else (the End, an Error, a message out of
    order or unreadable, the deadline, a lost instance) still comes from :meth:`next`.
    """

    __slots__ = (
        "_agent",
        "_alive",
        "_box",
        "_bus",
        "_ctx",
        "_event",
        "_expected",
        "_on_chunk",
        "_probe_s",
        "_span",
        "done",
        "instance",
    )

    def __init__(
        self,
        bus: Bus,
        agent: str,
        ctx: CallContext,
        alive: Callable[[str], bool] | None,
        probe_s: float,
    ) -> None:
        self._bus = bus
        self._agent = agent
        self._ctx = ctx
        self._alive = alive
        self._probe_s = probe_s
        self._event: Chunk | End | Error | None = None
        self._expected = 0
        self._on_chunk: Callable[[Chunk], None] | None = None
        self.done = False
        """Whether the call's End or Error arrived."""
        self.instance = ""
        """The id of the instance that accepted the call (empty when its End/Error came as the reply)."""

    async def start(
        self, team: str, subject: str, payload: Mapping[str, Any], accept_timeout_s: float
    ) -> None:
        """Send the request and take the accept (or the call's last message in its place).

        Raises:
            TooLargeError, NoRespondersError, AgentBusyError, DeadlineExceededError, AgentError: See
                :func:`call_agent`.
        """
        agent, ctx = self._agent, self._ctx
        body = _REQUEST_JSON.to_json(payload)
        if isinstance(payload, Attached):  # raw bytes after the JSON (agents.protocol)
            body = join_attachment(body, payload.attachment)
        if len(body) > self._bus.max_payload:
            raise TooLargeError(
                f"the request to {agent} is {len(body)} bytes as JSON; "
                f"NATS carries at most {self._bus.max_payload} bytes"
            )
        # Not the current span: a generator's frames interleave with its consumer's, so the span is
        # ended by hand and reaches the agent only through the ``traceparent`` header.
        span = self._span = start_child(_tracer, "nats", kind=SpanKind.CLIENT)  # no-op when untraced
        traced = span is not INVALID_SPAN and span.is_recording()  # (start_child's no-op span: no call)
        bus = self._bus
        box = self._box = bus.open_inbox_now() if bus.inboxes_started else await bus.open_inbox()
        reply: Message | None = None
        try:
            # the reply subject, <box.subject>.r, names the stream inbox
            if traced:
                span.update_name(f"nats {agent}")
                span.set_attributes(
                    {
                        "messaging.system": "nats",
                        "messaging.destination.name": subject,
                        "neurectomy.team": team,
                    }
                )
                block = header_block({**ctx.headers(), TRACEPARENT: traceparent(span)})
                reply = await box.request(  # the accept comes to the same inbox as the stream
                    subject, body, block=block, timeout_s=min(accept_timeout_s, ctx.remaining_s())
                )
            else:  # the block is written only if the request goes over NATS
                reply = await box.request(
                    subject, body, source=ctx, timeout_s=min(accept_timeout_s, ctx.remaining_s())
                )
            self.instance, self._event = _accepted(reply, agent)
        except BaseException as exc:
            _end(span, exc)
            self._bus.close_inbox(box)
            if reply is None and not isinstance(exc, NoRespondersError):
                await self._cancel()  # left before the accept (cancelled, no accept in time): it may run
            raise
        if traced:
            span.set_attribute("neurectomy.instance", self.instance)

    def answered(self) -> End | None:
        """The call's :class:`End` if it came as the reply (the whole answer in one message), else None.

        A call answered so is over: its span ends and its inbox closes here (no :meth:`finish`).
        """
        event = self._event
        if not isinstance(event, End) or event.seq != self._expected:
            return None
        self._event, self._expected, self.done = None, self._expected + 1, True
        if self._span is not INVALID_SPAN:  # (_end without a failure; the no-op span's end does nothing)
            self._span.end()
        self._bus.close_inbox(self._box)
        return event

    async def next(self) -> Chunk | End:
        """The next chunk, or the End (then :attr:`done`).

        Raises:
            AgentError: The agent's Error (then :attr:`done`).
            StreamBrokenError, DeadlineExceededError, InstanceLostError: See :func:`call_agent`.
        """
        event, agent = self._event, self._agent
        if event is None:
            msg = await _next(self._box, self._ctx, agent, self.instance, self._alive, self._probe_s)
            try:
                envelope, attachment = split_attachment(msg.data)
                event = _with_attachment(_validate_stream(envelope), attachment)
            except ValidationError as exc:
                raise StreamBrokenError(f"unreadable stream message from {agent}: {exc}") from None
        else:  # the call's last message came as the reply
            self._event = None
        if event.seq != self._expected:
            raise StreamBrokenError(f"expected message {self._expected} from {agent}, got {event.seq}")
        self._expected += 1
        if isinstance(event, Error):
            self.done = True
            raise error_from_wire(event.error.code, event.error.message, event.error.field)
        if isinstance(event, End):
            self.done = True
        return event

    def push(self, on_chunk: Callable[[Chunk], None]) -> None:
        """Hand each later chunk to ``on_chunk`` as it arrives, in nats-py's read loop (no task wake-up).

        A chunk is pushed when it is the next in sequence, arrives before the call's deadline and nothing
        else waits to be read; anything else waits for :meth:`next`, which reads and checks it as before
        (so the order holds and every error is raised where it was). ``on_chunk`` runs inside the read loop:
        it must not block; an exception it raises stops the pushing and is raised by :meth:`next`.
        Call it after :meth:`start`; :meth:`finish` stops it.
        """
        self._on_chunk = on_chunk
        self._box.push(self._take)

    def _take(self, data: bytes) -> bool:
        """Push ``data`` if it is the next chunk, in time (see :meth:`push`); whether it was taken."""
        on_chunk = self._on_chunk
        if on_chunk is None or not data.startswith(_CHUNK_MESSAGE) or time.time() >= self._ctx.deadline:
            return False
        try:  # a Chunk alone (what next() reads it as); anything else, an attachment too, goes to next()
            event = _validate_chunk(data)
        except ValueError:
            return False  # next() reads it and says what is wrong
        if event.seq != self._expected:
            return False
        self._expected += 1
        try:
            on_chunk(event)
        except Exception as exc:  # the read loop must go on: the consumer's task raises it from next()
            self._on_chunk = None
            self._box.push(None)
            self._box.put_error(exc)
        return True

    async def finish(self, failure: BaseException | None) -> None:
        """End the span (failed if ``failure``), cancel the call if it has not ended, close the inbox."""
        self._on_chunk = None
        self._box.push(None)
        try:
            _end(self._span, failure)
            if not self.done:
                await self._cancel()
        finally:
            self._bus.close_inbox(self._box)

    async def _cancel(self) -> None:
        """Tell the agent to stop the call (shielded: sent even while the caller is being cancelled)."""
        request_id = self._ctx.request_id
        with anyio.CancelScope(shield=True):
            await self._bus.publish(cancel_subject(request_id), b"")
            log.info("call cancelled", agent=self._agent, request_id=request_id)


async def _next(
    box: Inbox,
    ctx: CallContext,
    agent: str,
    instance: str,
    alive: Callable[[str], bool] | None,
    probe_s: float,
) -> Message:
    """The call's next stream message, checking every ``probe_s`` seconds of silence that ``instance`` lives.

    Chunks pushed to the call's consumer meanwhile (:meth:`AgentCall.push`) are not silence: the next look
    then comes ``_PUSHED_PROBE_FACTOR`` windows later.

    Raises:
        DeadlineExceededError: The call's deadline passed.
        InstanceLostError: ``alive(instance)`` says the instance stopped sending heartbeats.
    """
    if alive is None or not instance:
        try:
            return await box.next(ctx.remaining_s())
        except DeadlineExceededError:
            raise _deadline_passed(agent) from None
    pushed, wait_s = box.pushed, probe_s
    while True:
        try:
            return await box.next(min(ctx.remaining_s(), wait_s))
        except DeadlineExceededError:
            if ctx.remaining_s() <= 0:
                raise _deadline_passed(agent) from None
            if box.pushed != pushed:  # the instance sent chunks meanwhile: not silent, look again later
                pushed, wait_s = box.pushed, probe_s * _PUSHED_PROBE_FACTOR
                continue
            wait_s = probe_s
            if not alive(instance):
                raise InstanceLostError(
                    f"{agent} instance {instance} stopped sending heartbeats during the call"
                ) from None


def _deadline_passed(agent: str) -> DeadlineExceededError:
    """The error of a call whose deadline passed while it ran (clients see its message: no inbox name)."""
    return DeadlineExceededError(f"the request's deadline passed while {agent} was still answering")


def _end(span: Any, failure: BaseException | None) -> None:
    """End a hop span, marking it failed with the wire code of ``failure`` if there is one."""
    if failure is not None and span.is_recording():
        code = failure.code if isinstance(failure, AgentError) else type(failure).__name__
        span.set_status(StatusCode.ERROR, str(code))
    span.end()


async def call_for_output(
    bus: Bus,
    team: str,
    agent: str,
    payload: Mapping[str, Any],
    ctx: CallContext,
    *,
    accept_timeout_s: float,
    observer: CallObserver | None,
    subject: str | None = None,
    alive: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Call an agent through :func:`call_agent` and return its output (streamed chunks are dropped).

    The call's latency and outcome (``ok`` or the wire code) go to ``observer.hop``.

    Raises:
        AgentError: See :func:`call_agent`.
    """
    call = AgentCall(bus, agent, ctx, alive, PROBE_S)
    started, outcome = (time.perf_counter() if observer is not None else 0.0), "cancelled"
    try:
        await call.start(team, subject or agent_subject(team, agent), payload, accept_timeout_s)
        answer = call.answered()
        if answer is not None:
            outcome = "ok"
            return answer.output
        failure: BaseException | None = None
        try:
            while True:
                event = await call.next()
                if isinstance(event, End):
                    outcome = "ok"
                    return event.output
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await call.finish(failure)
    except AgentError as exc:
        outcome = exc.code
        raise
    finally:
        if observer is not None:
            observer.hop(team, agent, outcome, time.perf_counter() - started)

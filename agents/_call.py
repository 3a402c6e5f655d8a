"""A call as its agent sees it: the request's input and deadline, and the messages sent to its caller.

A :class:`Call` streams ``Chunk`` messages to the caller's inbox (:meth:`Call.emit`) and ends with one
``End`` (followed by the handler's binary attachment, if any) or ``Error``. Its accept (``Reply{ok}``)
goes out first, unless the call's last message can be the reply in its place (see :mod:`agents.actor`).
Public as ``agents.actor.Call``.

A call whose caller lives in this process (``Call._local``, set when the request is accepted: see
:meth:`Bus.local_inbox <agents.messaging.Bus.local_inbox>`, or the inbox a local request names,
``agents._message.LocalRequest.reply_to``) hands its messages to the caller's inbox
directly (:meth:`Bus.send_local <agents.messaging.Bus.send_local>`), all of them, accept included; if one
cannot go that way (the connection down, over the payload limit), it and every later message of the call
go over NATS: local messages are delivered at once, so none can overtake an earlier one either way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import Token
from dataclasses import dataclass
from typing import Any, Final

import anyio
from opentelemetry import context as otel_context
from opentelemetry.trace import Span
from pydantic_core import SchemaSerializer, core_schema

from agents._attachment import join_attachment
from agents._inbox import REPLY_SUFFIX
from agents._message import LocalTarget
from agents.errors import AgentError
from agents.messaging import Bus
from agents.protocol import Error, WireError


@dataclass(slots=True, init=False)
class Call:
    """One accepted request, as the agent sees it (its constructor takes the fields in this order).

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
    session: str
    scopes: frozenset[str]
    _turn: anyio.Event | None
    """Set when the call's turn in its session comes (session calls only)."""
    _seq: int
    cancelled_by_caller: bool
    idempotency_key: str
    traceparent: str
    _accept_to: str
    """The reply subject while the call still owes the caller its accept (empty once it went out, or the
    call's End/Error in its place)."""
    _accept: bytes
    """The accept (``Reply{ok, instance}``) as JSON."""
    _at_once: bool
    """Whether its last message is written to the connection at once (`Bus.publish_now`); set by the
    worker when this is the only call its instance has in hand."""
    _started: float
    """When a worker started it (``time.perf_counter()``; 0 until then)."""
    _span: Span | None
    """Its span, when the caller's trace is sampled."""
    _span_token: Token[otel_context.Context] | None
    attachment: memoryview | None
    reply_attachment: bytes | bytearray | memoryview | None
    _local: LocalTarget | None
    """The caller's inbox in this process, while its messages go there without NATS (None: over NATS)."""

    def __init__(
        self,
        request_id: str,
        input: Any,
        deadline: float,
        tenant: str,
        trace_id: str,
        inbox: str,
        _bus: Bus,
        session: str = "",
        scopes: frozenset[str] = frozenset(),
        _turn: anyio.Event | None = None,
        _seq: int = 0,
        cancelled_by_caller: bool = False,
        idempotency_key: str = "",
        traceparent: str = "",
        _accept_to: str = "",
        _accept: bytes = b"",
        _at_once: bool = False,
        _started: float = 0.0,
        _span: Span | None = None,
        _span_token: Token[otel_context.Context] | None = None,
        attachment: memoryview | None = None,
        reply_attachment: bytes | bytearray | memoryview | None = None,
        _local: LocalTarget | None = None,
    ) -> None:
        # The dataclass's own __init__, written out (as agents._message.Message's, why: there): compiled,
        # each line is a store into the native object; the dataclass's would stay interpreted.
        self.request_id = request_id
        self.input = input
        self.deadline = deadline
        self.tenant = tenant
        self.trace_id = trace_id
        self.inbox = inbox
        self._bus = _bus
        self.session = session
        self.scopes = scopes
        self._turn = _turn
        self._seq = _seq
        self.cancelled_by_caller = cancelled_by_caller
        self.idempotency_key = idempotency_key
        self.traceparent = traceparent
        self._accept_to = _accept_to
        self._accept = _accept
        self._at_once = _at_once
        self._started = _started
        self._span = _span
        self._span_token = _span_token
        self.attachment = attachment
        self.reply_attachment = reply_attachment
        self._local = _local

    def remaining_s(self) -> float:
        """Seconds left until the deadline (negative once passed)."""
        return self.deadline - time.time()

    async def emit(self, data: Mapping[str, Any]) -> None:
        """Send one chunk of streamed output to the caller."""
        if self._accept_to:
            await self._send_accept()
        await self._send(self.inbox, _wire_json("chunk", self._seq, "data", data), at_once=self._at_once)
        self._seq += 1

    def emit_now(self, data: Mapping[str, Any], *, write: bool = False) -> bool:
        """Send one chunk of streamed output now if the connection takes it without waiting.

        For a loop callback (no ``await``): a generation's text as it reaches the event loop
        (:class:`bridges.RyotBridge`'s ``on_text``). In order with :meth:`emit` (same sequence numbers).

        Args:
            data: The chunk's data.
            write: Write it to the connection at once when nothing else is pending (the only message of
                this loop turn, see :meth:`Bus.publish_now <agents.messaging.Bus.publish_now>`).

        Returns:
            Whether it was sent; if not (reconnecting, the send buffer full), nothing of the chunk was, and
            :meth:`emit` must send it.
        """
        if self._accept_to:
            if not self._now(self._accept_to, self._accept):
                return False
            self._accept_to = ""
        if not self._now(self.inbox, _wire_json("chunk", self._seq, "data", data), write=write):
            return False
        self._seq += 1
        return True

    def _now(self, subject: str, body: bytes, *, at_once: bool = False, write: bool = False) -> bool:
        """Send ``body`` to the caller now: to its inbox in this process, else queued on the connection.

        ``at_once``, ``write``: see :meth:`Bus.publish_now <agents.messaging.Bus.publish_now>`. Returns
        whether it was sent; if not, :meth:`Bus.publish <agents.messaging.Bus.publish>` must send it.
        """
        local = self._local
        if local is not None:  # the caller is in this process: into its inbox, unless it cannot go so
            if self._bus.send_local(local, subject, body):
                return True
            self._local = None  # then none of the call's later messages goes so: over NATS, behind it
        return self._bus.publish_now(subject, body, at_once=at_once, write=write)

    async def _send(self, subject: str, body: bytes, *, at_once: bool = False) -> None:
        """Publish ``body``: queued at once when the connection can take it, else as a publish does.

        ``at_once``: see :meth:`Bus.publish_now <agents.messaging.Bus.publish_now>` (a chunk of the only
        call in hand leaves without waiting for nats-py's flusher task, as its last message does).
        """
        if not self._now(subject, body, at_once=at_once):
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
        if to and to != self.inbox + REPLY_SUFFIX:  # a reply subject of the caller's own: accept first
            await self._send(to, self._accept)
            to = ""
        await self._send(to or self.inbox, body, at_once=self._at_once)

    def _end_body(self, output: Mapping[str, Any]) -> bytes:
        body = _wire_json("end", self._seq, "output", output)
        if self.reply_attachment is not None:
            body = join_attachment(body, self.reply_attachment)
        return body

    def _finish_now(self, output: Mapping[str, Any]) -> bool:
        """Queue the call's ``End`` without waiting, as :meth:`_finish` sends it; whether it was.

        ``False`` (nothing sent) when that takes more than one message queued at once: an accept still
        owed to a reply subject of the caller's own, or a send buffer that cannot take it now.
        """
        to = self._accept_to
        if to and to != self.inbox + REPLY_SUFFIX:
            return False
        if not self._now(to or self.inbox, self._end_body(output), at_once=self._at_once):
            return False
        self._accept_to = ""
        return True

    async def _finish(self, output: Mapping[str, Any]) -> None:
        await self._last(self._end_body(output))

    async def _fail(self, error: AgentError) -> None:
        wire = WireError(code=error.code, message=error.message, field=error.field)
        await self._last(Error(seq=self._seq, error=wire).model_dump_json().encode())


_WIRE_JSON: Final = SchemaSerializer(
    core_schema.any_schema(), core_schema.CoreConfig(ser_json_inf_nan="null")
)
"""``pydantic_core.to_json(value, inf_nan_mode="null")``, prebuilt: the same bytes (a test compares them over
values of every kind JSON takes), ~14 % less work per message (the serializer is not built per call)."""


def _wire_json(kind: str, seq: int, key: str, value: Mapping[str, Any]) -> bytes:
    """``Chunk``/``End`` as JSON, byte for byte what ``model_dump_json`` writes, without building the model.

    An ``any`` schema's serializer writes ``Any`` values by their runtime type as the models do (NaN and
    infinity as ``null``, like the models' default ``ser_json_inf_nan``). Only ``value`` goes through it; the
    envelope around it (``kind`` and ``key`` are this module's literals, ``seq`` an ``int``) is written as the
    serializer writes it: no dictionary built and walked per message (~1.3k instructions of ~5.5k).
    """
    if not isinstance(value, dict):
        value = dict(value)
    head = f'{{"type":"{kind}","seq":{seq},"{key}":'.encode()
    return b"".join((head, _WIRE_JSON.to_json(value), b"}"))

"""The accept path of an :class:`~agents.actor.AgentRunner`: a request into the mailbox, and its accept.

:class:`AcceptPath` takes a request as the NATS client's reader parses it: it checks the headers, the
attachment, the JSON input and the caller's scope, puts the call in the mailbox (behind the earlier calls
of its session), or refuses it (bad input, forbidden, ``busy``). The accept (``Reply{ok}``) is the reply
at once when no accept sender runs; else the accept sender sends it once the workers woken by the request
have had their turn, unless the call ended in that turn and its ``End``/``Error`` went as the reply.

The calls accepted in one turn of the event loop (one read of the socket) are a batch: a check scheduled
behind the first one's worker hands the accept sender only the calls of that batch that still owe their
accept (their workers have all run by the time it wakes). Calls accepted later, even before the accept
sender has run, are the next batch, with a check of their own: the accept sender never sends the accept
of a call whose worker has not had its turn yet (before, ~5 % of the calls at 64 in flight got an accept
and then their ``End``, three messages instead of two, when a read was parsed between the check and the
accept sender).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
from mypy_extensions import trait

from agents._attachment import split_attachment
from agents._call import Call
from agents._decode import from_json
from agents._inbox import REPLY_SUFFIX
from agents._message import LocalRequest
from agents.errors import AgentBusyError, AgentError, BadInputError, TooLargeError
from agents.mailbox import Mailbox, MailboxClosedError, MailboxFullError
from agents.messaging import Bus, Message
from agents.protocol import (
    DEFAULT_TENANT,
    HEADER_DEADLINE,
    HEADER_IDEMPOTENCY_KEY,
    HEADER_REQUEST_ID,
    HEADER_SCOPES,
    HEADER_SESSION,
    HEADER_STREAM_INBOX,
    HEADER_TENANT,
    HEADER_TRACE_ID,
    Reply,
)
from agents.scopes import Scope, check_scope, parse_scopes_header
from agents.tracing import TRACEPARENT

if TYPE_CHECKING:
    from agents.actor import Agent, RunnerStats


@trait  # a mixin of AgentRunner: a compiled class has one base unless the others are traits
class AcceptPath:
    """The accept path of :class:`~agents.actor.AgentRunner`.

    A mixin: the runner's ``__init__`` sets the attributes below.
    """

    bus: Bus
    agent: Agent
    stats: RunnerStats
    instance_id: str
    _mailbox: Mailbox[Call]
    _mailbox_size: int
    _active: dict[str, Call]
    _sessions: dict[str, deque[Call]]
    _scope_of_every_call: Scope | None
    _accepted_reply: Any  # tuple[str, bytes]: so typed in a trait, mypyc 2.4.1 writes C that does not compile
    _owed: list[Call]
    _accepts_owed: list[Call]
    _accepts_due: anyio.Event | None

    def _accept(self, msg: Message) -> bytes | None:
        """Take a request into the mailbox, or refuse it; the reply bytes (``None``: the reply comes later).

        Runs from the NATS client's reader as the request is parsed, so it never waits.

        Raises:
            BadInputError: Headers missing or the input not JSON.
            TooLargeError: The JSON input is longer than the agent's ``max_input_bytes`` (not decoded).
            ForbiddenError: The caller's scopes lack the one the call needs.
            AgentBusyError: The mailbox is full, or the instance is shutting down.
        """
        self.stats.received += 1
        headers = msg.headers
        to = msg.reply
        own = to.removesuffix(REPLY_SUFFIX)
        inbox = headers.get(HEADER_STREAM_INBOX) or (own if own != to else "")
        request_id = headers.get(HEADER_REQUEST_ID, "")
        try:
            deadline = (  # a request handed over in this process carries it as a number
                msg.deadline if type(msg) is LocalRequest else float(headers.get(HEADER_DEADLINE, "nan"))
            )
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
        if len(envelope) > (limit := self.agent.max_input_bytes):  # not decoded: a decode blocks the loop
            self.stats.refused_bad += 1
            size = f"{len(envelope)} bytes of JSON; {self.agent.name} takes at most {limit} bytes"
            raise TooLargeError(size, field="input")
        try:
            payload = from_json(envelope) if envelope else {}  # the collector paused if it is large
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
        # The fields without a default by position, the others set after: a third of the keywords' cost.
        trace_id = headers.get(HEADER_TRACE_ID, request_id)
        call = Call(request_id, payload, deadline, tenant, trace_id, inbox, self.bus)
        call.scopes = scopes
        if HEADER_IDEMPOTENCY_KEY in headers:
            call.idempotency_key = headers[HEADER_IDEMPOTENCY_KEY]
        if TRACEPARENT in headers:
            call.traceparent = headers[TRACEPARENT]
        if attachment is not None:
            call.attachment = attachment
        if self.bus.local_replies and msg.reply == inbox + REPLY_SUFFIX:  # a caller in this process: not NATS
            call._local = msg.reply_to if type(msg) is LocalRequest else self.bus.local_inbox(msg.reply)
        if session:
            call.session = f"{tenant}/{session}"
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
            return None if not msg.reply or call._now(msg.reply, reply) else reply
        call._accept, call._accept_to = reply, msg.reply
        self._owed.append(call)
        if len(self._owed) == 1:
            asyncio.get_running_loop().call_soon(self._accepts_check)  # after the worker woken above
        return None

    def _accepts_check(self) -> None:
        """Hand the accept sender the calls of this batch that still owe their accept, and wake it.

        Runs right after the worker woken by the first call of the batch, and in the same turn of the
        event loop as the workers of the others (woken after it): when every call of the batch has ended
        by then, the accept sender is not woken at all. Calls accepted after this check are the next
        batch (a check of their own), so the accept sender, which runs in a later turn, never sends the
        accept of a call whose worker has not run yet.
        """
        batch, self._owed = self._owed, []
        owing = [call for call in batch if call._accept_to]
        if owing:
            self._accepts_owed += owing
            due = self._accepts_due
            if due is not None:
                due.set()

    async def _send_accepts(self) -> None:
        """Send the accepts of calls that did not end in the turn that accepted them.

        The first call of a batch (the calls accepted since the last :meth:`_accepts_check`) schedules
        that check behind the worker its acceptance woke (``call_soon``); the check hands over the calls
        still owing once every worker woken with the batch has run up to its first wait (a call that
        ended meanwhile had its last message sent as the reply), and this sends their accepts, in
        acceptance order.
        """
        try:
            while True:
                self._accepts_due = due = anyio.Event()
                if not self._accepts_owed:  # (else handed over while the last round was sending)
                    await due.wait()
                if self.agent.accept_grace_s:  # calls that end meanwhile send their End in its place
                    await anyio.sleep(self.agent.accept_grace_s)
                owed, self._accepts_owed = self._accepts_owed, []
                for call in owed:
                    if call._accept_to:
                        await call._send_accept()
        finally:
            self._accepts_due = None

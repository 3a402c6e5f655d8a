"""The reading side of a bus: :class:`Inbox`, :class:`Message` and the reads' one deadline timer.

An inbox takes a subject's messages, one read at a time, and sends a request whose reply comes to it;
all reads of a bus share one deadline timer (:class:`Timers`); a read returns a :class:`Message`.

Made and fed by :class:`agents.messaging.Bus` (which re-exports :class:`Inbox` and :class:`Message`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Sized
from typing import Final, Protocol

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg

from agents._localrequest import DeliveryCount
from agents._localrequest import find as find_endpoint
from agents._message import Message, new_local_request, new_message, to_message
from agents._natsfast import CONNECTED, WriteTurn, publish, publish_block, send_now
from agents.errors import DeadlineExceededError, NoRespondersError
from agents.natsheaders import parse_header_lines

__all__ = ("REPLY_SUFFIX", "HeaderSource", "Inbox", "Message", "Timers", "to_message")

REPLY_SUFFIX: Final = ".r"
"""What an inbox's request reply subject adds to the inbox: ``<inbox>.r`` (:meth:`Inbox.request`; an agent
answers a caller in the same process directly only there, :mod:`agents._localinbox`)."""

_NO_RESPONDERS = "503"

log = structlog.get_logger("neurectomy.nats")

LOCAL_ANSWERS = DeliveryCount()
"""Messages delivered to an inbox in this process without nats-server (an agent's answers), since the process
started: by :class:`agents._localinbox.LocalInbox` or by :meth:`Inbox.deliver` (``Bus.local_deliveries``)."""


class HeaderSource(Protocol):
    """A request's headers in both forms, each made only if needed (``orchestrator.CallContext``).

    :meth:`Inbox.request` writes :meth:`header_block` for a request that goes over NATS, and hands
    :meth:`header_fields` to an endpoint in this process (:mod:`agents._localrequest`) instead of writing the
    block and parsing it straight back.
    """

    def header_block(self) -> bytes:
        """The header block (``agents.natsheaders.header_block``'s bytes)."""

    @property
    def deadline(self) -> float:
        """The request's deadline, ``time.time()`` seconds (the ``Neurectomy-Deadline`` field's number)."""

    def header_fields(self, *, deadline: bool = True) -> dict[str, str]:
        """A new dict equal to ``parse_header_lines`` of :meth:`header_block`'s lines (after ``NATS/1.0``).

        Without the ``Neurectomy-Deadline`` field when ``deadline`` is false (:attr:`deadline` then goes
        as a number).
        """


class Timers:
    """One timer for all the waits of a bus's inboxes, instead of a timer handle per wait.

    Each wait is an entry ``(deadline, seq, waiter)`` in a heap; one ``call_later`` handle is armed for
    the earliest deadline and, when it fires, resolves every waiter whose deadline passed (the inbox then
    finds nothing and raises). A wait that ends otherwise leaves its entry behind, done; such entries are
    dropped when they reach the top, or all at once when they outnumber the live waits (amortised O(1)).
    Deadlines are ``time.monotonic()`` seconds.
    """

    __slots__ = ("_at", "_handle", "_heap", "_live", "_loop", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf
        self._live = 0
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None

    def waiter(self, deadline: float) -> asyncio.Future[None]:
        """A future resolved at ``deadline`` at the latest; call :meth:`ended` when the wait is over."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a bus moved to another loop: start afresh
            self._heap, self._handle, self._at, self._live, self._loop = [], None, math.inf, 0, loop
        waiter: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (deadline, next(self._seq), waiter))
        self._live += 1
        if deadline < self._at:
            self._arm(loop, deadline)
        elif len(self._heap) > 2 * self._live + 1024:
            self._heap = [entry for entry in self._heap if not entry[2].done()]
            heapq.heapify(self._heap)
        return waiter

    def ended(self) -> None:
        """A wait made by :meth:`waiter` is over (its future is done)."""
        self._live -= 1

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._at = deadline
        self._handle = loop.call_later(max(0.0, deadline - time.monotonic()), self._fire)

    def _fire(self) -> None:
        self._handle, self._at = None, math.inf
        heap, now = self._heap, time.monotonic()
        while heap:
            deadline, _, waiter = heap[0]
            if not waiter.done():
                if deadline > now:
                    break
                waiter.set_result(None)
            heapq.heappop(heap)
        if heap and self._loop is not None:
            self._arm(self._loop, heap[0][0])


class Inbox:
    """Messages sent to one subject, read one at a time, with a timeout per read.

    Made by :meth:`agents.messaging.Bus.inbox`. Arriving messages are buffered (unbounded: an inbox lives
    for one call) until read; a read waits on a future, woken by the message or by the bus's one deadline
    timer (:class:`Timers`) instead of a task or a timer handle per read. :meth:`request` sends a request
    whose reply comes to this inbox too (on ``<subject>.r``), so one call needs no other inbox.

    ``calls`` (the bus's open inboxes) tells whether this is the bus's only call: only then is its request
    written at once when it is the first message of a turn of the event loop (``turn``); with others in
    flight, the requests of a turn leave together in one write of nats-py's flusher (fewer writes here,
    fewer reads for nats-server).

    A reader may also take messages as they arrive, in nats-py's read loop, instead of reading them
    (:meth:`push`): a stream's chunks then reach their consumer without a task wake-up each.
    """

    __slots__ = (
        "_calls",
        "_local_requests",
        "_nc",
        "_open",
        "_queue",
        "_reply",
        "_reply_subject",
        "_sink",
        "_timers",
        "_turn",
        "_waiter",
        "pushed",
        "subject",
    )

    def __init__(
        self,
        nc: Client,
        timers: Timers,
        turn: WriteTurn,
        subject: str,
        calls: Sized = (),
        *,
        local_requests: bool = False,
    ) -> None:
        self._nc = nc
        self._local_requests = local_requests
        """Whether :meth:`request` hands a request to an instance's direct endpoint in this process
        without nats-server (:mod:`agents._localrequest`)."""
        self._timers = timers
        self._turn = turn
        self._calls = calls
        self.subject = subject
        self._queue: deque[Msg | Message | BaseException] = deque()  # put_error's errors among the messages
        self._reply_subject = subject + REPLY_SUFFIX
        self._reply: Msg | Message | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._sink: Callable[[bytes], bool] | None = None
        self.pushed = 0
        """Messages taken by the :meth:`push` sink so far (each a sign of life of the sender)."""
        self._open = True  # (False once closed: a local answer is dropped, as NATS drops one for nobody)

    def push(self, sink: Callable[[bytes], bool] | None) -> None:
        """Offer each arriving message's payload to ``sink`` first, in nats-py's read loop (None: stop).

        ``sink(data)`` returns whether it took the message; one it does not take is queued for
        :meth:`next` as before. Only a message without headers is offered, and only while nothing is
        queued, so that the messages keep their order whichever way they go. ``sink`` runs inside the
        read loop: it must not block and must not raise.
        """
        self._sink = sink

    def put_error(self, error: BaseException) -> None:
        """Make :meth:`next` raise ``error`` once the messages queued before it have been read."""
        self._queue.append(error)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _deliver(self, msg: Msg | Message) -> None:
        """Take a message (nats-py's from the reader, or a :class:`Message` handed over in this process)."""
        if msg.subject == self._reply_subject:
            self._reply = msg
        else:
            sink = self._sink
            if sink is not None and not self._queue and not msg.headers and sink(msg.data):
                self.pushed += 1
                return
            self._queue.append(msg)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def deliver(self, subject: str, data: bytes) -> None:
        """Take an answer without headers handed over in this process (:class:`~agents._message.LocalTarget`).

        An agent answering a request this inbox sent to it in this process (a
        :class:`~agents._message.LocalRequest` names the inbox) hands over its accept, chunks and
        ``End``/``Error`` here, as :class:`agents._localinbox.LocalInbox` would through the bus's inbox
        table: the :class:`Message` the reader would have made, dropped once the inbox is closed
        (:meth:`close`), counted in :data:`LOCAL_ANSWERS`, and what the receiving side raises logged, never
        passed to the agent.
        """
        if not self._open:
            return
        LOCAL_ANSWERS.value += 1
        try:
            self._deliver(new_message(subject, data, {}, ""))
        except Exception:
            log.exception("local delivery failed", subject=subject)

    def _forget_reply(self) -> None:
        """Drop a reply left from an earlier request (one that timed out) before a new request.

        This and :meth:`_reply_now` are methods rather than ``self._reply = None`` and reads of
        ``self._reply`` in :meth:`request` across its awaits: the type checker would narrow those reads
        (to ``None``) though :meth:`_deliver` sets the reply meanwhile, and compiled code
        (:mod:`agents._compiled`) checks the narrowed type at run time.
        """
        self._reply = None

    def _reply_now(self) -> Msg | Message | None:
        """The reply of the request in flight, if it came (see :meth:`_forget_reply`)."""
        return self._reply

    def close(self) -> None:
        """Take no more answers handed over in this process (its bus closed it, or is closing)."""
        self._open = False

    async def _wait(self, deadline: float) -> None:
        """Wait until a message arrives or ``deadline`` (``time.monotonic()`` seconds) passes."""
        timers = self._timers
        waiter = self._waiter = timers.waiter(deadline)
        try:
            await waiter
        finally:
            timers.ended()
            self._waiter = None

    async def next(self, timeout_s: float) -> Message:
        """The next message.

        Raises:
            DeadlineExceededError: Nothing arrived within ``timeout_s`` seconds.
            NoRespondersError: The message is a NATS 503 status (nobody received the request).
            BaseException: The error given to :meth:`put_error`, in its place among the messages.
        """
        if timeout_s <= 0:
            raise DeadlineExceededError("deadline passed while waiting for the agent")
        if not self._queue:
            deadline = time.monotonic() + timeout_s
            while not self._queue and time.monotonic() < deadline:
                await self._wait(deadline)
            if not self._queue:
                raise DeadlineExceededError(f"no message on {self.subject} within {timeout_s:.3f} s")
        msg = self._queue.popleft()
        if isinstance(msg, BaseException):
            raise msg
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            raise NoRespondersError(f"no responders on {msg.subject}")
        return to_message(msg)

    def _send_local(
        self,
        subject: str,
        data: bytes,
        block: bytes | None,
        headers: dict[str, str] | None,
        source: HeaderSource | None,
    ) -> bool:
        """Hand a request to ``subject``'s endpoint if it is an instance's direct one in this process.

        Returns whether it did (:mod:`agents._localrequest`); if not, it goes over NATS.
        """
        endpoint = find_endpoint(subject)
        if endpoint is None or len(data) > self._nc._max_payload:  # (nats-py's max_payload property)
            return False
        reply = self._reply_subject
        if source is not None:  # what the reader would parse from its block (a new dict), the deadline as
            # the number its text reads back as (no float formatted here and parsed back by the agent), and
            # this inbox as the one the answers go to (not looked up by their subject)
            fields = source.header_fields(deadline=False)
            return endpoint.deliver(new_local_request(subject, data, fields, reply, source.deadline, self))
        if block is not None:  # the lines after NATS/1.0, as nats-py's reader parses them (a new dict)
            parsed = parse_header_lines(block.partition(b"\r\n")[2])
        else:  # a copy: the agent's Message must not share the caller's dict
            parsed = dict(headers or {})
        return endpoint.deliver(new_message(subject, data, parsed, reply))

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        headers: dict[str, str] | None = None,
        block: bytes | None = None,
        source: HeaderSource | None = None,
        timeout_s: float,
    ) -> Message:
        """Send a request with this inbox as the reply subject and wait for its reply.

        Messages that arrive on :attr:`subject` meanwhile (say, a stream that starts before the reply)
        stay buffered for :meth:`next`. One request at a time per inbox.

        Args:
            subject: Where to send.
            data: The payload.
            headers: NATS headers, or
            block: the header block already built (``agents.natsheaders.header_block``'s bytes; wins
                over ``headers``), or
            source: the headers in both forms, each made only when needed (wins over both).
            timeout_s: How long to wait for the reply, in seconds.

        Raises:
            NoRespondersError: Nobody is subscribed to ``subject`` (answered at once by the server), or
                the connection to NATS is down.
            DeadlineExceededError: No reply within ``timeout_s`` seconds.
        """
        if timeout_s <= 0:
            raise DeadlineExceededError(f"deadline passed before the request to {subject}")
        nc = self._nc
        if nc._status != CONNECTED and not nc.is_connected:  # reconnecting: answer now, not at the timeout
            raise NoRespondersError(f"NATS is not connected (request to {subject} not sent)")
        self._forget_reply()
        if self._local_requests and self._send_local(subject, data, block, headers, source):
            pass  # handed to the endpoint in this process: the reply comes to this inbox as from the wire
        else:
            if source is not None:
                block = source.header_block()
            if block is not None:
                turn = self._turn if len(self._calls) <= 1 else None  # the only call: no flusher round
                if not send_now(nc, subject, data, self._reply_subject, block, turn):
                    await publish_block(nc, subject, self._reply_subject, block, data)
            else:
                await publish(nc, subject, data, headers, self._reply_subject)
        msg = self._reply
        if msg is None:
            deadline = time.monotonic() + timeout_s
            while (msg := self._reply_now()) is None:
                if time.monotonic() >= deadline:
                    raise DeadlineExceededError(f"no reply from {subject} within {timeout_s:.3f} s")
                await self._wait(deadline)
        self._reply = None
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            raise NoRespondersError(f"no agent listens on {subject}")
        return msg if type(msg) is Message else to_message(msg)  # (a local reply is one already)

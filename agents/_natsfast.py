"""The one home of the project's shortcuts through nats-py's internals, on both sides of a call.

Sending: :func:`send_now` appends a ``PUB``/``HPUB`` command to nats-py's pending buffer (within its
``_max_pending_size``) and wakes its flusher with an entry that is already done, instead of a coroutine
and a new future per message (``Client.publish`` → ``_send_command`` → ``_flush_pending``); optionally
(a :class:`WriteTurn`) the first message of an event loop turn is written to the transport at once.
Whatever it does not handle (reconnecting, a subject nats-py refuses, over a limit) is left to
``Client.publish``, which waits or raises nats-py's errors: :func:`publish` and :func:`publish_block`.

Flushing: :func:`flush_in_order` is ``Client.flush`` that first lets the flusher write what is pending:
nats-py 2.16's ``flush`` writes its ``PING`` straight to the transport while earlier commands (a ``SUB``
just made, say) may still wait in the pending buffer for the flusher task, so the ``PONG`` could come back
before the server had seen them — a subscription "confirmed" by a flush was not always in place yet
(about 1 in 100 subscribe-then-flush sequences on this machine lost the messages published right after).

Receiving: :func:`deliver_from_reader` replaces a subscription's ``asyncio.Queue`` with a
:class:`DirectQueue`, whose ``put_nowait`` (called by nats-py's read loop for each parsed message) hands
the message to a callback right there: no task per subscription, no task switch per message. An *eager*
one (a bus's inboxes, which carry the streams' chunks) gets its messages even before the read loop's task
wakes: the connection's ``StreamReader.feed_data`` (:class:`_EagerFeed`) hands the leading complete
messages of each read to it while that task waits with nothing buffered (:meth:`FastParser.take_eager`), and
feeds the rest to the read loop as before, so the order holds; a loop turn and the read loop's ~13 calls
fewer per message.

Parsing: :func:`use_fast_parser` gives a connection a :class:`FastParser`, which reads each ``MSG``/``HMSG``
for such a subscription and hands it over itself: a split of the control line instead of up to two regex
matches, no coroutine per message (``_process_msg``, ``_process_headers``), the header lines straight to
the connection's parser. Every other message, and every other operation, goes through nats-py's own code.

This relies on internals of nats-py 2.16 (pinned in ``constraints.txt``): ``Client._status``,
``_max_payload``, ``_pending``, ``_pending_data_size``, ``_max_pending_size``, ``_flush_queue``,
``_flusher_task``, ``_flush_pending``, ``_transport`` and ``stats`` (and when nats-py sets each:
:class:`_SendView`); ``Subscription._pending_queue`` and ``_pending_size``; ``TcpTransport._io_reader`` and
asyncio's ``StreamReader._waiter``, ``_buffer``, ``_eof`` and ``Queue._queue``.
What it saves per call is measured with ``benchmarks/orchestrator.py`` (``docs/collective.md``, "The
hop's own cost").
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

import nats.aio.client
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.protocol.parser import AWAITING_CONTROL_LINE, AWAITING_MSG_PAYLOAD, Parser

from agents._message import Message, new_message
from agents.natsheaders import header_block, parse_header_lines

__all__ = (
    "CONNECTED",
    "DirectQueue",
    "WriteTurn",
    "deliver_from_reader",
    "drop_unsent",
    "flush_in_order",
    "publish",
    "publish_block",
    "hpub_command",
    "pub_command",
    "publish_now",
    "reader_msg",
    "send_now",
    "use_fast_parser",
)

log = structlog.get_logger("neurectomy.nats")
_M = TypeVar("_M", Msg, Message)
"""What a :class:`DirectQueue` hands over: nats-py's ``Msg``, or a ``Message`` (its ``message``)."""

_WHITESPACE: Final = re.compile(r"\s")
CONNECTED: Final = Client.CONNECTED
"""``Client._status`` while connected: ``nc._status == CONNECTED or nc.is_connected`` is nats-py's
``is_connected`` (connected or draining) without the property call in the common case (the local
hand-overs read it several times per call)."""


def _has_space(subject: str) -> bool:
    r"""Whether ``subject`` holds whitespace (``str.isspace``), as nats-py's ``publish`` checks with ``\s``.

    A printable string without a space holds none (every other whitespace character is not printable, a
    test checks all of Unicode): one scan instead of the regex's; any other string goes to the regex.
    """
    if subject.isprintable() and " " not in subject:
        return False
    return _WHITESPACE.search(subject) is not None


class _Flushed:
    """A flush request that is already done: wakes nats-py's flusher, which only asks ``done()`` of it.

    nats-py makes a future per published message for this (``Client._flush_pending``) that nobody awaits.
    """

    __slots__ = ()

    def done(self) -> bool:
        return True


_FLUSHED: Final[Any] = _Flushed()


class WriteTurn:
    """Whether a message was already written to the transport directly in this turn of the event loop.

    One per bus: :func:`send_now` writes the first message of a turn at once when nothing else is
    pending (no flusher round on the way out of a call made alone); later ones go to the pending buffer,
    so the messages of many calls at once still leave together.
    """

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written = False

    def mark(self) -> None:
        """A message was written directly: the next one in this turn goes to the pending buffer."""
        self.written = True
        asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self.written = False


class _SendView:
    """What :func:`send_now` reads of a connection that nats-py sets once per (re)connection, read once.

    nats-py 2.16 sets ``stats`` in ``Client.__init__``, ``_flush_queue`` and ``_max_pending_size`` in
    ``connect``, ``_max_payload`` from the server's ``INFO`` as it connects, and makes a new ``_flusher_task``
    each time it connects or reconnects, after the others and after ``_transport`` is connected (the
    transport object itself is reused across reconnects). So a flusher task other than the one the view
    was read with means a new connection: the view is read again (:meth:`renew`); while it is the same
    task, these values are the connection's, and a send reads only what changes per message (``_status``,
    ``_flusher_task``, ``_pending``, ``_pending_data_size``). ~Five attribute reads of an interpreted object
    fewer per message sent (docs/collective.md, "Round 14").
    """

    __slots__ = ("flusher", "max_payload", "max_pending_size", "queue", "stats", "transport")

    def __init__(self) -> None:
        self.flusher: asyncio.Task[None] | None = None
        self.queue: asyncio.Queue[Any] | None = None
        self.transport: Any = None
        self.stats: dict[str, int] = {}
        self.max_payload = 0
        self.max_pending_size = 0

    def renew(self, nc: Client, flusher: asyncio.Task[None] | None) -> None:
        """Read the connection's values again (a new flusher task: a new connection)."""
        self.flusher = flusher
        self.queue = nc._flush_queue
        self.transport = nc._transport
        self.stats = nc.stats
        self.max_payload = nc._max_payload
        self.max_pending_size = nc._max_pending_size


_VIEW: Final = "_neurectomy_send_view"
"""The attribute of a nats-py ``Client`` holding its :class:`_SendView` (made at its first send)."""


def _send_view(nc: Client, flusher: asyncio.Task[None] | None) -> _SendView:
    """``nc``'s :class:`_SendView`, read again if ``flusher`` is not the task it was read with."""
    view: _SendView | None = getattr(nc, _VIEW, None)
    if view is None:
        view = _SendView()
        setattr(nc, _VIEW, view)
    if view.flusher is not flusher:
        view.renew(nc, flusher)
    return view


def send_now(
    nc: Client,
    subject: str,
    data: bytes,
    reply: str = "",
    block: bytes | None = None,
    turn: WriteTurn | None = None,
    *,
    write: bool = False,
) -> bool:
    """Send one message through nats-py's send buffer without waiting, if nats-py would take it at once.

    Args:
        nc: The connection.
        subject: Where to publish.
        data: The payload.
        reply: Its reply subject, or ``""``.
        block: Its header block (:func:`agents.natsheaders.header_block`'s bytes), or ``None`` for none.
        turn: Given, the first message of an event loop turn is written to the transport at once when
            nothing else is pending (the caller's side: a request made alone leaves without a flusher
            round); ``None``, it always goes to the pending buffer.
        write: Write it to the transport now when nothing else is pending, without a turn (the caller
            knows it is the only message of its loop turn, e.g. one request's chunk of a delivery).

    Returns:
        Whether it was sent or queued; ``False`` when ``nc.publish`` must take it (not connected, an empty
        subject or one with whitespace, a reply subject with whitespace, over the payload limit or the
        send buffer's limit, no flusher).
    """
    if nc._status != CONNECTED:
        return False
    flusher = nc._flusher_task
    view = _send_view(nc, flusher)
    queue, transport = view.queue, view.transport
    if (
        not subject
        or len(data) > view.max_payload
        or _has_space(subject)
        or (reply and _has_space(reply))
        or queue is None
        or flusher is None
        or flusher.done()
        or transport is None
    ):
        return False
    command = (
        hpub_command(subject, reply, block, data) if block is not None else pub_command(subject, reply, data)
    )
    if 0 < view.max_pending_size < nc._pending_data_size + len(command):
        return False  # nc.publish flushes first
    stats = view.stats
    stats["out_msgs"] += 1
    stats["out_bytes"] += len(data)
    pending = nc._pending
    if not pending and (write or (turn is not None and not turn.written)):
        try:
            transport.write(command)
        except (OSError, RuntimeError):  # a transport going down: the flusher's error handling takes it
            pass
        else:
            if not write and turn is not None:
                turn.mark()
            return True
    pending.append(command)
    nc._pending_data_size += len(command)
    if not queue._queue:  # type: ignore[attr-defined]  # (empty(), without its call) else the flusher is due
        queue.put_nowait(_FLUSHED)
    return True


def pub_command(subject: str, reply: str, data: bytes) -> bytes:
    """The ``PUB`` command nats-py writes for a message without headers (``nats.protocol.command.pub_cmd``).

    The same bytes (a test compares them); here so that it runs compiled with the rest of the send path.
    """
    return b"".join((f"PUB {subject} {reply} {len(data)}\r\n".encode(), data, _CRLF))


def hpub_command(subject: str, reply: str, block: bytes, data: bytes) -> bytes:
    """The ``HPUB`` command nats-py writes for a message with header block ``block`` (``hpub_cmd``)."""
    size = len(block)
    line = f"HPUB {subject} {reply} {size} {size + len(data)}\r\n".encode()
    return b"".join((line, block, data, _CRLF))


async def flush_in_order(nc: Client, timeout_s: float) -> None:
    """Wait until the server has processed everything sent so far on ``nc``, in the order it was sent.

    Has nats-py's flusher write the pending buffer (``_flush_pending(force_flush=True)``) before
    ``Client.flush`` sends its ``PING`` (which nats-py writes to the transport directly, ahead of any
    command still pending: the module docstring).

    Raises:
        nats.errors.FlushTimeoutError: No ``PONG`` within ``timeout_s`` (whole seconds, at least 1).
        nats.errors.ConnectionClosedError: The connection is closed.
    """
    if nc._pending:
        await nc._flush_pending(force_flush=True)
    await nc.flush(timeout=max(1, math.ceil(timeout_s)))


def drop_unsent(nc: Client) -> int:
    """Drop what waits in nats-py's send buffer of a connection that is not connected; the bytes dropped.

    For closing a connection whose server is gone (reconnecting): nats-py's ``close`` writes the buffer
    (what was published since the connection was lost, e.g. heartbeats) into the lost connection's
    transport, which raises (asyncio: ``ConnectionResetError``; uvloop: ``RuntimeError``, "the handler is
    closed") before the close has ended; those bytes cannot reach anyone any more. A connected client's
    buffer is left alone (0).
    """
    if nc.is_connected or not nc._pending:
        return 0
    dropped = nc._pending_data_size
    nc._pending = []
    nc._pending_data_size = 0
    return dropped


def publish_now(nc: Client, subject: str, data: bytes, headers: dict[str, str] | None = None) -> bool:
    """Queue one message (no reply subject) on nats-py's send buffer and wake its flusher, without waiting.

    Returns:
        Whether it was queued (see :func:`send_now`); if not, ``nc.publish`` must take it.
    """
    return send_now(nc, subject, data, "", header_block(headers) if headers else None)


async def publish(nc: Client, subject: str, data: bytes, headers: dict[str, str] | None, reply: str) -> None:
    """``nc.publish``, with the header block from :func:`header_block` when there are headers.

    Goes through :func:`send_now` when it can; whatever that does not handle (the connection's state, the
    payload or send buffer limit, an empty subject or one with whitespace) is left to ``nc.publish``,
    which waits or raises nats-py's errors for it.
    """
    if not send_now(nc, subject, data, reply, header_block(headers) if headers else None):
        await nc.publish(subject, data, reply=reply, headers=headers or None)  # {}: a PUB, as above


async def publish_block(
    nc: Client, subject: str, reply: str, block: bytes, data: bytes, turn: WriteTurn | None = None
) -> None:
    """Publish ``data`` with a header block already built (the bytes of :func:`header_block`).

    The request half's send path: a caller that sends the same headers on every call builds most of the
    block once. :func:`send_now` sends it when it can (with ``turn``); whatever that does not handle goes
    to ``nc.publish`` (with the block's headers), which raises nats-py's errors for it.
    """
    if not send_now(nc, subject, data, reply, block, turn):
        headers = parse_header_lines(block.partition(b"\r\n")[2])
        await nc.publish(subject, data, reply=reply, headers=headers)


class DirectQueue:
    """In place of the ``asyncio.Queue`` of a nats-py subscription: hands each message to ``deliver``.

    nats-py's read loop puts every received message in its subscription's queue, where a task per
    subscription picks it up and calls the subscription's callback: a task switch per message. With this
    queue a message reaches ``deliver`` from the read loop directly (``deliver`` must not block; what it
    raises is logged, never passed to the read loop, which would close the connection). nats-py 2.16 uses
    ``put_nowait`` (read loop), ``qsize``/``empty`` and ``join``/``task_done`` (drain), and a callback
    subscription's task waits on ``get``; the pending-bytes count it keeps for slow consumer detection is
    given back at once, since nothing is ever pending here.

    Args:
        sub: The subscription.
        deliver: Takes each message as it is parsed.
    """

    __slots__ = ("_deliver", "_sub", "eager", "message")

    def __init__(
        self,
        sub: Subscription,
        deliver: Callable[[Msg], None],
        *,
        eager: bool = False,
        message: Callable[[Message], None] | None = None,
    ) -> None:
        self._sub = sub
        self._deliver = deliver
        self.eager = eager
        """Its messages may be handed over as the socket's bytes arrive, before nats-py's read loop wakes
        (:class:`FastParser`; ``deliver`` then runs in a loop callback, outside any task)."""
        self.message = message
        """Takes a message the :class:`FastParser` read as the :class:`~agents._message.Message` ``deliver``
        would make of its ``Msg`` (no ``Msg`` built), or ``None``: ``deliver`` takes every message."""

    def put_nowait(self, msg: Msg) -> None:
        """Hand ``msg`` to ``deliver`` now (called by nats-py's reader; never raises)."""
        self._sub._pending_size -= len(msg.data)
        self.hand(self._deliver, msg)

    def hand(self, take: Callable[[_M], None], msg: _M) -> None:
        """Hand ``msg`` to ``take`` (``deliver``, or :attr:`message` for a ``Message``) now (never raises)."""
        try:
            take(msg)
        except Exception:  # never into nats-py's read loop: that would close the connection
            log.exception("direct delivery failed", subject=msg.subject)

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
        """Never returns: a callback subscription's own task waits here until it stops (cancelling it)."""
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")  # pragma: no cover


def deliver_from_reader(
    sub: Subscription,
    deliver: Callable[[Msg], None],
    *,
    eager: bool = False,
    message: Callable[[Message], None] | None = None,
) -> None:
    """Have ``sub``'s messages handed to ``deliver`` from nats-py's read loop (see :class:`DirectQueue`).

    Messages that arrived before the switch are delivered now, in order.

    Args:
        sub: The subscription.
        deliver: Takes each message (must not block, must not need a task: it may run in a loop callback).
        eager: Hand a message over as its bytes arrive, when nothing is ahead of it (see
            :class:`FastParser`): no wake-up of the read loop's task for it.
        message: Takes, in ``deliver``'s place, each message the :class:`FastParser` reads, as the
            :class:`~agents._message.Message` (``agents._message.to_message``) ``deliver`` would make of
            nats-py's ``Msg``: the same handling without building the ``Msg`` first. ``None``: ``deliver``
            takes them all.
    """
    queued, sink = sub._pending_queue, DirectQueue(sub, deliver, eager=eager, message=message)
    sub._pending_queue = sink  # type: ignore[assignment]
    while not queued.empty():
        sink.put_nowait(queued.get_nowait())


_MSG_FIELDS: Final = ("_client", "subject", "reply", "data", "headers", "_metadata", "_ackd", "_sid")
_POSITIONAL_MSG: Final = tuple(f.name for f in dataclasses.fields(Msg)) == _MSG_FIELDS
"""Whether nats-py's ``Msg`` takes its fields in this order (then it is built without keywords)."""


def reader_msg(
    nc: Client, sid: int, subject: str, reply: str, data: bytes, headers: dict[str, str] | None
) -> Msg:
    """The ``Msg`` nats-py's reader builds for a message of subscription ``sid`` on ``nc``.

    Positionally when nats-py's ``Msg`` has the fields this module knows (a third of the keywords' cost),
    else through ``Client._build_message`` (which honours a custom ``msg_class``).
    """
    if _POSITIONAL_MSG and nc.msg_class is Msg:
        return Msg(nc, subject, reply, data, headers, None, False, sid)
    return nc._build_message(sid, subject.encode(), reply.encode(), data, headers)  # type: ignore[no-any-return]


_EMAIL_PARSER: Final = getattr(nats.aio.client, "parse_email", None) is not None
"""nats-py parses headers with ``fast_mail_parser`` when that is installed: then always its own way."""


class FastParser(Parser):
    """nats-py's protocol parser, with a shorter path for a message to a :class:`DirectQueue` subscription.

    A ``MSG``/``HMSG`` control line as nats-server writes it (single tokens, decimal sizes) is split instead
    of matched by nats-py's regexes; a message for a subscription delivered from the reader (no JetStream,
    no request future, no message limit) is counted as ``Client._process_msg`` counts it, its headers parsed
    by the connection's ``_parse_header_lines`` (a status line, such as a 503, by ``_process_headers``), and
    handed to :meth:`DirectQueue.hand` without a coroutine. Any other message goes to ``_process_msg``; any
    other operation (``PING``, ``+OK``, ``-ERR``, ``INFO``, a control line it does not recognise) to
    nats-py's own parser, one line at a time, so errors are nats-py's. Installed by :func:`use_fast_parser`.
    """

    _reader: object = None
    """The socket reader given an :class:`_EagerFeed` (a new one after each reconnect)."""

    async def parse(self, data: bytes = b"") -> None:
        """Parse ``data`` (and what an earlier call left), dispatching each complete operation in order."""
        buf = self.buf
        buf += data
        nc = self.nc
        reader = getattr(nc._transport, "_io_reader", None)
        if reader is not self._reader:  # the first read of this connection (or of its reconnection)
            self._reader = reader
            _feed_eagerly(nc, self)
        while buf:
            if self.state == AWAITING_CONTROL_LINE:
                end = buf.find(_CRLF)
                if end < 0:
                    return  # a control line still arriving
                fields = _message_line(buf, end)
                if fields is None:  # not a message as nats-server writes one: nats-py's parser, one line
                    if not await self._parse_line(buf, end + 2):
                        return
                    continue
                subject, sid, reply, header_needed, needed = fields
                start = end + 2
                if len(buf) < start + needed + 2:  # its payload still arriving: as nats-py's parser leaves it
                    self.msg_arg = {"subject": subject.encode(), "sid": sid, "reply": reply.encode()}
                    self.needed, self.header_needed, self.state = needed, header_needed, AWAITING_MSG_PAYLOAD
                    del buf[:start]
                    return
            else:  # the payload of a message whose control line came earlier
                start, needed, header_needed = 0, self.needed, self.header_needed
                if len(buf) < needed + 2:
                    return
                arg = self.msg_arg
                subject, sid, reply = arg["subject"].decode(), arg["sid"], arg["reply"].decode()
                self.header_needed, self.state = 0, AWAITING_CONTROL_LINE
            hdr = bytes(buf[start : start + header_needed]) if header_needed else None
            payload = bytes(buf[start + header_needed : start + needed])
            del buf[: start + needed + 2]
            sub = nc._subs.get(sid)
            queue = sub._pending_queue if sub is not None else None
            if type(queue) is not DirectQueue or sub._jsi or sub._future or sub._max_msgs:
                await nc._process_msg(sid, subject.encode(), reply.encode(), payload, hdr)
                if self.buf is not buf:  # the parser was reset (the connection is going away)
                    return
                continue
            if hdr is None:
                headers = None
            elif len(hdr) > _HDR_LINE_SIZE + 2 and hdr[_HDR_LINE_SIZE] != _SPACE and not _EMAIL_PARSER:
                headers = nc._parse_header_lines(hdr[_HDR_LINE_SIZE + 2 :]) or None
            else:  # a status line (NATS/1.0 503), or nothing after NATS/1.0: nats-py's own way
                headers = await nc._process_headers(hdr)
                if self.buf is not buf:
                    return
            _hand(nc, sub, queue, sid, subject, reply, payload, headers)

    def take_eager(self, data: bytes) -> int:
        """Hand over the leading messages of ``data`` that go to an eager :class:`DirectQueue`; bytes taken.

        Called with bytes just received while nats-py's read loop waits for more and this parser holds
        nothing (so nothing is ahead of them): each complete ``MSG`` (no headers) for an eager
        subscription is counted and handed over as :meth:`parse` would; the first anything else (another
        operation, a message with headers or for another subscription, a message not complete yet) ends
        it, and the caller feeds that and the rest to the read loop, in order.
        """
        nc, subs, taken = self.nc, self.nc._subs, 0
        while taken < len(data):  # data[taken:] is the next message (read in place: no copy of the rest)
            end = data.find(_CRLF, taken)
            if end < 0 or not data.startswith(b"MSG ", taken):
                return taken
            fields = _message_line(data, end, taken)
            if fields is None:
                return taken
            subject, sid, reply, _, needed = fields
            start, after = end + 2, end + needed + 4
            sub = subs.get(sid)
            queue = sub._pending_queue if sub is not None else None
            if (
                len(data) < after
                or type(queue) is not DirectQueue
                or not queue.eager
                or sub._jsi
                or sub._future
                or sub._max_msgs
            ):
                return taken
            _hand(nc, sub, queue, sid, subject, reply, data[start : start + needed], None)
            taken = after
        return taken

    async def _parse_line(self, buf: bytearray, size: int) -> bool:
        """Have nats-py's parser take the first ``size`` bytes of ``buf``; whether to go on with the rest.

        ``False`` when the parser was reset meanwhile (the connection is going away); what is left of
        ``buf`` then belongs to the connection that ended.
        """
        line = self.buf = bytearray(buf[:size])
        del buf[:size]
        try:
            await Parser.parse(self)
        finally:
            if self.buf is line:  # (what it left of the line, all of it if it raised, goes back in front)
                buf[:0] = line
                self.buf = buf
        return self.buf is buf


_CRLF: Final = b"\r\n"
_HDR_LINE_SIZE: Final = 8
"""``len(b"NATS/1.0")``."""
_SPACE: Final = 32
"""``ord(" ")``."""


def _hand(
    nc: Client,
    sub: Subscription,
    queue: DirectQueue,
    sid: int,
    subject: str,
    reply: str,
    payload: bytes,
    headers: dict[str, str] | None,
) -> None:
    """Count a message as ``Client._process_msg`` counts it and hand it to ``queue``.

    As the :class:`~agents._message.Message` ``to_message`` makes of nats-py's ``Msg`` when the queue
    takes one (:attr:`DirectQueue.message`), else as that ``Msg``.
    """
    stats = nc.stats
    stats["in_msgs"] += 1
    stats["in_bytes"] += len(payload)
    sub._received += 1
    take = queue.message
    if take is not None:
        queue.hand(take, new_message(subject, payload, headers or {}, reply))
    else:
        queue.hand(queue._deliver, reader_msg(nc, sid, subject, reply, payload, headers))


class _EagerFeed:
    """In place of a connection's ``StreamReader.feed_data``: eager subscriptions' bytes skip the read loop.

    asyncio's stream protocol hands each read of the socket to ``feed_data``, which buffers it and wakes
    nats-py's read loop task (a loop turn, then the task's ``read`` and ``parse``). While that task waits
    for data with nothing buffered, and the parser holds nothing, the leading messages for eager
    subscriptions are handed over here (:meth:`FastParser.take_eager`); the rest is fed as before.
    """

    __slots__ = ("_feed", "_parser", "_reader")

    def __init__(self, reader: asyncio.StreamReader, parser: FastParser) -> None:
        self._reader = reader
        self._parser = parser
        self._feed = reader.feed_data

    def __call__(self, data: bytes) -> None:
        reader, parser = self._reader, self._parser
        waiter = reader._waiter  # type: ignore[attr-defined]
        if (
            waiter is not None
            and not waiter.done()
            and not reader._buffer  # type: ignore[attr-defined]
            and not reader._eof  # type: ignore[attr-defined]
            and not parser.buf
            and parser.state == AWAITING_CONTROL_LINE
            and parser.nc._ps is parser
        ):
            taken = parser.take_eager(data)
            if taken:
                if taken == len(data):
                    return
                data = data[taken:]
        self._feed(data)


def _feed_eagerly(nc: Client, parser: FastParser) -> None:
    """Put an :class:`_EagerFeed` on ``nc``'s current socket reader (a TCP connection's; once per reader)."""
    reader = getattr(nc._transport, "_io_reader", None)
    if type(reader) is asyncio.StreamReader and not isinstance(vars(reader).get("feed_data"), _EagerFeed):
        reader.feed_data = _EagerFeed(reader, parser)  # type: ignore[method-assign,assignment]


def _message_line(buf: bytes | bytearray, end: int, begin: int = 0) -> tuple[str, int, str, int, int] | None:
    """``(subject, sid, reply, header bytes, total bytes)`` of a ``MSG``/``HMSG`` line ``buf[begin:end]``.

    ``None`` for any other control line, and for a message line in another form than nats-server's (fields
    separated by anything but one space, a wrong number of fields, a size or sid not in decimal digits, a
    byte that is not ASCII): nats-py's parser takes those, and decides as its regexes do.

    The line is decoded once (ASCII) and split as text: compiled, ``str``'s ``split``, ``join``,
    ``isdigit`` and ``int`` are direct C calls where ``bytes``' are method look-ups (~0.6k instructions
    each, about ten per message), and the subject and reply come out as the ``str`` the message is made
    with (nats-py decodes them as UTF-8, which is the same for ASCII).
    """
    try:
        line = buf[begin:end].decode("ascii")
    except UnicodeDecodeError:
        return None
    parts = line.split()
    if not parts or " ".join(parts) != line:
        return None
    op = parts[0]
    if op == "MSG":
        headers = False
    elif op == "HMSG":
        headers = True
    else:
        return None
    del parts[0]
    hsize = "0"
    reply = ""
    fields = len(parts) - headers
    if fields == 3 and headers:
        subject, sid, hsize, size = parts
    elif fields == 3:
        subject, sid, size = parts
    elif fields == 4 and headers:
        subject, sid, reply, hsize, size = parts
    elif fields == 4:
        subject, sid, reply, size = parts
    else:
        return None
    if not (sid.isdigit() and size.isdigit() and hsize.isdigit()):
        return None
    return subject, int(sid), reply, int(hsize), int(size)


def use_fast_parser(nc: Client) -> None:
    """Give ``nc`` a :class:`FastParser` in place of its parser, taking over whatever it had half read."""
    old = nc._ps
    if isinstance(old, FastParser):
        return
    fast = FastParser(nc)
    fast.buf, fast.state, fast.needed = old.buf, old.state, old.needed
    fast.header_needed, fast.msg_arg = old.header_needed, old.msg_arg
    nc._ps = fast

"""The fast protocol parser (``agents._natsfast.FastParser``) dispatches exactly what nats-py's parser does.

Any stream of ``MSG``/``HMSG`` (to a subscription delivered from the reader, to an ordinary one, to no
subscription; with headers, a 503 status line, odd spacing), ``PING``/``PONG``/``+OK``/``INFO``/``-ERR``,
cut into reads at any points, gives the same messages in the same order to the same subscriptions, the
same other operations in between, and the same counters (property test); a bus reads with it (real server).
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ProtocolError
from nats.protocol.command import hpub_cmd, pub_cmd
from nats.protocol.parser import AWAITING_CONTROL_LINE, Parser

from agents import Bus
from agents._message import to_message
from agents._natsfast import (
    DirectQueue,
    FastParser,
    _has_space,
    hpub_command,
    pub_command,
    use_fast_parser,
)
from agents.errors import NoRespondersError
from agents.messaging import Message
from agents.natsheaders import header_block, parse_header_lines

_DIRECT, _QUEUED = 1, 2
"""sids: one subscription delivered from the reader, one with nats-py's queue (sid 3 has none)."""


class _Recording(asyncio.Queue[Msg]):
    """An ordinary subscription's queue that notes each message as nats-py puts it."""

    def __init__(self, events: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self._events = events

    def put_nowait(self, item: Msg) -> None:
        self._events.append(("queued", *_fields(item)))


def _fields(msg: Msg) -> tuple[Any, ...]:
    return msg.subject, msg.reply, msg.data, msg.headers, msg.sid


def _as_message(message: Message) -> tuple[Any, ...]:
    return "direct", message.subject, message.reply, message.data, message.headers


def _client(
    events: list[tuple[Any, ...]], parser: type[Parser], *, eager: bool = False, as_message: bool = False
) -> Client:
    """A client with the subscriptions above; ``as_message``: the direct one also takes ``Message``s, and
    both of its ways record the ``Message`` (``to_message`` of a ``Msg``), the second way tagged."""
    nc = Client()
    nc._parse_header_lines = parse_header_lines  # type: ignore[method-assign]  # as agents.messaging.Bus

    async def ping() -> None:
        events.append(("ping",))

    async def pong() -> None:
        events.append(("pong",))

    async def info(info: dict[str, Any], initial_connection: bool = False) -> None:
        events.append(("info", info))

    async def err(message: str) -> None:
        events.append(("err", message))

    nc._process_ping, nc._process_pong = ping, pong  # type: ignore[method-assign]
    nc._process_info, nc._process_err = info, err  # type: ignore[method-assign]
    direct = Subscription(nc, _DIRECT, "direct.>")
    if as_message:
        direct._pending_queue = DirectQueue(  # type: ignore[assignment]
            direct,
            lambda m: events.append(_as_message(to_message(m))),
            eager=eager,
            message=lambda m: events.append(("message", *_as_message(m)[1:])),
        )
    else:
        direct._pending_queue = DirectQueue(  # type: ignore[assignment]
            direct, lambda m: events.append(("direct", *_fields(m))), eager=eager
        )
    queued = Subscription(nc, _QUEUED, "queued.>")
    queued._pending_queue = _Recording(events)
    nc._subs.update({_DIRECT: direct, _QUEUED: queued})
    if parser is FastParser:
        use_fast_parser(nc)
    return nc


_SUBJECT = st.sampled_from(["direct.a", "queued.b", "x.y.z", "_INBOX.abc.7.r"])
_REPLY = st.sampled_from(["", "_INBOX.q.1", "r"])
_HEADERS = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["A", "Neurectomy-Request-Id", "X-B"]), st.text(max_size=5)).map(
        header_block
    ),
    st.sampled_from(
        [
            b"NATS/1.0 503\r\n\r\n",
            b"NATS/1.0 404 No Messages\r\n\r\n",
            b"NATS/1.0 100 Idle Heartbeat\r\nA: 1\r\n\r\n",
            b"NATS/1.0\r\n\r\n",
            b"NATS/1.0\r\nNo colon\r\n\xff: x\r\n\r\n",
        ]
    ),
)


@st.composite
def _message(draw: st.DrawFn) -> bytes:
    subject, reply, sid = draw(_SUBJECT), draw(_REPLY), draw(st.sampled_from([1, 2, 3]))
    data, hdr = draw(st.binary(max_size=12)), draw(_HEADERS)
    end = draw(st.sampled_from(["", "", "", " ", "\r"]))  # whitespace at the end: nats-py refuses it
    space = draw(st.sampled_from([" ", " ", " ", "  ", "\t", "\x0b", "\n", "\r"]))  # nats-server: one space
    args = [subject, str(sid), *([reply] if reply else [])]
    if hdr is None:
        line = space.join(["MSG", *args, str(len(data))]) + end
        return f"{line}\r\n".encode() + data + b"\r\n"
    line = space.join(["HMSG", *args, str(len(hdr)), str(len(hdr) + len(data))]) + end
    return f"{line}\r\n".encode() + hdr + data + b"\r\n"


_OTHER = st.sampled_from(
    [
        b"PING\r\n",
        b"PONG\r\n",
        b"+OK\r\n",
        b'INFO {"max_payload": 1024}\r\n',
        b"-ERR 'Permissions Violation'\r\n",
    ]
)
_STREAM = st.lists(st.one_of(_message(), _OTHER), min_size=1, max_size=12).map(b"".join)


async def _feed(
    parser: type[Parser], stream: bytes, cuts: list[int], *, as_message: bool = False
) -> tuple[list[Any], Client]:
    events: list[tuple[Any, ...]] = []
    nc = _client(events, parser, as_message=as_message)
    assert type(nc._ps) is parser
    at = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        try:
            await nc._ps.parse(stream[at:cut])
        except ProtocolError as exc:  # (nats-py's read loop then drops the connection)
            events.append(("protocol error", str(exc)))
            break
        at = max(at, cut)
    return events, nc


async def _feed_eagerly(stream: bytes, cuts: list[int]) -> tuple[list[Any], Client]:
    """As :func:`_feed` with the fast parser, each read first offered to ``take_eager`` when it may take
    it (as ``_EagerFeed`` offers it: the parser holds nothing), the rest parsed."""
    events: list[tuple[Any, ...]] = []
    nc = _client(events, FastParser, eager=True)
    parser = nc._ps
    assert isinstance(parser, FastParser)
    at = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        piece = stream[at:cut]
        at = max(at, cut)
        if piece and not parser.buf and parser.state == AWAITING_CONTROL_LINE:
            taken = parser.take_eager(piece)
            events.extend(("eager", n) for n in range(taken and 1))  # (dropped before comparing)
            piece = piece[taken:]
        try:
            await parser.parse(piece)
        except ProtocolError as exc:
            events.append(("protocol error", str(exc)))
            break
    return events, nc


@settings(max_examples=300, deadline=None)
@given(_STREAM, st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=6))
@example(
    b"MSG direct.a 1 _INBOX.q.1 3\r\nabc\r\nMSG direct.a 1 2\r\nok\r\nPING\r\nMSG direct.a 1 1\r\nz\r\n", []
)
@example(b"MSG direct.a 1 3\r\nabc\r\nMSG queued.b 2 1\r\nq\r\nMSG direct.a 1 1\r\nz\r\n", [30])
def test_messages_taken_as_their_bytes_arrive_are_what_nats_py_dispatches(
    stream: bytes, cuts: list[int]
) -> None:
    """Eager subscriptions' messages handed over before the read loop parses: the same order and counts."""
    ours, fast = asyncio.run(_feed_eagerly(stream, cuts))
    theirs, slow = asyncio.run(_feed(Parser, stream, cuts))
    assert [e for e in ours if e[0] != "eager"] == theirs
    assert fast.stats == slow.stats
    for sid in (_DIRECT, _QUEUED):
        assert fast._subs[sid]._received == slow._subs[sid]._received
    assert (fast._ps.buf, fast._ps.state) == (slow._ps.buf, slow._ps.state)


def test_take_eager_takes_only_complete_messages_for_eager_subscriptions() -> None:
    events: list[tuple[Any, ...]] = []
    parser = _client(events, FastParser, eager=True)._ps
    assert isinstance(parser, FastParser)
    two = b"MSG direct.a 1 2\r\nok\r\nMSG direct.a 1 r 3\r\nabc\r\n"
    assert parser.take_eager(two + b"MSG direct.a 1 5\r\nhel") == len(two)  # the third is not complete
    assert events == [
        ("direct", "direct.a", "", b"ok", None, _DIRECT),
        ("direct", "direct.a", "r", b"abc", None, _DIRECT),
    ]
    assert parser.take_eager(b"MSG queued.b 2 1\r\nq\r\n") == 0  # not an eager subscription
    assert parser.take_eager(b"HMSG direct.a 1 12 12\r\nNATS/1.0\r\n\r\n\r\n") == 0  # headers: the read loop
    assert parser.take_eager(b"PING\r\nMSG direct.a 1 2\r\nok\r\n") == 0  # something else ahead of it
    lazy: list[tuple[Any, ...]] = []
    assert _client(lazy, FastParser)._ps.take_eager(two) == 0  # a DirectQueue that is not eager
    assert len(events) == 2 and lazy == []


@settings(max_examples=300, deadline=None)
@given(_STREAM, st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=6))
@example(
    b"MSG direct.a 1 _INBOX.q.1 3\r\nabc\r\nPING\r\nHMSG direct.a 1 12 15\r\nNATS/1.0\r\n\r\nxy\r\n", [5, 33]
)
@example(b"HMSG direct.a 1 r 16 16\r\nNATS/1.0 503\r\n\r\n\r\n", [])
# lines that are not ASCII: nats-py's parser takes them
@example(b"MSG direct.\xc3\xa9 1 r\xc3\xa9 3\r\nabc\r\nMSG direct.a 1 \xe2\x80\x83 2\r\nok\r\n", [])
def test_the_fast_parser_dispatches_what_nats_py_does(stream: bytes, cuts: list[int]) -> None:
    ours, fast = asyncio.run(_feed(FastParser, stream, cuts))
    theirs, slow = asyncio.run(_feed(Parser, stream, cuts))
    assert ours == theirs
    assert fast.stats == slow.stats
    for sid in (_DIRECT, _QUEUED):
        assert fast._subs[sid]._received == slow._subs[sid]._received
    assert fast._subs[_DIRECT]._pending_size == 0
    assert (fast._ps.buf, fast._ps.state) == (slow._ps.buf, slow._ps.state)


@settings(max_examples=200, deadline=None)
@given(_STREAM, st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=6))
@example(b"HMSG direct.a 1 r 16 16\r\nNATS/1.0 503\r\n\r\n\r\n", [])
def test_messages_read_as_message_are_what_to_message_makes_of_nats_py_s(
    stream: bytes, cuts: list[int]
) -> None:
    """A subscription that takes ``Message``s gets from the fast parser what ``to_message`` makes of the
    ``Msg`` nats-py's parser delivers, in the same order among the other operations."""
    ours, fast = asyncio.run(_feed(FastParser, stream, cuts, as_message=True))
    theirs, slow = asyncio.run(_feed(Parser, stream, cuts, as_message=True))
    assert not any(e[0] == "message" for e in theirs)  # nats-py's parser only knows put_nowait
    assert [("direct", *e[1:]) if e[0] == "message" else e for e in ours] == theirs
    assert fast.stats == slow.stats
    assert fast._subs[_DIRECT]._received == slow._subs[_DIRECT]._received


def test_the_fast_parser_builds_no_msg_for_a_subscription_that_takes_messages() -> None:
    events: list[tuple[Any, ...]] = []
    nc = _client(events, FastParser, as_message=True)
    block = header_block({"A": "1"})
    stream = (
        b"MSG direct.a 1 r 3\r\nabc\r\n"
        + f"HMSG direct.a 1 {len(block)} {len(block) + 2}\r\n".encode()
        + block
        + b"ok\r\n"
    )
    asyncio.run(nc._ps.parse(stream))
    assert events == [
        ("message", "direct.a", "r", b"abc", {}),
        ("message", "direct.a", "", b"ok", {"A": "1"}),
    ]


@given(
    st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=8),
    st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), max_size=8),
    st.binary(max_size=20),
    st.dictionaries(st.sampled_from(["A", "Neurectomy-Request-Id"]), st.text(max_size=5)).map(header_block),
)
def test_commands_are_the_bytes_nats_py_writes(subject: str, reply: str, data: bytes, block: bytes) -> None:
    assert pub_command(subject, reply, data) == pub_cmd(subject, reply, data)
    assert hpub_command(subject, reply, block, data) == hpub_cmd(subject, reply, block, data)


def test_the_whitespace_check_is_nats_py_s_for_every_character() -> None:
    """``_has_space`` agrees with nats-py's ``\\s`` for each character alone and inside a subject."""
    every = [chr(c) for c in range(sys.maxunicode + 1)]
    assert [c for c in every if c.isspace() and c.isprintable() and c != " "] == []  # what it relies on
    for c in every:
        for subject in (c, f"a.{c}.b"):
            assert _has_space(subject) == (re.search(r"\s", subject) is not None), repr(subject)


def test_a_parser_swapped_mid_message_finishes_it() -> None:
    """The parser taken over in the middle of a message (its payload still to come) delivers it whole."""

    async def main() -> list[tuple[Any, ...]]:
        events: list[tuple[Any, ...]] = []
        nc = _client(events, Parser)
        await nc._ps.parse(b"MSG direct.a 1 r 5\r\nhe")
        use_fast_parser(nc)
        assert isinstance(nc._ps, FastParser)
        await nc._ps.parse(b"llo\r\nMSG direct.a 1 2\r\nok\r\n")
        return events

    assert asyncio.run(main()) == [
        ("direct", "direct.a", "r", b"hello", None, _DIRECT),
        ("direct", "direct.a", "", b"ok", None, _DIRECT),
    ]


@pytest.mark.anyio
async def test_a_bus_reads_with_it_and_a_request_with_headers_and_a_503_come_through(bus: Bus) -> None:
    """On a real nats-server: a bus's connection reads with the fast parser; replies and statuses arrive."""
    assert isinstance(bus._nc._ps, FastParser)
    seen: list[Message] = []

    async def echo(msg: Message) -> None:
        seen.append(msg)
        await bus.publish(msg.reply, msg.data[::-1])

    async with bus.subscription("t.parser.echo", echo):
        await bus.flush()
        answer = await bus.request("t.parser.echo", b"abc", headers={"X-A": "1", "X-B": "é"}, timeout_s=10)
        with pytest.raises(NoRespondersError):
            await bus.request("t.parser.nobody", b"x", headers={"X-A": "1"}, timeout_s=10)
    assert answer.data == b"cba"
    assert seen[0].headers == {"X-A": "1", "X-B": "é"}


@pytest.mark.anyio
async def test_a_bus_takes_its_inbox_messages_as_their_bytes_arrive(bus: Bus) -> None:
    """On a real nats-server: messages to a bus's inboxes reach it outside the read loop's task, in order."""
    got: list[tuple[int, asyncio.Task[Any] | None]] = []
    arrived = asyncio.Event()

    def sink(data: bytes) -> bool:  # an inbox's push consumer (a stream's chunks take this way)
        got.append((int(data), asyncio.current_task()))
        if len(got) == 20:
            arrived.set()
        return True

    box = await bus.open_inbox()
    try:
        box.push(sink)
        for i in range(20):
            await bus.publish(box.subject, str(i).encode())
            if i % 5 == 4:
                await bus.flush()
        await asyncio.wait_for(arrived.wait(), 10)
    finally:
        bus.close_inbox(box)
    assert [n for n, _ in got] == list(range(20))
    reader = bus._nc._transport._io_reader  # type: ignore[union-attr]
    assert type(vars(reader)["feed_data"]).__name__ == "_EagerFeed"
    assert None in [task for _, task in got]  # taken in the protocol's callback, not in the read loop task

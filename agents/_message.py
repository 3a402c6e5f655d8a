"""A received NATS message as the bus hands it on: :class:`Message`, made from nats-py's ``Msg`` or directly.

Every message received makes one (both sides of every call), so it is built through the slots' own setters:
the frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (about three times the
cost). A message handed over inside this process (:mod:`agents._localrequest`, :mod:`agents._localinbox`)
is made with :func:`new_message` directly, without a ``Msg`` first; a request handed over so with its
deadline as a number is a :class:`LocalRequest` (:func:`new_local_request`).

Re-exported by :mod:`agents._inbox` and :mod:`agents.messaging`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from nats.aio.msg import Msg

__all__ = ("LocalRequest", "LocalTarget", "Message", "new_local_request", "new_message", "to_message")


class LocalTarget(Protocol):
    """Where an agent's answers to a caller in this process go, without nats-server.

    The caller's bus's inbox subscription as a whole (:class:`agents._localinbox.LocalInbox`, found by a
    request's reply subject), or the caller's own inbox (:class:`agents._inbox.Inbox`, named by a
    :class:`LocalRequest`). Either drops what comes once it is closed, and logs what its receiving side
    raises.
    """

    def deliver(self, subject: str, data: bytes) -> None:
        """Hand over a message without headers on ``subject`` now (never raises)."""


@dataclass(frozen=True, slots=True, init=False)
class Message:
    """A received NATS message.

    Attributes:
        subject: Subject it was published on.
        data: Payload bytes.
        headers: NATS headers (empty dict when none).
        reply: Reply subject, or ``""``.
    """

    subject: str
    data: bytes
    headers: dict[str, str]
    reply: str

    def __init__(self, subject: str, data: bytes, headers: dict[str, str], reply: str) -> None:
        # The dataclass's own __init__, written out: compiled (agents._compiled), each object.__setattr__
        # below is a store into the native object, where the generated one stays interpreted (~6.9k
        # instructions against ~0.6k per message; as Python both cost the same).
        object.__setattr__(self, "subject", subject)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "headers", headers)
        object.__setattr__(self, "reply", reply)


@dataclass(frozen=True, slots=True, init=False)
class LocalRequest(Message):
    """A request handed to an agent's endpoint in this process whose deadline comes as a number.

    Its ``headers`` are what the agent's reader would parse from the request's header block, except the
    ``Neurectomy-Deadline`` field: the deadline is :attr:`deadline` itself, the float that field's text
    (``repr`` of it) reads back as, so neither side formats or parses it (``repr`` of a ``time.time()``
    deadline and its ``float`` parse were ~11k of the ~207k instructions of a ``serve``-shape call).

    It also names the caller's inbox (:attr:`reply_to`), so that the agent's answers go straight to it
    rather than through the caller's bus's inbox table (``Bus.local_inbox``) and its ``_demux``.

    Attributes:
        deadline: The request's deadline, ``time.time()`` seconds.
        reply_to: The inbox of :attr:`reply` (``<inbox>.r``), in this process and event loop.
    """

    deadline: float
    reply_to: LocalTarget

    def __init__(
        self,
        subject: str,
        data: bytes,
        headers: dict[str, str],
        reply: str,
        deadline: float,
        reply_to: LocalTarget,
    ) -> None:
        # Written out as Message.__init__ is (why: there); not through super().__init__, one call less.
        object.__setattr__(self, "subject", subject)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "headers", headers)
        object.__setattr__(self, "reply", reply)
        object.__setattr__(self, "deadline", deadline)
        object.__setattr__(self, "reply_to", reply_to)


def new_message(subject: str, data: bytes, headers: dict[str, str], reply: str) -> Message:
    """``Message(subject, data, headers, reply)`` through the slots (see the module docs)."""
    if not _BY_SLOTS:
        return Message(subject, data, headers, reply)
    message: Message = _new(Message)
    _SET_SUBJECT(message, subject)
    _SET_DATA(message, data)
    _SET_HEADERS(message, headers)
    _SET_REPLY(message, reply)
    return message


def new_local_request(
    subject: str, data: bytes, headers: dict[str, str], reply: str, deadline: float, reply_to: LocalTarget
) -> LocalRequest:
    """``LocalRequest(subject, data, headers, reply, deadline, reply_to)`` through the slots (module docs)."""
    if not _BY_SLOTS:
        return LocalRequest(subject, data, headers, reply, deadline, reply_to)
    message: LocalRequest = _new(LocalRequest)
    _SET_SUBJECT(message, subject)
    _SET_DATA(message, data)
    _SET_HEADERS(message, headers)
    _SET_REPLY(message, reply)
    _SET_DEADLINE(message, deadline)
    _SET_REPLY_TO(message, reply_to)
    return message


def to_message(msg: Msg | Message) -> Message:
    """nats-py's message as a :class:`Message` (a :class:`Message` is returned as it is)."""
    if type(msg) is Message:
        return msg
    if not _BY_SLOTS:
        return Message(msg.subject, msg.data, msg.headers or {}, msg.reply or "")
    message: Message = _new(Message)
    _SET_SUBJECT(message, msg.subject)
    _SET_DATA(message, msg.data)
    _SET_HEADERS(message, msg.headers or {})
    _SET_REPLY(message, msg.reply or "")
    return message


_BY_SLOTS: Final = Message.__new__ is object.__new__
"""Whether messages are built through the slots' setters: so when the module runs as Python. Compiled
(:mod:`agents._compiled`), :class:`Message` is a native class: ``object.__new__`` refuses it, and its
constructor (compiled too: written out, not the dataclass's) costs less than those setters do in Python."""
_new = object.__new__
_SET_SUBJECT, _SET_DATA, _SET_HEADERS, _SET_REPLY = (
    vars(Message)[name].__set__ for name in ("subject", "data", "headers", "reply")
)
_SET_DEADLINE, _SET_REPLY_TO = (vars(LocalRequest)[name].__set__ for name in ("deadline", "reply_to"))

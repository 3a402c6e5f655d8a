"""The context of one call to an agent (who asks, until when) and the NATS headers that carry it."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from typing import Any, Final

from agents.natsheaders import header_block, parse_header_lines
from agents.protocol import (
    DEFAULT_TENANT,
    HEADER_DEADLINE,
    HEADER_IDEMPOTENCY_KEY,
    HEADER_REQUEST_ID,
    HEADER_SCOPES,
    HEADER_STREAM_INBOX,
    HEADER_TENANT,
    HEADER_TRACE_ID,
)
from agents.scopes import ALL_SCOPES, format_scopes

__all__ = ("CallContext", "new_id")

_ID_HEX = 32
_ID_BATCH = 256
_ids: list[str] = []
"""Random ids not handed out yet (``list.pop`` is atomic: safe from any thread)."""


def new_id() -> str:
    """A random 128-bit id as 32 hex digits (``os.urandom``): a request id or an idempotency key.

    As unique as ``uuid.uuid4().hex`` (the version bits aside) at a fraction of its cost: the random
    bytes are read 256 ids at a time; every call makes one or two.
    """
    try:
        return _ids.pop()
    except IndexError:
        pool = os.urandom(_ID_HEX // 2 * _ID_BATCH).hex()
        _ids.extend([pool[i : i + _ID_HEX] for i in range(0, len(pool), _ID_HEX)])
        return _ids.pop()


@functools.lru_cache(maxsize=256)  # a few (scopes, tenant) pairs; tenants come from credentials
def _fixed_block(scopes: frozenset[str], tenant: str) -> bytes:
    """The first lines of a call's header block, the same for every call of one caller and tenant."""
    headers = {HEADER_SCOPES: format_scopes(scopes)}
    if tenant != DEFAULT_TENANT:
        headers[HEADER_TENANT] = tenant
    return header_block(headers)[: -len(_CRLF)]  # without the empty line that ends the block


@functools.lru_cache(maxsize=256)  # as _fixed_block: its lines as the agent's reader parses them
def _fixed_fields(scopes: frozenset[str], tenant: str) -> dict[str, str]:
    """:func:`_fixed_block` as ``parse_header_lines`` reads it (copy it: the dict is shared)."""
    return parse_header_lines(_fixed_block(scopes, tenant).partition(_CRLF)[2])


_CRLF = b"\r\n"
_LINE_BREAKS = str.maketrans({"\r": " ", "\n": " "})


def _value(value: str) -> str:
    """A header value as ``agents.natsheaders.header_block`` writes it (trimmed, CR/LF as spaces)."""
    if "\r" in value or "\n" in value:
        value = value.translate(_LINE_BREAKS)
    return value.strip()


_PLAIN = bytes(0x61 if 0x21 <= byte <= 0x7E else 0x20 for byte in range(256))
"""A ``bytes.translate`` table: each printable ASCII byte but the space to ``a``, every other byte to a space.
A value whose UTF-8 bytes it turns into letters alone (``isalnum``) is printable ASCII without any space:
written and read back as it is (no CR/LF or other control character, nothing to trim, nothing to replace),
as ids are. Two table look-ups per byte in C: about half the instructions of a regular expression's match
(``[!-~](?:[ -~]*[!-~])?``, which also let inner spaces through; those now take the slow path, with the
same result)."""


def _field(value: str) -> str:
    """A header value as the reader parses it back from :func:`_value`'s bytes (ASCII: the same string)."""
    if value.encode().translate(_PLAIN).isalnum():
        return value
    value = _value(value)
    if not value.isascii():  # as written and decoded: errors and replacements included
        value = value.encode().decode("utf-8", "replace")
    return value


@dataclass(frozen=True, slots=True, init=False)
class CallContext:
    """Who asks, and until when.

    Attributes:
        request_id: Unique id of the call (a new one per call if not given).
        deadline: Absolute deadline as ``time.time()`` seconds.
        tenant: Tenant the call runs for.
        trace_id: Trace id carried across every hop.
        scopes: The caller's scopes (every scope for the service's own calls); each agent operation checks
            them (`agents.scopes`), and they travel in the ``Neurectomy-Scopes`` header.
        idempotency_key: Names the call across retries (the router keeps it while the request id changes
            per attempt, and makes one when empty); a caller sets it to stay the same across its own retries
            or re-runs (e.g. a task). Never derived from the request id, which a client may reuse.
    """

    deadline: float
    request_id: str
    tenant: str
    trace_id: str
    scopes: frozenset[str]
    idempotency_key: str

    def __init__(
        self,
        deadline: float,
        request_id: str | None = None,
        tenant: str = DEFAULT_TENANT,
        trace_id: str = "",
        scopes: frozenset[str] = ALL_SCOPES,
        idempotency_key: str = "",
    ) -> None:
        """The dataclass's ``__init__`` written out (``request_id``: a new id, :func:`new_id`, when ``None``).

        Compiled (``agents._compiled``), ``CallContext`` is a native class and each line a store into the
        object (a dataclass's generated ``__init__`` would stay interpreted: ``agents._message.Message``).
        """
        object.__setattr__(self, "deadline", deadline)
        object.__setattr__(self, "request_id", new_id() if request_id is None else request_id)
        object.__setattr__(self, "tenant", tenant)
        object.__setattr__(self, "trace_id", trace_id)
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "idempotency_key", idempotency_key)

    @classmethod
    def with_timeout(cls, timeout_s: float, **kwargs: Any) -> CallContext:
        """A context whose deadline is ``timeout_s`` seconds from now (other fields by keyword).

        Built through the slots, as :meth:`attempt` is, at under half the frozen ``__init__``'s cost
        (every routed call starts with one); any other keyword raises ``__init__``'s ``TypeError``.
        """
        deadline = time.time() + timeout_s
        if not _BY_SLOTS:  # compiled: the native constructor costs less than the slots' setters as Python
            return cls(deadline, **kwargs)
        ctx: CallContext = _new(CallContext)
        _SET_DEADLINE(ctx, deadline)
        if not kwargs and cls is CallContext:  # every field but the deadline its default
            _SET_REQUEST_ID(ctx, new_id())
            _SET_TENANT(ctx, DEFAULT_TENANT)
            _SET_TRACE_ID(ctx, "")
            _SET_SCOPES(ctx, ALL_SCOPES)
            _SET_IDEMPOTENCY_KEY(ctx, "")
            return ctx
        if cls is not CallContext or not kwargs.keys() <= _OPTIONAL:
            return cls(deadline=deadline, **kwargs)
        get = kwargs.get
        _SET_REQUEST_ID(ctx, kwargs["request_id"] if "request_id" in kwargs else new_id())
        _SET_TENANT(ctx, get("tenant", DEFAULT_TENANT))
        _SET_TRACE_ID(ctx, get("trace_id", ""))
        _SET_SCOPES(ctx, get("scopes", ALL_SCOPES))
        _SET_IDEMPOTENCY_KEY(ctx, get("idempotency_key", ""))
        return ctx

    def remaining_s(self) -> float:
        """Seconds left until the deadline."""
        return self.deadline - time.time()

    def attempt(self, request_id: str, deadline: float, idempotency_key: str) -> CallContext:
        """This context with another request id, deadline and idempotency key (one attempt of a call).

        ``dataclasses.replace`` does the same at several times the cost, and the frozen ``__init__`` at
        twice it; the router makes one per attempt, so the fields are set through their slots.
        """
        if not _BY_SLOTS:
            return CallContext(deadline, request_id, self.tenant, self.trace_id, self.scopes, idempotency_key)
        ctx: CallContext = _new(CallContext)
        _SET_DEADLINE(ctx, deadline)
        _SET_REQUEST_ID(ctx, request_id)
        _SET_TENANT(ctx, self.tenant)
        _SET_TRACE_ID(ctx, self.trace_id)
        _SET_SCOPES(ctx, self.scopes)
        _SET_IDEMPOTENCY_KEY(ctx, idempotency_key)
        return ctx

    def headers(self, inbox: str = "") -> dict[str, str]:
        """NATS headers of a call to an agent whose stream goes to ``inbox``.

        Headers are left out when they say what the agent assumes without them, which saves parsing
        them on every call: the tenant ``default``, the trace id equal to the request id, and the stream
        inbox when ``inbox`` is empty (the request's reply subject is then ``<stream inbox>.r``). The
        ones that are the same for every call of a caller come first (see :meth:`header_block`).
        """
        headers = {HEADER_SCOPES: format_scopes(self.scopes)}
        if self.tenant != DEFAULT_TENANT:
            headers[HEADER_TENANT] = self.tenant
        headers[HEADER_REQUEST_ID] = self.request_id
        headers[HEADER_DEADLINE] = repr(self.deadline)
        if self.trace_id and self.trace_id != self.request_id:
            headers[HEADER_TRACE_ID] = self.trace_id
        if self.idempotency_key:
            headers[HEADER_IDEMPOTENCY_KEY] = self.idempotency_key
        if inbox:
            headers[HEADER_STREAM_INBOX] = inbox
        return headers

    def header_block(self) -> bytes:
        """The bytes of ``agents.natsheaders.header_block(self.headers())`` at a fraction of the cost.

        The scopes and tenant lines are built once per (scopes, tenant) and kept; the lines that change
        per call (request id, deadline, trace id, idempotency key) are one formatted string.
        """
        lines = f"{HEADER_REQUEST_ID}: {_value(self.request_id)}\r\n{HEADER_DEADLINE}: {self.deadline!r}\r\n"
        if self.trace_id and self.trace_id != self.request_id:
            lines += f"{HEADER_TRACE_ID}: {_value(self.trace_id)}\r\n"
        if self.idempotency_key:
            lines += f"{HEADER_IDEMPOTENCY_KEY}: {_value(self.idempotency_key)}\r\n"
        return b"%b%b\r\n" % (_fixed_block(self.scopes, self.tenant), lines.encode())

    def header_fields(self, *, deadline: bool = True) -> dict[str, str]:
        """What the agent's reader parses out of :meth:`header_block`, without writing and parsing it.

        A new dict equal to ``agents.natsheaders.parse_header_lines`` of the block's lines (a property test
        compares them): for a request handed to an agent in this process (``agents._localrequest``), which
        then checks exactly the headers it would have read from the wire. A value that cannot be written as
        UTF-8 raises ``UnicodeEncodeError`` here too, as :meth:`header_block` does.

        Args:
            deadline: Whether the dict has the ``Neurectomy-Deadline`` field (``repr(self.deadline)``); a
                local request carries :attr:`deadline` as a number instead (``agents._message.LocalRequest``):
                formatting a ``time.time()`` float and parsing it back cost ~11k instructions a call.
        """
        fields = _fixed_fields(self.scopes, self.tenant).copy()
        fields[HEADER_REQUEST_ID] = _field(self.request_id)
        if deadline:
            fields[HEADER_DEADLINE] = repr(self.deadline)
        if self.trace_id and self.trace_id != self.request_id:
            fields[HEADER_TRACE_ID] = _field(self.trace_id)
        if self.idempotency_key:
            fields[HEADER_IDEMPOTENCY_KEY] = _field(self.idempotency_key)
        return fields


_BY_SLOTS: Final = CallContext.__new__ is object.__new__
"""Whether contexts are built through the slots' setters: so when the module runs as Python (as
``agents._message``'s messages). Compiled, :class:`CallContext` is a native class, which ``object.__new__``
refuses, and its constructor costs less than those setters do in Python."""
_new = object.__new__
_SET_DEADLINE, _SET_REQUEST_ID, _SET_TENANT, _SET_TRACE_ID, _SET_SCOPES, _SET_IDEMPOTENCY_KEY = (
    vars(CallContext)[name].__set__
    for name in ("deadline", "request_id", "tenant", "trace_id", "scopes", "idempotency_key")
)
"""The slots' own setters (a frozen dataclass refuses ``setattr``)."""
_OPTIONAL = frozenset(("request_id", "tenant", "trace_id", "scopes", "idempotency_key"))
"""The fields :meth:`CallContext.with_timeout` takes by keyword (those with a default)."""

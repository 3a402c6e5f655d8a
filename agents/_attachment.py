"""A payload's binary attachment on the wire: JSON, a NUL byte, then raw bytes (see :mod:`agents.protocol`).

Split from :mod:`agents.protocol` (which re-exports these names) so that the call path's compiled modules
(``agents._compiled.MODULES``) call them natively: every request and every ``End`` is split here.
"""

from __future__ import annotations

from typing import Final

__all__ = ("ATTACHMENT_SEPARATOR", "join_attachment", "split_attachment")

ATTACHMENT_SEPARATOR: Final = b"\0"
"""Separates a payload's JSON from its binary attachment (a JSON text never holds a raw NUL byte)."""


def join_attachment(body: bytes, attachment: bytes | bytearray | memoryview) -> bytes:
    """``body`` (JSON), the separator, then ``attachment``: one NATS payload."""
    return b"".join((body, ATTACHMENT_SEPARATOR, attachment))


def split_attachment(data: bytes) -> tuple[bytes, memoryview | None]:
    """A NATS payload's JSON and its attachment (a view into ``data``; None when there is none)."""
    cut = data.find(ATTACHMENT_SEPARATOR)
    if cut < 0:
        return data, None
    return data[:cut], memoryview(data)[cut + 1 :]

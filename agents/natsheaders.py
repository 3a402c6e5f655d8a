r"""NATS header blocks, both ways: building one per published message and parsing one per received message.

A header block is ``NATS/1.0\r\n``, then ``Name: value\r\n`` lines, then ``\r\n`` (the NATS protocol's
``HPUB``/``HMSG``). nats-py builds the block with a regex and several copies per header on every publish,
and parses a received one testing every character of every name with a Python generator (about a fifth
of an agent's CPU per call in ``benchmarks/orchestrator.py --profile agent64``). The two functions here
write and read the same bytes at a fraction of the cost; :func:`parse_header_lines` returns exactly what
nats-py's ``Client._parse_header_lines`` returns for any input (a property test compares the two).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final

__all__ = ("NAME_CACHE_SIZE", "header_block", "parse_header_lines")

_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""A header name nats-py accepts (an RFC 7230 token)."""
_NEWLINES: Final = str.maketrans({"\r": " ", "\n": " "})
_NAME_SPACE: Final = re.compile(r"[\t\n\x0b\x0c\r\x1c-\x1f ]")
"""The ASCII characters ``str.isspace`` is true for: nats-py drops a header whose name holds one (a ``str``
pattern's ``\\s`` would match more)."""


@functools.lru_cache(maxsize=256)
def _header_name(name: str) -> bytes:
    """``name: `` as bytes, checked once per distinct name (raises ``ValueError`` if not a token)."""
    key = name.strip()
    if not _HEADER_NAME.fullmatch(key):
        raise ValueError(f"invalid NATS header name {name!r}")
    return f"{key}: ".encode()


def header_block(headers: Mapping[str, str]) -> bytes:
    """The NATS header block of ``headers``, as nats-py writes it (``NATS/1.0``, ``Name: value`` lines).

    Names must be tokens (``ValueError`` otherwise); values are trimmed and CR/LF become spaces, so a
    value can never end its line. nats-py builds the same bytes with a regex and several copies per
    header on every publish; here a name is checked once, and a call's headers cost one join.
    """
    parts = [b"NATS/1.0\r\n"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            value = value.translate(_NEWLINES)
        parts += (_header_name(name), value.strip().encode(), b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def parse_header_lines(raw: bytes) -> dict[str, str]:
    r"""The headers of the ``Name: value`` lines of a received block (after its ``NATS/1.0`` line).

    nats-py's rules, unchanged: a line is split at its first ``:``; a line without one, a name that is
    not ASCII or that holds whitespace is skipped; name and value are trimmed; a value is UTF-8 with
    invalid bytes replaced (U+FFFD); a later line overrides an earlier one of the same name. Linear in
    ``len(raw)``; a name seen before costs one dictionary lookup (the first :data:`NAME_CACHE_SIZE`
    distinct names are remembered), a new one a C-level regex search instead of a generator step per
    character.

    The block is decoded once, then split as text: compiled, ``str``'s ``split``, ``partition`` and
    ``strip`` are direct C calls where ``bytes``' are method look-ups (~0.6k instructions each, a dozen per
    request). The same result: decoding never joins bytes across an ASCII byte, so the block's decoding
    is its lines', names' and values' decodings put together, and a name that was not ASCII is not ASCII
    once decoded; trimming takes only the ASCII whitespace ``bytes.strip`` takes (:data:`_STRIP`).

    Args:
        raw: The block's lines, CRLF-separated (nats-py passes the bytes after ``NATS/1.0\r\n``).

    Returns:
        Header name to value.
    """
    out: dict[str, str] = {}
    names = _names
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        if not line:  # (a block ends with an empty line)
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = names.get(name)
        if key is None:
            key = _header_key(name)
        if key is not _SKIP:
            out[key] = value.strip(_STRIP)
    return out


NAME_CACHE_SIZE: Final = 1024
"""Distinct received header names remembered with their check (names come from the wire: bounded)."""
_names: Final[dict[str, str]] = {}
_SKIP: Final = " "
"""Stands for a name nats-py skips (a kept name never holds whitespace)."""
_STRIP: Final = " \t\n\r\x0b\x0c"
"""What ``bytes.strip()`` trims (``str.strip()`` would also trim ``\x1c``-``\x1f`` and non-ASCII spaces)."""


def _header_key(name: str) -> str:
    """``name`` trimmed, or :data:`_SKIP` if nats-py would skip it (not ASCII, or whitespace)."""
    stripped = name.strip(_STRIP)
    key = stripped if stripped.isascii() and not _NAME_SPACE.search(stripped) else _SKIP
    if len(_names) < NAME_CACHE_SIZE:
        _names[name] = key
    return key

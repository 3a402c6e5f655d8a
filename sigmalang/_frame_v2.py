"""The ΣLANG frame, format version 2: the **store-backed, tenant-bound frame** written by `SigmaCodec`.

Part of `sigmalang.frame` (re-exported there; version 1 stays the format of self-contained frames from
`sigmalang.compress`, laid out in that module's docstring)::

    offset  size      field
    0       2         magic          CE A3
    2       1         version        2
    3       1         flags          bit 0 DICT     a trained zstd dictionary id follows
                                     bit 1 CONTEXT  context runs follow
                                     bit 2 TABLES   with DICT and CONTEXT: only the dictionary's
                                                    entropy tables are used, not its content
                                     bit 3 RAW      payload is stored, not zstd-compressed
                                     bit 4 PACKED   with CONTEXT: the runs are packed (below)
                                     other bits     reserved, must be 0
    4       varint    content_size   length of the decoded message, bytes
            4         dict_id        if DICT: id of the trained dictionary (u32, never 0)
            varint    n_runs         if CONTEXT: runs of RSU sequence numbers of the tenant's store
            varint*2  runs           if CONTEXT: zigzag(start - end of the previous run), length >= 1;
                                     if PACKED, one varint zigzag(...) << 2 | min(length - 1, 3),
                                     then for a length of 4 or more a varint length - 4
    ...     ...       payload        the whole message: a magic-less zstd frame, compressed with the
                                     context RSUs' content, concatenated in run order, as a
                                     raw-content dictionary (appended to the dictionary's content
                                     if DICT, or to its header and entropy tables alone if
                                     TABLES: RFC 8878 section 5), and then carrying its content
                                     checksum (XXH64, RFC 8878 section 3.1.1); or the bytes as they
                                     are if RAW
    end-12  12        tag            keyed BLAKE2b with a 12-byte digest (RFC 7693 keyed mode) of
                                     every preceding byte, the key being the tenant's (`tenant_key`)

The tag binds the frame to one tenant: a frame made for tenant A, or altered, fails under tenant B
with `FrameAuthenticationError` before any store access. The zstd checksum catches wrong context
content (a store restored from elsewhere): decoding never returns wrong bytes.
"""

from __future__ import annotations

import hashlib
import hmac

from sigmalang import _varint
from sigmalang._frame_header import (
    F_DICT,
    F_PACKED,
    F_RAW,
    F_REFS,
    F_TABLES,
    MAGIC,
    FrameFlags,
    FrameInfo,
    _header,
)
from sigmalang.errors import CorruptFrameError, FrameAuthenticationError, TruncatedFrameError

TAG_BYTES = 12
"""Length of a version-2 frame's MAC, bytes (96 bits: a forger needs about 2**95 tries)."""
MAX_CONTEXT_RSUS = 1 << 16
"""Most RSUs a version-2 or -3 frame's context may name."""
V2 = 2
"""This layout's version byte (`STORE_FORMAT_VERSION`, what `SigmaCodec` writes, is now 3)."""


def tenant_key(secret: bytes, tenant: str) -> bytes:
    """The MAC key of one tenant: keyed BLAKE2b-256 of the tenant name under the service secret.

    Args:
        secret: The service's secret, 16-64 bytes.
        tenant: Tenant name.

    Returns:
        32 bytes.
    """
    return hashlib.blake2b(
        tenant.encode("utf-8"), key=secret, digest_size=32, person=b"sigma-tenant"
    ).digest()


def _tag(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    return hashlib.blake2b(data, key=key, digest_size=TAG_BYTES).digest()


def encode_store_frame(
    *,
    key: bytes,
    content_size: int,
    payload: bytes,
    raw: bool,
    dict_id: int | None,
    context: tuple[int, ...],
    tables: bool = False,
) -> bytes:
    """Assemble a version-2 frame (layout in the module docstring) and tag it with `key`.

    Args:
        key: The tenant's MAC key (`tenant_key`).
        content_size: Decoded length, bytes.
        payload: The zstd payload, or the message itself if `raw`.
        raw: The payload is stored.
        dict_id: The dictionary used, or None.
        context: Sequence numbers of the context RSUs, in dictionary order.
        tables: Only the dictionary's entropy tables were used, not its content (needs `dict_id`
            and a context).

    Raises:
        ValueError: An argument is out of range.
    """
    if tables and (dict_id is None or not context or raw):
        raise ValueError("TABLES needs a dictionary, a context and a compressed payload")
    flags = (F_RAW if raw else F_TABLES if tables else 0) | (F_PACKED if context else 0)
    out = _header(V2, flags, content_size, dict_id, refs=bool(context))
    if context:
        encode_runs(context, out)
    out += payload
    out += _tag(out, key)
    return bytes(out)


def encode_runs(context: tuple[int, ...] | list[int], out: bytearray) -> None:
    """Append the context's sequence numbers to `out` as packed runs (layout in the module docstring).

    Raises:
        ValueError: A sequence number is below 1.
    """
    runs: list[tuple[int, int]] = []
    for seq in context:
        if seq <= 0:
            raise ValueError(f"sequence numbers start at 1, got {seq}")
        if runs and runs[-1][0] + runs[-1][1] == seq:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((seq, 1))
    _varint.encode(len(runs), out)
    end = 0
    for start, length in runs:  # packed (flag PACKED): short runs of near starts take one byte
        delta = start - end
        _varint.encode((delta * 2 if delta >= 0 else -delta * 2 - 1) << 2 | min(length - 1, 3), out)
        if length >= 4:
            _varint.encode(length - 4, out)
        end = start + length


def decode_runs(view: memoryview, pos: int, end: int, *, packed: bool) -> tuple[list[int], int]:
    """Read context runs (`encode_runs`, or two varints per run if not `packed`) from `view[pos:end]`.

    Returns:
        The sequence numbers and the position after the runs.

    Raises:
        CorruptFrameError: A run is out of range or there are more than `MAX_CONTEXT_RSUS`.
        TruncatedFrameError: The runs end past `end`.
    """
    context: list[int] = []
    n_runs, pos = _varint.decode(view, pos, end)
    if not 0 < n_runs <= end - pos:
        raise CorruptFrameError(f"{n_runs} context runs in {end - pos} bytes")
    prev_end = 0
    for _ in range(n_runs):
        zz, pos = _varint.decode(view, pos, end)
        if packed:
            zz, length = zz >> 2, (zz & 3) + 1
            if length == 4:
                more, pos = _varint.decode(view, pos, end)
                length += more
        else:
            length, pos = _varint.decode(view, pos, end)
        start = prev_end + (zz >> 1 if not zz & 1 else -((zz + 1) >> 1))
        if start <= 0 or length <= 0 or len(context) + length > MAX_CONTEXT_RSUS:
            raise CorruptFrameError(f"context run ({start}, {length}) out of range")
        context.extend(range(start, start + length))
        prev_end = start + length
    return context, pos


def _inspect_v2(view: memoryview, key: bytes | None) -> FrameInfo:
    size = len(view)
    if size < len(MAGIC) + 3 + TAG_BYTES:
        raise TruncatedFrameError(size=size, needed=len(MAGIC) + 3 + TAG_BYTES)
    end = size - TAG_BYTES
    if key is not None and not hmac.compare_digest(bytes(view[end:]), _tag(view[:end], key)):
        raise FrameAuthenticationError()
    flags = view[len(MAGIC) + 1]
    if flags & ~(F_DICT | F_REFS | F_TABLES | F_RAW | F_PACKED):
        raise CorruptFrameError(f"unknown flag bits {flags:#04x}")
    if flags & F_PACKED and not flags & F_REFS:
        raise CorruptFrameError("PACKED flag without CONTEXT")
    if flags & F_TABLES and flags & (F_DICT | F_REFS | F_RAW) != F_DICT | F_REFS:
        raise CorruptFrameError("TABLES flag without DICT and CONTEXT, or with RAW")
    pos = len(MAGIC) + 2
    content_size, pos = _varint.decode(view, pos, end)
    dict_id: int | None = None
    if flags & F_DICT:
        if pos + 4 > end:
            raise TruncatedFrameError(size=size, needed=pos + 4 + TAG_BYTES)
        dict_id = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4
        if dict_id == 0:
            raise CorruptFrameError("dictionary id 0")
    context: list[int] = []
    if flags & F_REFS:
        context, pos = decode_runs(view, pos, end, packed=bool(flags & F_PACKED))
    if flags & F_RAW and (flags & F_DICT or end - pos != content_size):
        raise CorruptFrameError("stored payload with a dictionary, or of the wrong size")
    return FrameInfo(
        version=V2,
        flags=FrameFlags(flags),
        content_size=content_size,
        dict_id=dict_id,
        rsu_ids=(),
        ops=(),
        prefix_size=0,
        payload_offset=pos,
        payload_size=end - pos,
        frame_size=size,
        context=tuple(context),
    )

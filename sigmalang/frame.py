"""The ΣLANG frame: a versioned, checksummed binary container for one compressed message.

Layout of format version 1 (all multi-byte integers little-endian; *varint* = unsigned LEB128)::

    offset  size      field
    0       2         magic          CE A3 (hex; the UTF-8 encoding of "Σ")
    2       1         version        1
    3       1         flags          bit 0 DICT        a trained zstd dictionary id follows
                                     bit 1 REFS        an RSU table and a recipe follow
                                     bit 2 REF_PREFIX  payload was compressed with the referenced RSUs'
                                                       content as a raw-content zstd dictionary
                                     bit 3 RAW         payload is stored, not zstd-compressed
                                     bits 4-7          reserved, must be 0
    4       varint    content_size   length of the decoded message, bytes
            4         dict_id        if DICT: id of the trained dictionary (u32, never 0)
            varint    n_rsus         if REFS: number of distinct RSUs referenced
            16*n      rsu_ids        if REFS: their ids (BLAKE2b-128 of the RSU bytes)
            varint    n_ops          if REFS: number of recipe operations
            varint*   ops            if REFS: op = (i << 1) | 1  -> a glyph: copy RSU rsu_ids[i]
                                                  op = (n << 1)      -> copy the next n literal bytes
            varint    prefix_size    if REF_PREFIX: the zstd raw dictionary is the last prefix_size
                                     bytes of the referenced RSUs' content concatenated in table order
    ...     ...       payload        the literal bytes: a magic-less zstd frame (no content size, no
                                     checksum, no dictionary id fields), or the bytes as they are if RAW
    end-4   4         checksum       BLAKE2b-32 (RFC 7693, digest size 4) of every preceding byte

Without REFS the whole message is the literal bytes. The decoder checks, in order: length, magic,
version, checksum, then every field against `content_size`; any failure raises a `FrameError`
subclass, never returns garbage.

The glyphs (references to reusable semantic units) are what makes repeated content cost 16 bytes
instead of its length: see `sigmalang.chunking` and `sigmalang.store`.

Format version 3, the store-backed, tenant-bound frame written by `SigmaCodec`, is laid out in
`sigmalang._frame_v3`, its predecessor version 2 (still decoded) in `sigmalang._frame_v2`; what the
versions share (magic, flags, the parsed header) is in `sigmalang._frame_header`. Every name of them
is re-exported here.
"""

from __future__ import annotations

import hashlib

from sigmalang import _varint
from sigmalang._frame_header import F_BARE as F_BARE
from sigmalang._frame_header import F_BASE as F_BASE
from sigmalang._frame_header import F_DICT as F_DICT  # the flag bits and versions: re-exported
from sigmalang._frame_header import F_GENERIC as F_GENERIC
from sigmalang._frame_header import F_PACKED as F_PACKED
from sigmalang._frame_header import F_RAW as F_RAW
from sigmalang._frame_header import F_REF_PREFIX as F_REF_PREFIX
from sigmalang._frame_header import F_REFS as F_REFS
from sigmalang._frame_header import F_TABLES as F_TABLES
from sigmalang._frame_header import (
    FORMAT_VERSION,
    MAGIC,
    RSU_ID_BYTES,
    STORE_FORMAT_VERSION,
    FrameFlags,
    FrameInfo,
    _header,
)
from sigmalang._frame_header import STORE_VERSIONS as STORE_VERSIONS
from sigmalang._frame_header import SUPPORTED_VERSIONS as SUPPORTED_VERSIONS
from sigmalang._frame_v2 import MAX_CONTEXT_RSUS as MAX_CONTEXT_RSUS
from sigmalang._frame_v2 import TAG_BYTES, V2, _inspect_v2, encode_store_frame, tenant_key
from sigmalang._frame_v3 import MAC_BYTES as MAC_BYTES
from sigmalang._frame_v3 import TRAILER_BYTES as TRAILER_BYTES
from sigmalang._frame_v3 import V3, _inspect_v3, encode_frame_v3
from sigmalang.errors import (
    BadMagicError,
    ChecksumMismatchError,
    CorruptFrameError,
    TruncatedFrameError,
    UnsupportedVersionError,
)

__all__ = (
    "CHECKSUM_BYTES",
    "FORMAT_VERSION",
    "MAGIC",
    "RSU_ID_BYTES",
    "STORE_FORMAT_VERSION",
    "TAG_BYTES",
    "FrameFlags",
    "FrameInfo",
    "encode_frame",
    "encode_frame_v3",
    "encode_store_frame",
    "inspect_frame",
    "tenant_key",
)

CHECKSUM_BYTES = 4
"""Length of the trailing BLAKE2b checksum, bytes."""
_MIN_FRAME = len(MAGIC) + 2 + 1 + CHECKSUM_BYTES  # magic, version, flags, content_size, checksum

_KNOWN_FLAGS = F_DICT | F_REFS | F_REF_PREFIX | F_RAW


def checksum(data: bytes | bytearray | memoryview) -> bytes:
    """BLAKE2b with a 4-byte digest (RFC 7693) of `data`."""
    return hashlib.blake2b(data, digest_size=CHECKSUM_BYTES).digest()


def encode_frame(
    *,
    content_size: int,
    payload: bytes,
    flags: int = 0,
    dict_id: int | None = None,
    rsu_ids: tuple[bytes, ...] = (),
    ops: tuple[int, ...] = (),
    prefix_size: int = 0,
) -> bytes:
    """Assemble a version-1 frame.

    Args:
        content_size: Decoded message length, bytes.
        payload: Compressed (or RAW) literal bytes.
        flags: RAW and REF_PREFIX as chosen by the encoder; DICT and REFS are derived.
        dict_id: Trained dictionary id (u32, non-zero) or None.
        rsu_ids: Distinct referenced RSU ids, 16 bytes each.
        ops: Recipe operations (see the module docstring).
        prefix_size: With REF_PREFIX, bytes of referenced content used as the raw dictionary.

    Returns:
        The frame bytes.

    Raises:
        ValueError: An argument is out of range.
    """
    flags &= F_RAW | F_REF_PREFIX
    out = _header(FORMAT_VERSION, flags, content_size, dict_id, refs=bool(ops))
    if ops:
        _varint.encode(len(rsu_ids), out)
        for rsu_id in rsu_ids:
            if len(rsu_id) != RSU_ID_BYTES:
                raise ValueError(f"RSU ids are {RSU_ID_BYTES} bytes, got {len(rsu_id)}")
            out += rsu_id
        _varint.encode(len(ops), out)
        for op in ops:
            _varint.encode(op, out)
        if flags & F_REF_PREFIX:
            _varint.encode(prefix_size, out)
    elif flags & F_REF_PREFIX:
        raise ValueError("REF_PREFIX needs RSU references")
    out += payload
    out += checksum(out)
    return bytes(out)


def inspect_frame(frame: bytes | memoryview, *, key: bytes | None = None) -> FrameInfo:
    """Parse and verify a frame's header and checksum (or MAC) without decompressing the payload.

    Args:
        frame: The frame bytes.
        key: The decoding tenant's key (`tenant_key`): a version-2 or -3 frame's MAC is verified with
            it; None parses such a header without verifying it (for display only).

    Returns:
        The parsed header.

    Raises:
        TruncatedFrameError: Shorter than the smallest frame or than its fields declare.
        BadMagicError: Does not start with `MAGIC`.
        UnsupportedVersionError: Version is not in `SUPPORTED_VERSIONS`.
        ChecksumMismatchError: The bytes were altered.
        FrameAuthenticationError: A version-2 or -3 frame fails its MAC under `key`.
        CorruptFrameError: Fields are inconsistent (unknown flags, bad recipe).
    """
    view = memoryview(frame)
    size = len(view)
    if size < len(MAGIC) or bytes(view[: len(MAGIC)]) != MAGIC:
        if size < len(MAGIC) and MAGIC.startswith(bytes(view)):
            raise TruncatedFrameError(size=size, needed=_MIN_FRAME)
        raise BadMagicError(bytes(view[: len(MAGIC)]))
    if size < len(MAGIC) + 1:
        raise TruncatedFrameError(size=size, needed=_MIN_FRAME)
    version = view[len(MAGIC)]
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(version, SUPPORTED_VERSIONS)
    if version == V3:
        return _inspect_v3(view, key)
    if version == V2:
        return _inspect_v2(view, key)
    if size < _MIN_FRAME:
        raise TruncatedFrameError(size=size, needed=_MIN_FRAME)
    end = size - CHECKSUM_BYTES
    stored = bytes(view[end:])
    actual = checksum(view[:end])
    if stored != actual:
        raise ChecksumMismatchError(expected=stored, actual=actual)
    raw_flags = view[len(MAGIC) + 1]
    if raw_flags & ~_KNOWN_FLAGS:
        raise CorruptFrameError(f"unknown flag bits {raw_flags:#04x}")
    flags = raw_flags
    pos = len(MAGIC) + 2
    content_size, pos = _varint.decode(view, pos, end)
    dict_id: int | None = None
    if flags & F_DICT:
        if pos + 4 > end:
            raise TruncatedFrameError(size=size, needed=pos + 4 + CHECKSUM_BYTES)
        dict_id = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4
        if dict_id == 0:
            raise CorruptFrameError("dictionary id 0")
    rsu_ids: tuple[bytes, ...] = ()
    ops: tuple[int, ...] = ()
    prefix_size = 0
    if flags & F_REFS:
        n_rsus, pos = _varint.decode(view, pos, end)
        if pos + n_rsus * RSU_ID_BYTES > end:
            raise TruncatedFrameError(size=size, needed=pos + n_rsus * RSU_ID_BYTES + CHECKSUM_BYTES)
        rsu_ids = tuple(
            bytes(view[pos + i * RSU_ID_BYTES : pos + (i + 1) * RSU_ID_BYTES]) for i in range(n_rsus)
        )
        pos += n_rsus * RSU_ID_BYTES
        n_ops, pos = _varint.decode(view, pos, end)
        if n_ops > end - pos:  # every op takes at least one byte
            raise TruncatedFrameError(size=size, needed=pos + n_ops + CHECKSUM_BYTES)
        decoded: list[int] = []
        for _ in range(n_ops):
            op, pos = _varint.decode(view, pos, end)
            if op & 1 and op >> 1 >= n_rsus:
                raise CorruptFrameError(f"glyph refers to RSU {op >> 1} of a table of {n_rsus}")
            decoded.append(op)
        ops = tuple(decoded)
        if not ops:
            raise CorruptFrameError("REFS flag with an empty recipe")
        if flags & F_REF_PREFIX:
            prefix_size, pos = _varint.decode(view, pos, end)
    elif flags & F_REF_PREFIX:
        raise CorruptFrameError("REF_PREFIX flag without REFS")
    if flags & F_REF_PREFIX and flags & F_DICT:
        raise CorruptFrameError("REF_PREFIX and DICT flags together")
    return FrameInfo(
        version=version,
        flags=FrameFlags(flags),
        content_size=content_size,
        dict_id=dict_id,
        rsu_ids=rsu_ids,
        ops=ops,
        prefix_size=prefix_size,
        payload_offset=pos,
        payload_size=end - pos,
        frame_size=size,
    )

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

Format version 2: the **store-backed, tenant-bound frame** written by `SigmaCodec` (version 1 stays
the format of self-contained frames from `sigmalang.compress`)::

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

import enum
import hashlib
import hmac
from dataclasses import dataclass

from sigmalang import _varint
from sigmalang.errors import (
    BadMagicError,
    ChecksumMismatchError,
    CorruptFrameError,
    FrameAuthenticationError,
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
    "encode_store_frame",
    "inspect_frame",
    "tenant_key",
)

MAGIC = b"\xce\xa3"
"""Frame magic: "Σ" in UTF-8."""
FORMAT_VERSION = 1
"""The format version of self-contained frames (`sigmalang.compress`)."""
STORE_FORMAT_VERSION = 2
"""The format version of store-backed, tenant-bound frames (`SigmaCodec`)."""
SUPPORTED_VERSIONS: tuple[int, ...] = (1, 2)
TAG_BYTES = 12
"""Length of a version-2 frame's MAC, bytes (96 bits: a forger needs about 2**95 tries)."""
MAX_CONTEXT_RSUS = 1 << 16
"""Most RSUs a version-2 frame's context may name."""
CHECKSUM_BYTES = 4
"""Length of the trailing BLAKE2b checksum, bytes."""
RSU_ID_BYTES = 16
"""Length of an RSU id (BLAKE2b-128 of the RSU's bytes), bytes."""
_MIN_FRAME = len(MAGIC) + 2 + 1 + CHECKSUM_BYTES  # magic, version, flags, content_size, checksum


class FrameFlags(enum.IntFlag):
    """Bits of the frame's flags byte."""

    NONE = 0
    DICT = 1
    """A trained dictionary id follows the content size."""
    REFS = 2
    """An RSU table and a recipe follow (version 1); context runs follow (version 2)."""
    REF_PREFIX = 4
    """(Version 1) The payload used the referenced RSUs' content as a raw zstd dictionary; (version 2,
    `F_TABLES`) only the dictionary's entropy tables precede the context, not its content."""
    RAW = 8
    """The payload is stored uncompressed."""
    PACKED = 16
    """(Version 2) the context runs are packed: a run's start delta and short length share a varint."""


# Plain-int copies: IntFlag arithmetic is slow on the per-message path.
F_DICT, F_REFS, F_REF_PREFIX, F_RAW, F_PACKED = 1, 2, 4, 8, 16
F_TABLES = F_REF_PREFIX  # version 2's meaning of bit 2
_KNOWN_FLAGS = F_DICT | F_REFS | F_REF_PREFIX | F_RAW


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """Everything a frame's header says, without decompressing it.

    Attributes:
        version: Format version.
        flags: Flag bits.
        content_size: Decoded message length, bytes.
        dict_id: Trained dictionary id, or None.
        rsu_ids: Distinct RSUs referenced, in table order (each 16 bytes).
        ops: Recipe operations as encoded (see the module docstring); empty without REFS.
        prefix_size: Bytes of referenced RSU content used as the raw dictionary (REF_PREFIX), else 0.
        payload_offset: Offset of the payload in the frame, bytes.
        payload_size: Length of the payload, bytes.
        frame_size: Length of the whole frame, bytes.
        context: (Version 2) sequence numbers of the context RSUs in the tenant's store, in order.
    """

    version: int
    flags: FrameFlags
    content_size: int
    dict_id: int | None
    rsu_ids: tuple[bytes, ...]
    ops: tuple[int, ...]
    prefix_size: int
    payload_offset: int
    payload_size: int
    frame_size: int
    context: tuple[int, ...] = ()

    @property
    def glyph_count(self) -> int:
        """Number of RSU references: glyphs of the recipe (version 1) or context RSUs (version 2)."""
        return len(self.context) if self.version >= 2 else sum(op & 1 for op in self.ops)

    @property
    def literal_size(self) -> int:
        """Bytes of the message carried in the payload (before compression)."""
        if self.version >= 2 or not self.flags & F_REFS:
            return self.content_size
        return sum(op >> 1 for op in self.ops if not op & 1)


def checksum(data: bytes | bytearray | memoryview) -> bytes:
    """BLAKE2b with a 4-byte digest (RFC 7693) of `data`."""
    return hashlib.blake2b(data, digest_size=CHECKSUM_BYTES).digest()


def _header(version: int, flags: int, content_size: int, dict_id: int | None, *, refs: bool) -> bytearray:
    """The start every frame version shares: magic, version, flags, content size, dictionary id.

    Raises:
        ValueError: ``dict_id`` is not a non-zero u32.
    """
    if dict_id is not None:
        if not 0 < dict_id < 1 << 32:
            raise ValueError(f"dict_id must be a non-zero u32, got {dict_id}")
        flags |= F_DICT
    if refs:
        flags |= F_REFS
    out = bytearray(MAGIC)
    out.append(version)
    out.append(flags)
    _varint.encode(content_size, out)
    if dict_id is not None:
        out += dict_id.to_bytes(4, "little")
    return out


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
    out = _header(STORE_FORMAT_VERSION, flags, content_size, dict_id, refs=bool(context))
    if context:
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
    out += payload
    out += _tag(out, key)
    return bytes(out)


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
        n_runs, pos = _varint.decode(view, pos, end)
        if not 0 < n_runs <= end - pos:
            raise CorruptFrameError(f"{n_runs} context runs in {end - pos} bytes")
        prev_end = 0
        packed = bool(flags & F_PACKED)
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
    if flags & F_RAW and (flags & F_DICT or end - pos != content_size):
        raise CorruptFrameError("stored payload with a dictionary, or of the wrong size")
    return FrameInfo(
        version=STORE_FORMAT_VERSION,
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


def inspect_frame(frame: bytes | memoryview, *, key: bytes | None = None) -> FrameInfo:
    """Parse and verify a frame's header and checksum (or MAC) without decompressing the payload.

    Args:
        frame: The frame bytes.
        key: The decoding tenant's key (`tenant_key`): a version-2 frame's MAC is verified with it;
            None parses a version-2 header without verifying it (for display only).

    Returns:
        The parsed header.

    Raises:
        TruncatedFrameError: Shorter than the smallest frame or than its fields declare.
        BadMagicError: Does not start with `MAGIC`.
        UnsupportedVersionError: Version is not in `SUPPORTED_VERSIONS`.
        ChecksumMismatchError: The bytes were altered.
        FrameAuthenticationError: A version-2 frame fails its MAC under `key`.
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
    if version == STORE_FORMAT_VERSION:
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

"""The ΣLANG frame, format version 3: what `SigmaCodec` writes (store-backed, tenant-bound, small).

Part of `sigmalang.frame` (re-exported there). Version 2 (`sigmalang._frame_v2`) still decodes; version
3 cuts what every frame pays whatever its content, which on sessions of 60-80 turns was a fifth of the
output::

    offset  size      field
    0       2         magic          CE A3
    2       1         version        3
    3       1         flags          bit 0 DICT     a trained dictionary's id follows
                                     bit 1 CONTEXT  context runs follow
                                     bit 2 TABLES   with DICT or GENERIC, and CONTEXT or BASE: only the
                                                    dictionary's header and entropy tables are used
                                     bit 3 RAW      the coded part is stored, not zstd-compressed
                                     bit 4 PACKED   set with CONTEXT (runs are always packed)
                                     bit 5 GENERIC  the generic dictionary shipped with ΣLANG (no id)
                                     bit 6 BASE     coded against a base message (fields below)
                                     bit 7 BARE     the payload is zstd's single compressed block,
                                                    its frame and block headers implied (below)
    4       varint    content_size   length of the decoded message, bytes
            4         dict_id        if DICT: the trained dictionary's id (u32, never 0)
            varint    base           if BASE: sequence number of the base message's *manifest* RSU, the
                                     list of the base message's RSUs (`sigmalang._base`)
            varint    middle_size    if BASE: bytes between the base prefix and suffix (the message
                                     starts with content_size - middle_size - base_suffix bytes of
                                     the base: coding the middle, usually short, saves a byte)
            varint    base_suffix    if BASE: the message ends with this many bytes of the base's end
            ...       runs           if CONTEXT: packed runs of further RSUs (as version 2, PACKED)
    ...     ...       payload        the message without its base prefix and suffix: a magic-less zstd
                                     frame without checksum, size or dictionary-id fields, whose
                                     dictionary is the context runs' RSUs then the base message,
                                     concatenated, after the dictionary's content (DICT, GENERIC) or
                                     its header and tables alone (TABLES); stored as is if RAW.
                                     With BARE, the zstd frame's first byte (frame header descriptor:
                                     0x00, no size, checksum or dictionary id, not single-segment) and
                                     its block header (last block, compressed, size) are left out:
                                     the payload is the window descriptor byte and the block's content
    end-12  4         content_hash   XXH3-64 of the whole decoded message, its low 32 bits, LE
    end-8   8         tag            keyed BLAKE2b with an 8-byte digest (RFC 7693) of every byte
                                     before it, under the tenant's key (`tenant_key`)

What each check is for. The **tag** is verified first, before the store is touched: an altered,
truncated or forged frame, or one made for another tenant or by another service, fails with
`FrameAuthenticationError`. 64 bits: a frame only ever decodes against its caller's own store, so
a forged tag could gain nothing a valid frame of the same tenant does not, and a random corruption
passes with probability 2**-64. The **content hash** is what catches a *context* that changed under
the same sequence numbers (a store reset or restored from elsewhere while the secret was kept): the
MAC cannot, since the frame's bytes are intact; zstd's own checksum (XXH64, 4 bytes in version 2)
would cover only the coded part, not the base prefix and suffix copied around it, so it is dropped
for XXH3-64 over the whole message (`xxhash`; 9.6 GB/s here, where zlib's CRC-32 ran at 1.0-1.7 GB/s
and took a fifth of the decoding time of 22 KB turns, and BLAKE2b 0.3 GB/s). Together 12 bytes,
where version 2 spent 16 (a 12-byte tag and the zstd checksum).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NamedTuple

import xxhash

from sigmalang import _varint
from sigmalang._frame_header import (
    F_BARE,
    F_BASE,
    F_DICT,
    F_GENERIC,
    F_PACKED,
    F_RAW,
    F_REFS,
    F_TABLES,
    MAGIC,
    FrameFlags,
    FrameInfo,
    _header,
)
from sigmalang._frame_v2 import decode_runs, encode_runs
from sigmalang.errors import CorruptFrameError, FrameAuthenticationError, TruncatedFrameError

V3 = 3
"""This layout's version byte."""
MAC_BYTES = 8
"""Length of a version-3 frame's tag (keyed BLAKE2b), bytes."""
HASH_BYTES = 4
"""Length of a version-3 frame's content hash, bytes."""
TRAILER_BYTES = HASH_BYTES + MAC_BYTES
"""Bytes after the payload: content hash and tag."""
_KNOWN = F_DICT | F_REFS | F_TABLES | F_RAW | F_PACKED | F_GENERIC | F_BASE | F_BARE


def content_hash(data: bytes | bytearray | memoryview) -> int:
    """The content check of a version-3 frame: the low 32 bits of XXH3-64 (seed 0) of `data`."""
    return xxhash.xxh3_64_intdigest(data) & 0xFFFFFFFF


def _mac(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    return hashlib.blake2b(data, key=key, digest_size=MAC_BYTES).digest()


def encode_frame_v3(
    *,
    key: bytes,
    content_size: int,
    content_hash: int,
    payload: bytes,
    raw: bool,
    dict_id: int | None,
    generic: bool,
    tables: bool,
    context: tuple[int, ...] | list[int],
    base: int | None = None,
    base_prefix: int = 0,
    base_suffix: int = 0,
    bare: bool = False,
) -> bytes:
    """Assemble a version-3 frame (layout in the module docstring) and tag it with `key`.

    Args:
        key: The tenant's MAC key (`tenant_key`).
        content_size: Decoded length, bytes.
        content_hash: The decoded message's `content_hash`.
        payload: The zstd payload of the message without base prefix and suffix, or those bytes if `raw`.
        raw: The payload is stored.
        dict_id: The trained dictionary used, or None.
        generic: The generic dictionary was used (no id is written; excludes `dict_id`).
        tables: Only the dictionary's entropy tables were used (needs a dictionary and a context).
        context: Sequence numbers of the context RSUs (besides the base), in dictionary order.
        base: Sequence number of the base message's manifest RSU, or None.
        base_prefix: Leading bytes taken from the base, bytes.
        base_suffix: Trailing bytes taken from the base's end, bytes.
        bare: `payload` is zstd's single block without frame and block headers (`_zstd_block.bare_block`).

    Raises:
        ValueError: An argument is out of range or the flags contradict each other.
    """
    if generic and dict_id is not None:
        raise ValueError("GENERIC excludes a dictionary id")
    if tables and (not (generic or dict_id is not None) or not (context or base is not None) or raw):
        raise ValueError("TABLES needs a dictionary, a context and a compressed payload")
    if raw and (generic or dict_id is not None or bare):
        raise ValueError("a stored payload uses no dictionary")
    if base is None and (base_prefix or base_suffix):
        raise ValueError("a base prefix or suffix needs a base")
    if base_prefix + base_suffix > content_size or base_prefix < 0 or base_suffix < 0:
        raise ValueError("base prefix and suffix exceed the content")
    flags = (F_RAW if raw else 0) | (F_TABLES if tables else 0) | (F_PACKED if context else 0)
    flags |= (F_GENERIC if generic else 0) | (F_BASE if base is not None else 0) | (F_BARE if bare else 0)
    out = _header(V3, flags, content_size, dict_id, refs=bool(context))
    if base is not None:
        if base <= 0:
            raise ValueError(f"sequence numbers start at 1, got {base}")
        _varint.encode(base, out)
        _varint.encode(content_size - base_prefix - base_suffix, out)
        _varint.encode(base_suffix, out)
    if context:
        encode_runs(context, out)
    out += payload
    out += (content_hash & 0xFFFFFFFF).to_bytes(HASH_BYTES, "little")
    out += _mac(out, key)
    return bytes(out)


class V3Header(NamedTuple):
    """A version-3 frame's header as `parse_v3` reads it: `FrameInfo`'s fields of this version.

    A plain tuple, for the decoder's per-frame path (a frozen `FrameInfo` and its `FrameFlags` cost 4 µs
    a frame, a twentieth of decoding a 12 KB turn); the meanings are `FrameInfo`'s.
    """

    flags: int
    content_size: int
    dict_id: int | None
    payload_offset: int
    payload_size: int
    context: list[int]
    """The context runs' sequence numbers, then the base's manifest (if BASE)."""
    base: int | None
    base_prefix: int
    base_suffix: int
    content_hash: int
    frame_size: int
    version: int = V3


def parse_v3(view: memoryview, key: bytes | None) -> V3Header:
    """Parse and verify a version-3 frame (`view` starts with the magic and version 3).

    Args:
        view: The whole frame.
        key: The tenant's key: the tag is verified with it first; None skips it (display only).

    Raises:
        TruncatedFrameError: Shorter than its fields declare.
        FrameAuthenticationError: The tag fails under `key`.
        CorruptFrameError: Inconsistent flags or fields.
    """
    size = len(view)
    if size < len(MAGIC) + 3 + TRAILER_BYTES:
        raise TruncatedFrameError(size=size, needed=len(MAGIC) + 3 + TRAILER_BYTES)
    end = size - TRAILER_BYTES
    tag_at = size - MAC_BYTES
    if key is not None and not hmac.compare_digest(bytes(view[tag_at:]), _mac(view[:tag_at], key)):
        raise FrameAuthenticationError()
    flags = view[len(MAGIC) + 1]
    if flags & ~_KNOWN:
        raise CorruptFrameError(f"unknown flag bits {flags:#04x}")
    if bool(flags & F_PACKED) != bool(flags & F_REFS):
        raise CorruptFrameError("CONTEXT without PACKED, or PACKED without CONTEXT")
    if flags & F_DICT and flags & F_GENERIC:
        raise CorruptFrameError("DICT and GENERIC flags together")
    if flags & F_RAW and flags & (F_DICT | F_GENERIC | F_TABLES | F_BARE):
        raise CorruptFrameError("stored payload with a dictionary")
    if flags & F_TABLES and not (flags & (F_DICT | F_GENERIC) and flags & (F_REFS | F_BASE)):
        raise CorruptFrameError("TABLES flag without a dictionary and a context")
    pos = len(MAGIC) + 2
    content_size, pos = _varint.decode(view, pos, end)
    dict_id: int | None = None
    if flags & F_DICT:
        if pos + 4 > end:
            raise TruncatedFrameError(size=size, needed=pos + 4 + TRAILER_BYTES)
        dict_id = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4
        if dict_id == 0:
            raise CorruptFrameError("dictionary id 0")
    base: int | None = None
    prefix = suffix = 0
    if flags & F_BASE:
        base, pos = _varint.decode(view, pos, end)
        middle, pos = _varint.decode(view, pos, end)
        suffix, pos = _varint.decode(view, pos, end)
        if base <= 0 or middle + suffix > content_size:
            raise CorruptFrameError(f"base {base} with middle {middle} and suffix {suffix} out of range")
        prefix = content_size - middle - suffix
    context: list[int] = []
    if flags & F_REFS:
        context, pos = decode_runs(view, pos, end, packed=True)
    if flags & F_RAW and end - pos != content_size - prefix - suffix:
        raise CorruptFrameError("stored payload of the wrong size")
    if base is not None:
        context.append(base)
    return V3Header(
        flags,
        content_size,
        dict_id,
        pos,
        end - pos,
        context,
        base,
        prefix,
        suffix,
        int.from_bytes(view[end : end + HASH_BYTES], "little"),
        size,
    )


def _inspect_v3(view: memoryview, key: bytes | None) -> FrameInfo:
    header = parse_v3(view, key)
    return FrameInfo(
        version=V3,
        flags=FrameFlags(header.flags),
        content_size=header.content_size,
        dict_id=header.dict_id,
        rsu_ids=(),
        ops=(),
        prefix_size=0,
        payload_offset=header.payload_offset,
        payload_size=header.payload_size,
        frame_size=header.frame_size,
        context=tuple(header.context),
        base=header.base,
        base_prefix=header.base_prefix,
        base_suffix=header.base_suffix,
        content_hash=header.content_hash,
    )

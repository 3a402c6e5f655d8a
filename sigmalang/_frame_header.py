"""What every ΣLANG frame version shares: magic, versions, flag bits, first fields, the parsed header.

The parsed header is :class:`FrameInfo`. Part of `sigmalang.frame` (re-exported there); version 1's
layout is in that module's docstring, version 2's in `sigmalang._frame_v2`, version 3's in
`sigmalang._frame_v3`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sigmalang import _varint

MAGIC = b"\xce\xa3"
"""Frame magic: "Σ" in UTF-8."""
FORMAT_VERSION = 1
"""The format version of self-contained frames (`sigmalang.compress`)."""
STORE_FORMAT_VERSION = 3
"""The format version of the store-backed, tenant-bound frames `SigmaCodec` writes (2 still decodes)."""
STORE_VERSIONS: tuple[int, ...] = (2, 3)
"""Format versions of store-backed frames (decoded by `SigmaCodec` with the tenant's store)."""
SUPPORTED_VERSIONS: tuple[int, ...] = (1, 2, 3)
RSU_ID_BYTES = 16
"""Length of an RSU id (BLAKE2b-128 of the RSU's bytes), bytes."""


class FrameFlags(enum.IntFlag):
    """Bits of the frame's flags byte."""

    NONE = 0
    DICT = 1
    """A trained dictionary id follows the content size."""
    REFS = 2
    """An RSU table and a recipe follow (version 1); context runs follow (versions 2-3)."""
    REF_PREFIX = 4
    """(Version 1) The payload used the referenced RSUs' content as a raw zstd dictionary; (versions 2-3,
    `F_TABLES`) only the dictionary's entropy tables precede the context, not its content."""
    RAW = 8
    """The payload is stored uncompressed."""
    PACKED = 16
    """(Versions 2-3) the context runs are packed: a run's start delta and short length share a varint."""
    GENERIC = 32
    """(Version 3) the generic dictionary shipped with ΣLANG is used (no dictionary id follows)."""
    BASE = 64
    """(Version 3) the message is coded against a base message (its manifest RSU, prefix, suffix)."""
    BARE = 128
    """(Version 3) the zstd payload is one compressed block whose frame and block headers are implied."""


# Plain-int copies: IntFlag arithmetic is slow on the per-message path.
F_DICT, F_REFS, F_REF_PREFIX, F_RAW, F_PACKED, F_GENERIC, F_BASE, F_BARE = 1, 2, 4, 8, 16, 32, 64, 128
F_TABLES = F_REF_PREFIX  # the meaning of bit 2 in versions 2-3


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """Everything a frame's header says, without decompressing it.

    Attributes:
        version: Format version.
        flags: Flag bits.
        content_size: Decoded message length, bytes.
        dict_id: Trained dictionary id, or None.
        rsu_ids: Distinct RSUs referenced, in table order (each 16 bytes).
        ops: Recipe operations as encoded (see `sigmalang.frame`); empty without REFS.
        prefix_size: Bytes of referenced RSU content used as the raw dictionary (REF_PREFIX), else 0.
        payload_offset: Offset of the payload in the frame, bytes.
        payload_size: Length of the payload, bytes.
        frame_size: Length of the whole frame, bytes.
        context: (Versions 2-3) sequence numbers of the context RSUs in the tenant's store, in order;
            for a version-3 frame with a base, followed by the base's manifest RSU (and, from
            `SigmaCodec.inspect`, the base message's RSUs, which the manifest lists).
        base: (Version 3) sequence number of the base message's manifest RSU, or None.
        base_prefix: (Version 3) leading bytes copied from the base message, bytes.
        base_suffix: (Version 3) trailing bytes copied from the base message, bytes.
        content_hash: (Version 3) the decoded message's content hash (`content_hash`), or None.
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
    base: int | None = None
    base_prefix: int = 0
    base_suffix: int = 0
    content_hash: int | None = None

    @property
    def glyph_count(self) -> int:
        """Number of RSU references: glyphs of the recipe (version 1) or context RSUs (versions 2-3)."""
        if self.version >= 2:
            return len(self.context)
        return sum(op & 1 for op in self.ops)

    @property
    def literal_size(self) -> int:
        """Bytes of the message carried in the payload (before compression)."""
        if self.version >= 3:
            return self.content_size - self.base_prefix - self.base_suffix
        if self.version >= 2 or not self.flags & F_REFS:
            return self.content_size
        return sum(op >> 1 for op in self.ops if not op & 1)


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

"""A frame's single zstd block: its headers left implied, and decoded right after its context.

**The bare block** (`bare_block`, `dress_block`). A magic-less frame of `sigmalang._zstd.compress` with
a context has no content size, checksum or dictionary id, and a message of at most 128 KiB is usually
one last, compressed block: its frame header descriptor and block header follow from the block's size,
so a version-3 frame stores only the window descriptor and the block's content (frame flag BARE).

**Decoding one block after its context** (`decompress_after`). A version-3 frame's payload is usually
one zstd block (`bare_block`). Loading "dictionary, then context" as a new dictionary for each frame
rebuilt the dictionary's Huffman and FSE tables every time; instead the block is decoded with zstd's
block API after a decoding context begun with the dictionary's `ZSTD_DDict` (built once per
dictionary, shared by threads) and the context inserted as history: the same bytes at the same
distances, 2.3-3x less time per frame on the benchmark draws (`docs/sigmalang.md`, round 8).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import zstandard

from sigmalang._libzstd import contexts, ffi, lib, ok
from sigmalang.errors import CorruptFrameError

_ddicts: dict[bytes, tuple[Any, Any]] = {}  # dictionary bytes -> (its buffer, its ZSTD_DDict)
_ddicts_lock = threading.Lock()
_MAX_DDICTS = 64
_WINDOW_LOG_MAX = 27  # the streaming decoder's default limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT)
_BLOCK_MAX = 1 << 17  # ZSTD_BLOCKSIZE_MAX
# zstd 1.5.6 marked its block API deprecated (still exported by the pinned zstandard's libzstd); a libzstd
# without it decodes every frame through a dictionary built for the frame instead.
BLOCK_API: bool = hasattr(lib, "ZSTD_decompressBlock") and hasattr(lib, "ZSTD_insertBlock")


def _ddict(trained: bytes) -> Any:
    """The ZSTD_DDict of a dictionary (zstd format): built once, shared by every thread.

    A DDict is read-only once built (zstd references its entropy tables from a decoding context), so
    one serves all threads; it references `trained`'s bytes, kept alive with it.

    Raises:
        zstandard.ZstdError: zstd refuses the dictionary.
    """
    found = _ddicts.get(trained)
    if found is None:
        buffer = ffi.from_buffer(trained)
        made = lib.ZSTD_createDDict_advanced(
            buffer, len(trained), lib.ZSTD_dlm_byRef, lib.ZSTD_dct_fullDict, lib.ZSTD_defaultCMem
        )
        if made == ffi.NULL:
            raise zstandard.ZstdError("dictionary: zstd refuses the frame's dictionary")
        found = (buffer, ffi.gc(made, lib.ZSTD_freeDDict))
        with _ddicts_lock:
            if len(_ddicts) >= _MAX_DDICTS:
                _ddicts.clear()
            _ddicts[trained] = found
    return found[1]


def decompress_after(
    bare: bytes | memoryview, size: int, parts: Sequence[bytes | memoryview], trained: bytes | None
) -> memoryview:
    """Decode a `bare_block` payload whose zstd dictionary is `trained` (or none) then `parts` joined.

    The same bytes as `sigmalang._zstd.decompress` of the dressed payload with
    ``context_dict(parts, trained)`` (whole dictionary or its header alone: offsets never reach before
    the context when only the header was used), without building the dictionary's entropy tables again
    for every frame: they come from the dictionary's `ZSTD_DDict`, made once (zstd's block API,
    ``zstd.h``: a decoding context begun with the DDict, the context inserted as an uncompressed block
    of its history (``ZSTD_insertBlock``), then the block decoded right after it,
    ``ZSTD_decompressBlock``). The context is joined once, into the buffer the block is decoded into.

    Args:
        bare: The window descriptor byte and the block's content (`bare_block`).
        size: The exact decoded length, bytes (1 to 128 KiB).
        parts: The frame's context RSUs, in order (at least `context_floor` bytes: the caller checks).
        trained: The frame's dictionary (zstd format), or None (the context is a raw-content one).

    Returns:
        A view of the context followed by the `size` decoded bytes (one buffer).

    Raises:
        CorruptFrameError: The window is above what the streaming decoder accepts, the block does not
            fit it, or zstd rejects the block or it does not decode to `size` bytes.
    """
    if len(bare) < 2:
        raise CorruptFrameError("zstd payload does not decode: a bare block without content")
    descriptor = bare[0]
    window_log = 10 + (descriptor >> 3)
    window = (1 << window_log) + ((1 << window_log) >> 3) * (descriptor & 7)
    if window_log > _WINDOW_LOG_MAX:
        raise CorruptFrameError("zstd payload does not decode: Frame requires too much memory for decoding")
    if not 0 < size <= min(window, _BLOCK_MAX):
        raise CorruptFrameError(f"a zstd block of {size} bytes in a window of {window}")
    libzstd, dctx = lib, contexts.dctx  # (a streaming decode resets it before use: the state left is moot)
    if trained is not None:
        ok(libzstd.ZSTD_decompressBegin_usingDDict(dctx, _ddict(trained)), "begin")
    else:
        ok(libzstd.ZSTD_decompressBegin(dctx), "begin")
    whole = bytearray().join([*parts, bytes(size)])  # the context, then room for the block's output
    held = len(whole) - size
    out = ffi.from_buffer(whole)
    libzstd.ZSTD_insertBlock(dctx, out, held)  # (returns the size given)
    block = ffi.from_buffer(bare)
    produced = libzstd.ZSTD_decompressBlock(dctx, out + held, size, block + 1, len(bare) - 1)
    if libzstd.ZSTD_isError(produced):
        name = ffi.string(libzstd.ZSTD_getErrorName(produced)).decode()
        raise CorruptFrameError(f"zstd payload does not decode: {name}")
    if produced != size:
        raise CorruptFrameError(f"payload decodes to {produced} bytes, the recipe needs {size}")
    return memoryview(whole)


_BARE_BLOCK = 0b101  # block header bits: last block, type 2 (compressed); RFC 8878 section 3.1.1.2


def bare_block(payload: bytes) -> bytes | None:
    """A `compress` payload without its implied headers, or None when it is not one compressed block.

    A magic-less frame from `sigmalang._zstd.compress` starts with the frame header descriptor 0x00 (no
    content size, checksum or dictionary id; not single-segment), then the window descriptor; a message
    of at most 128 KiB is usually one last, compressed block. Returns the window descriptor and the
    block content.
    """
    if len(payload) < 5 or payload[0] != 0:
        return None
    header = int.from_bytes(payload[2:5], "little")
    if header & 7 != _BARE_BLOCK or header >> 3 != len(payload) - 5:
        return None
    return payload[1:2] + payload[5:]


def dress_block(bare: bytes | memoryview) -> bytes:
    """Inverse of `bare_block`.

    Raises:
        CorruptFrameError: Empty, or a block larger than zstd's 128 KiB.
    """
    size = len(bare) - 1
    if not 0 <= size <= 1 << 17:
        raise CorruptFrameError(f"a bare zstd block of {size} bytes")
    view = memoryview(bare)
    return b"".join((b"\x00", view[:1], (size << 3 | _BARE_BLOCK).to_bytes(3, "little"), view[1:]))

"""zstd frames of ΣLANG: magic-less, with a trained dictionary or a frame's context as dictionary.

`compress` and `decompress` code one magic-less zstd frame without content size, checksum or
dictionary-id fields (all implied by the ΣLANG frame around it). With a trained dictionary, or none,
they go through python-zstandard's compressor and decompressor objects, cached per thread (zstd
contexts are not thread-safe) and per level and dictionary id. With a frame's context (`ContextDict`:
the context RSUs joined after a trained dictionary's content or header, or alone as a raw-content
dictionary, `context_dict`), new for every message, they go through libzstd's own calls on this
thread's reused contexts, the dictionary referenced, not copied (`sigmalang._libzstd`: why, and the
match finder's parameters). One block after its context is decoded by `sigmalang._zstd_block`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zstandard

from sigmalang._dict_header import dictionary_header
from sigmalang._libzstd import (
    FRAME_FIELDS,
    LEVEL_SEARCH,
    RESET,
    Search,
    context_parameters,
    contexts,
    ffi,
    lib,
    ok,
)
from sigmalang.errors import CorruptFrameError

MIN_RAW_DICT = 8  # zstd rejects raw-content dictionaries shorter than this
_local = threading.local()
_alloc: Any = ffi.new_allocator(should_clear_after_alloc=False)  # output buffers are written, not read
_D_FORMAT: int = lib.ZSTD_d_format
_F_MAGICLESS: int = lib.ZSTD_f_zstd1_magicless


@dataclass(frozen=True, slots=True)
class ContextDict:
    """A frame's zstd dictionary: its bytes and zstd's dictionary type (raw content or full)."""

    content: bytes
    dict_type: int


def _compress_with(data: bytes, level: int, zdict: ContextDict, search: Search) -> bytes:
    """`data` as one magic-less zstd frame (no size, checksum or dictionary-id fields) with `zdict`.

    One `ZSTD_compress2` call (= ``ZSTD_compressStream2`` with ``ZSTD_e_end`` on the whole input, the
    source size pledged: the same bytes) on this thread's reused context, the dictionary referenced.
    """
    libzstd, cctx = lib, contexts.cctx
    libzstd.ZSTD_CCtx_reset(cctx, RESET)  # (cannot fail on a valid context)
    set_parameter, is_error = libzstd.ZSTD_CCtx_setParameter, libzstd.ZSTD_isError
    for param, value in (*context_parameters(level, len(data), len(zdict.content), search), *FRAME_FIELDS):
        code = set_parameter(cctx, param, value)
        if is_error(code):
            ok(code, "parameter")
    content = ffi.from_buffer(zdict.content)
    size, kind = len(zdict.content), zdict.dict_type
    ok(
        libzstd.ZSTD_CCtx_loadDictionary_advanced(cctx, content, size, libzstd.ZSTD_dlm_byRef, kind),
        "dictionary",
    )
    capacity = libzstd.ZSTD_compressBound(len(data))
    out = _alloc("char[]", capacity)
    try:
        written = ok(
            libzstd.ZSTD_compress2(cctx, out, capacity, ffi.from_buffer(data), len(data)), "compress"
        )
    finally:
        libzstd.ZSTD_CCtx_reset(cctx, RESET)  # forget the borrowed content
        del content
    return _strip_magic(ffi.buffer(out, written))  # (slicing the CFFI buffer: the one copy)


def _decompress_with(payload: bytes, size: int, zdict: ContextDict) -> bytes:
    """One magic-less frame decoded against `zdict`: at most `size` bytes (CorruptFrameError if not one)."""
    libzstd, local = lib, contexts
    dctx = local.dctx
    libzstd.ZSTD_DCtx_reset(dctx, RESET)  # (cannot fail on a valid context)
    ok(libzstd.ZSTD_DCtx_setParameter(dctx, _D_FORMAT, _F_MAGICLESS), "format")
    content = ffi.from_buffer(zdict.content)
    in_buffer, out_buffer = local.in_buffer, local.out_buffer
    try:
        loaded = libzstd.ZSTD_DCtx_loadDictionary_advanced(
            dctx, content, len(zdict.content), libzstd.ZSTD_dlm_byRef, zdict.dict_type
        )
        ok(loaded, "dictionary")
        capacity = max(size, 1)
        out = _alloc("char[]", capacity)
        source = ffi.from_buffer(payload)
        out_buffer.dst, out_buffer.size, out_buffer.pos = out, capacity, 0
        in_buffer.src, in_buffer.size, in_buffer.pos = source, len(payload), 0
        left = libzstd.ZSTD_decompressStream(dctx, out_buffer, in_buffer)
        consumed, produced = in_buffer.pos, out_buffer.pos
    finally:
        libzstd.ZSTD_DCtx_reset(dctx, RESET)
        out_buffer.dst = in_buffer.src = ffi.NULL  # borrowed only for this call
        del content
    if libzstd.ZSTD_isError(left):
        name = ffi.string(libzstd.ZSTD_getErrorName(left)).decode()
        raise CorruptFrameError(f"zstd payload does not decode: {name}")
    if left or consumed != len(payload):
        raise CorruptFrameError("zstd payload is not exactly one whole frame of the recipe's size")
    return ffi.buffer(out, produced)[:]  # type: ignore[no-any-return]


MAX_CACHED = 256
"""Most zstd objects a thread keeps (dictionaries, compressors and decompressors by dictionary id and
level); the next one past it empties the thread's cache, as `_zstd_block` bounds its DDicts. Each
dictionary's objects hold a copy of it (~80-105 KiB resident a 32 KiB dictionary, measured when fetched
dictionaries became a bounded cache), and dictionaries come and go (automatic retraining, fetched
ones evicted): without a bound a long-lived worker thread kept every one it ever used."""


def _cache() -> dict[tuple[object, ...], object]:
    cache: dict[tuple[object, ...], object] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = {}
        _local.cache = cache
    return cache


def _remember(cache: dict[tuple[object, ...], object], key: tuple[object, ...], value: object) -> None:
    """Cache `value` under `key` in this thread's `cache`, emptied first when it holds `MAX_CACHED`."""
    if len(cache) >= MAX_CACHED:
        cache.clear()
    cache[key] = value


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878 section 3.1.1; a magic-less frame is a frame without it


def _compressor(level: int, zdict: zstandard.ZstdCompressionDict | None) -> zstandard.ZstdCompressor:
    # Parameters are left to zstd's level tables so that they adapt to each input's size
    # (small inputs get small tables; an explicit parameter set would not).
    return zstandard.ZstdCompressor(
        level=level, dict_data=zdict, write_checksum=False, write_content_size=False, write_dict_id=False
    )


def _strip_magic(frame: bytes) -> bytes:
    """`frame` (bytes, or a CFFI buffer: sliced, it gives bytes) without its magic number."""
    if frame[:4] != _ZSTD_MAGIC:  # pragma: no cover - zstd always writes it in FORMAT_ZSTD1
        raise AssertionError("zstd frame without magic")
    return frame[4:]


def trained_dict(data: bytes, dict_id: int) -> zstandard.ZstdCompressionDict:
    """Return the (per-thread cached) zstd dictionary object for a trained dictionary."""
    key = ("dict", dict_id)
    cache = _cache()
    found = cache.get(key)
    if isinstance(found, zstandard.ZstdCompressionDict):
        return found
    zdict = zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_AUTO)
    _remember(cache, key, zdict)
    return zdict


def context_floor(trained: bytes | None, *, tables: bool = False) -> int:
    """The shortest context, bytes, that makes a frame's zstd dictionary with `trained` (`context_dict`).

    A raw-content dictionary needs `MIN_RAW_DICT` bytes; with only a dictionary's header (`tables`), the
    content after it must reach the header's largest repeat offset (zstd refuses the dictionary
    otherwise); after a whole dictionary's content, any context will do.
    """
    if trained is None:
        return MIN_RAW_DICT
    if tables:
        return max(dictionary_header(trained)[1], MIN_RAW_DICT)
    return 0


def context_dict(
    parts: Sequence[bytes | memoryview], trained: bytes | None, *, tables: bool = False
) -> tuple[ContextDict | None, memoryview]:
    """The zstd dictionary of a version-2/3 frame whose context is `parts` joined, built in one copy.

    The context (the context RSUs) is a raw-content dictionary, or is appended to a dictionary's
    content so that its entropy tables apply too (zstd dictionary format, RFC 8878 section 5: magic,
    id, entropy tables, then content of any length). With `tables`, it is appended to the dictionary's
    header alone (`sigmalang._dict_header`): its entropy tables without the cost of its content.

    Returns:
        The dictionary, or None when the context is too short for one; and a view of the joined
        context (inside the dictionary's bytes).
    """
    head = b""
    if trained is not None:
        head = dictionary_header(trained)[0] if tables else trained
    joined = b"".join([head, *parts])
    content = memoryview(joined)[len(head) :]
    if len(content) < context_floor(trained, tables=tables):
        return None, content
    kind = zstandard.DICT_TYPE_RAWCONTENT if trained is None else zstandard.DICT_TYPE_FULLDICT
    return ContextDict(joined, kind), content


def compress(
    data: bytes,
    level: int,
    zdict: zstandard.ZstdCompressionDict | ContextDict | None,
    key: object,
    search: Search = LEVEL_SEARCH,
) -> bytes:
    """Compress `data` into a magic-less zstd frame without size, checksum or dictionary-id fields.

    Args:
        data: Bytes to compress.
        level: zstd level.
        zdict: Dictionary (a frame's context, `context_dict`, or a trained one), or None.
        key: Cache key naming `zdict` (a trained dictionary id); None disables caching (raw dicts).
        search: With a frame's context (`ContextDict`) at a level that searches hash chains, how hard
            to search it (`Search`); ignored otherwise.

    Raises:
        zstandard.ZstdError: zstd refuses a parameter or the dictionary.
    """
    if isinstance(zdict, ContextDict):
        return _compress_with(data, level, zdict, search)
    if zdict is None or key is not None:
        cache = _cache()
        ckey = ("c", level, key if zdict is not None else None)
        found = cache.get(ckey)
        if not isinstance(found, zstandard.ZstdCompressor):
            found = _compressor(level, zdict)
            _remember(cache, ckey, found)
        return _strip_magic(found.compress(data))
    return _strip_magic(_compressor(level, zdict).compress(data))


def decompress(
    payload: bytes, size: int, zdict: zstandard.ZstdCompressionDict | ContextDict | None, key: object
) -> bytes:
    """Inverse of `compress`; `size` is the exact expected output length in bytes.

    Raises:
        CorruptFrameError: zstd rejects the payload or it does not decode to `size` bytes.
    """
    if isinstance(zdict, ContextDict):
        if size == 0 and not payload:
            return b""
        out = _decompress_with(payload, size, zdict)
        if len(out) != size:
            raise CorruptFrameError(f"payload decodes to {len(out)} bytes, the recipe needs {size}")
        return out
    if zdict is None or key is not None:
        cache = _cache()
        dkey = ("d", key if zdict is not None else None)
        found = cache.get(dkey)
        if not isinstance(found, zstandard.ZstdDecompressor):
            found = zstandard.ZstdDecompressor(dict_data=zdict, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
            _remember(cache, dkey, found)
        decompressor = found
    else:
        decompressor = zstandard.ZstdDecompressor(dict_data=zdict, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
    if size == 0 and not payload:
        return b""
    try:
        out = decompressor.decompress(payload, max_output_size=max(size, 1))
    except zstandard.ZstdError as exc:
        raise CorruptFrameError(f"zstd payload does not decode: {exc}") from exc
    if len(out) != size:
        raise CorruptFrameError(f"payload decodes to {len(out)} bytes, the recipe needs {size}")
    return out

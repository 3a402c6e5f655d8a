"""zstd plumbing: magic-less frames, per-thread cached (de)compressors, raw-content dictionaries.

zstd contexts are not thread-safe, so compressors are cached per thread.
"""

from __future__ import annotations

import threading

import zstandard

from sigmalang._dict_header import dictionary_header
from sigmalang.errors import CorruptFrameError

MIN_RAW_DICT = 8  # zstd rejects raw-content dictionaries shorter than this
_local = threading.local()


def _cache() -> dict[tuple[object, ...], object]:
    cache: dict[tuple[object, ...], object] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = {}
        _local.cache = cache
    return cache


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878 section 3.1.1; a magic-less frame is a frame without it


def _compressor(level: int, zdict: zstandard.ZstdCompressionDict | None) -> zstandard.ZstdCompressor:
    # Parameters are left to zstd's level tables so that they adapt to each input's size
    # (small inputs get small tables; an explicit parameter set would not).
    return zstandard.ZstdCompressor(
        level=level, dict_data=zdict, write_checksum=False, write_content_size=False, write_dict_id=False
    )


def _strip_magic(frame: bytes) -> bytes:
    if frame[:4] != _ZSTD_MAGIC:  # pragma: no cover - zstd always writes it in FORMAT_ZSTD1
        raise AssertionError("zstd frame without magic")
    return frame[4:]


_BARE_BLOCK = 0b101  # block header bits: last block, type 2 (compressed); RFC 8878 section 3.1.1.2


def bare_block(payload: bytes) -> bytes | None:
    """A `compress` payload without its implied headers, or None when it is not one compressed block.

    A magic-less frame from `compress` starts with the frame header descriptor 0x00 (no content size,
    checksum or dictionary id; not single-segment), then the window descriptor; a message of at most
    128 KiB is usually one last, compressed block. Returns the window descriptor and the block content.
    """
    if len(payload) < 5 or payload[0] != 0:
        return None
    header = int.from_bytes(payload[2:5], "little")
    if header & 7 != _BARE_BLOCK or header >> 3 != len(payload) - 5:
        return None
    return payload[1:2] + payload[5:]


def dress_block(bare: bytes) -> bytes:
    """Inverse of `bare_block`.

    Raises:
        CorruptFrameError: Empty, or a block larger than zstd's 128 KiB.
    """
    size = len(bare) - 1
    if not 0 <= size <= 1 << 17:
        raise CorruptFrameError(f"a bare zstd block of {size} bytes")
    view = memoryview(bare)
    return b"".join((b"\x00", view[:1], (size << 3 | _BARE_BLOCK).to_bytes(3, "little"), view[1:]))


def trained_dict(data: bytes, dict_id: int) -> zstandard.ZstdCompressionDict:
    """Return the (per-thread cached) zstd dictionary object for a trained dictionary."""
    key = ("dict", dict_id)
    cache = _cache()
    found = cache.get(key)
    if isinstance(found, zstandard.ZstdCompressionDict):
        return found
    zdict = zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_AUTO)
    cache[key] = zdict
    return zdict


def raw_dict(content: bytes) -> zstandard.ZstdCompressionDict | None:
    """A raw-content dictionary (zstd "prefix"), or None when `content` is too short to be one."""
    if len(content) < MIN_RAW_DICT:
        return None
    return zstandard.ZstdCompressionDict(content, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def context_dict(
    content: bytes, trained: bytes | None, *, tables: bool = False
) -> zstandard.ZstdCompressionDict | None:
    """The zstd dictionary of a version-2 frame, or None when `content` is too short for one.

    `content` (the context RSUs) is a raw-content dictionary, or is appended to a dictionary's
    content so that its entropy tables apply too (zstd dictionary format, RFC 8878 section 5: magic,
    id, entropy tables, then content of any length). With `tables`, it is appended to the dictionary's
    header alone (`sigmalang._dict_header`): its entropy tables without the cost of its content.
    """
    if trained is None:
        return raw_dict(content)
    if tables:
        header, min_content = dictionary_header(trained)
        if len(content) < max(min_content, MIN_RAW_DICT):
            return None
        return zstandard.ZstdCompressionDict(header + content, dict_type=zstandard.DICT_TYPE_FULLDICT)
    return zstandard.ZstdCompressionDict(trained + content, dict_type=zstandard.DICT_TYPE_FULLDICT)


def compress(data: bytes, level: int, zdict: zstandard.ZstdCompressionDict | None, key: object) -> bytes:
    """Compress `data` into a magic-less zstd frame without size, checksum or dictionary-id fields.

    Args:
        data: Bytes to compress.
        level: zstd level.
        zdict: Dictionary, or None.
        key: Cache key naming `zdict` (a trained dictionary id); None disables caching (raw dicts).
    """
    if zdict is None or key is not None:
        cache = _cache()
        ckey = ("c", level, key if zdict is not None else None)
        found = cache.get(ckey)
        if not isinstance(found, zstandard.ZstdCompressor):
            found = _compressor(level, zdict)
            cache[ckey] = found
        return _strip_magic(found.compress(data))
    return _strip_magic(_compressor(level, zdict).compress(data))


def decompress(payload: bytes, size: int, zdict: zstandard.ZstdCompressionDict | None, key: object) -> bytes:
    """Inverse of `compress`; `size` is the exact expected output length in bytes.

    Raises:
        CorruptFrameError: zstd rejects the payload or it does not decode to `size` bytes.
    """
    if zdict is None or key is not None:
        cache = _cache()
        dkey = ("d", key if zdict is not None else None)
        found = cache.get(dkey)
        if not isinstance(found, zstandard.ZstdDecompressor):
            found = zstandard.ZstdDecompressor(dict_data=zdict, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
            cache[dkey] = found
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


def compress_checked(
    data: bytes, level: int, zdict: zstandard.ZstdCompressionDict | None, key: object = None
) -> bytes:
    """Compress into a magic-less zstd frame that carries its content checksum (XXH64, 4 bytes).

    Used for version-2 frames, whose dictionary (the tenant's context RSUs) comes from a store: the
    checksum proves the decoder rebuilt the same context. Compressors with a dictionary are not cached
    (the context differs for every message) unless `key` names the dictionary (a trained one's id).
    """
    if zdict is None or key is not None:
        cache = _cache()
        ckey = ("cc", level, key if zdict is not None else None)
        found = cache.get(ckey)
        if not isinstance(found, zstandard.ZstdCompressor):
            found = zstandard.ZstdCompressor(
                level=level,
                dict_data=zdict,
                write_checksum=True,
                write_content_size=False,
                write_dict_id=False,
            )
            cache[ckey] = found
        return _strip_magic(found.compress(data))
    compressor = zstandard.ZstdCompressor(
        level=level, dict_data=zdict, write_checksum=True, write_content_size=False, write_dict_id=False
    )
    return _strip_magic(compressor.compress(data))

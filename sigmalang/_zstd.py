"""zstd plumbing: magic-less frames, per-thread cached (de)compressors, raw-content dictionaries.

zstd contexts are not thread-safe, so compressors are cached per thread.

A version-2/3 frame's dictionary (its context RSUs, `ContextDict`) differs for every message. Through
`zstandard.ZstdCompressor`/`ZstdDecompressor` each such message cost a new zstd context (its creation
queries the CPU's features, a trap to the hypervisor on a virtual machine: 7% of decoding time) and
two copies of the dictionary (into a `ZstdCompressionDict`, then into zstd's own). These messages
instead go through one compression and one decompression context per thread, reset for each message,
with the dictionary referenced, not copied, through the same libzstd (python-zstandard's CFFI
bindings, `zstandard.backend_cffi`).

**Match finder for a frame's context** (`_context_parameters`). zstd indexes every byte of a frame's
dictionary before it codes the message, and the dictionary is new for every message: on the short,
window and default draws of `benchmarks/sigma_speed.py` that indexing was 70-100% of zstd's time (a
50 KB context after a trained dictionary's 32 KiB, 3-12 KB coded). At the context level (8: lazy2)
zstd's default row-based match finder costs 3.5-4.8 ns a dictionary byte to index here, plus clearing
a 512 KiB hash table and its tag table for every message. The context is instead indexed (at the
levels that search hash chains: greedy, lazy, lazy2) by the hash-chain match finder
(``ZSTD_c_useRowMatchFinder`` off: 1.7-2.6 ns a byte) with a hash table of
half the chain table's entries (``hashLog = chainLog - 1``; the chain table, which bounds how far
back matches reach, stays as zstd sizes it for the level and sizes). zstd's time on the recorded
context frames of those draws fell to 0.65-0.75 of what it was, and their payloads shrank 0.3-0.5%.
Decoding does not depend on the encoder's match finder: frames of either decode alike
(``tests/sigmalang/test_speed_identity.py``). Given to zstd as a one-shot prefix instead
(``ZSTD_CCtx_refPrefix``) the context cost another 7-10% less, but made the frames of
``test_speed_identity``'s corpus 1% larger (matches across the prefix's boundary are searched
differently), so it is not used.

**How hard the match finder searches** (`Search`). A level is one row of zstd's table
(``lib/compress/clevels.h``), picked by the input's size *plus* the dictionary's: level 8 with a 4-8 KB
message after a 20-60 KB context is the 128 KiB row (lazy2, 16 candidates a position: ``searchLog``
4, ``minMatch`` 4). Only the search is changed here (the tables stay sized by the level): up to 32
candidates a position (``searchLog`` 5), found by hashing 4 bytes when at least half of the message
is new (new code, new documents: many short matches), else 5 bytes, which keeps the chains free of
4-byte candidates that repeated text does not need and costs less than level 8's own search; never
fewer candidates than the level's own (level 8 compares 256 when message and context are at
most 16 KiB). Chosen by replaying zstd on every frame of eleven benchmark draws
(``benchmarks/sigma_zparams.py``, docs/sigmalang.md "zstd's parameters for frames, chosen by
measurement"). The decoder needs nothing new: the window is the level's.

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
from dataclasses import dataclass
from typing import Any

import zstandard
from zstandard import backend_cffi

from sigmalang._dict_header import dictionary_header
from sigmalang.errors import CorruptFrameError

MIN_RAW_DICT = 8  # zstd rejects raw-content dictionaries shorter than this
_local = threading.local()
_lib: Any = getattr(backend_cffi, "lib")  # noqa: B009 - untyped CFFI module, not re-exported
_ffi: Any = getattr(backend_cffi, "ffi")  # noqa: B009
_alloc: Any = _ffi.new_allocator(should_clear_after_alloc=False)  # output buffers are written, not read


@dataclass(frozen=True, slots=True)
class ContextDict:
    """A frame's zstd dictionary: its bytes and zstd's dictionary type (raw content or full)."""

    content: bytes
    dict_type: int


class _Contexts(threading.local):
    """One zstd compression and one decompression context per thread, reused message after message."""

    def __init__(self) -> None:
        self.cctx = _ffi.gc(_lib.ZSTD_createCCtx(), _lib.ZSTD_freeCCtx)
        self.dctx = _ffi.gc(_lib.ZSTD_createDCtx(), _lib.ZSTD_freeDCtx)
        # the decoder's stream positions, filled per frame (an `ffi.new` with an initialiser is ~1 µs)
        self.in_buffer = _ffi.new("ZSTD_inBuffer *")
        self.out_buffer = _ffi.new("ZSTD_outBuffer *")


_contexts = _Contexts()


def _ok(code: int, what: str) -> int:
    if _lib.ZSTD_isError(code):
        raise zstandard.ZstdError(f"{what}: {_ffi.string(_lib.ZSTD_getErrorName(code)).decode()}")
    return code


@dataclass(frozen=True, slots=True)
class Search:
    """How hard zstd's hash-chain match finder searches a frame's context (module docstring).

    Attributes:
        search_log: ``ZSTD_c_searchLog``: log2 of the candidates compared at each position, at least
            (the level's own where it is deeper: level 8 gives 8 when message and context are at most
            16 KiB); zstd accepts 1-30. None keeps the level's.
        min_match: ``ZSTD_c_minMatch``: bytes hashed to find candidates, the shortest match searched
            (the hash-chain finder uses 4-6; zstd accepts 3-7); None keeps the level's.
    """

    search_log: int | None = None
    min_match: int | None = None


LEVEL_SEARCH = Search()
"""The level's own search (what an explicit `level` argument gets)."""


def _context_parameters(
    level: int, source_bytes: int, context_bytes: int, search: Search = LEVEL_SEARCH
) -> tuple[tuple[int, int], ...]:
    """The zstd parameters for coding `source_bytes` with a context of `context_bytes` (module docstring).

    The level's own parameters for these sizes (``ZSTD_getCParams``); where they search hash chains
    (strategies greedy, lazy and lazy2: levels 5-12 here), the hash-chain match finder rather than
    the row-based one, a hash table of half its chain table's entries (at least zstd's minimum
    of 2**6), and `search`'s search log (where deeper than the level's) and minimum match where
    given. Other strategies (the fast ones of small inputs, level 3; binary trees) are left as they
    are: their second table is not a chain.
    """
    chosen = _lib.ZSTD_getCParams(level, source_bytes, context_bytes)
    if chosen.strategy not in _CHAIN_STRATEGIES:
        return ((_C_LEVEL, level),)
    found: tuple[tuple[int, int], ...] = (
        (_C_LEVEL, level),
        (_C_ROW_MATCH_FINDER, _PS_DISABLE),
        (_C_HASH_LOG, max(min(chosen.hashLog, chosen.chainLog - 1), _HASH_LOG_MIN)),
    )
    if search.search_log is not None and search.search_log > chosen.searchLog:
        found += ((_C_SEARCH_LOG, search.search_log),)
    if search.min_match is not None:
        found += ((_C_MIN_MATCH, search.min_match),)
    return found


_HASH_LOG_MIN: int = _lib.ZSTD_HASHLOG_MIN
_CHAIN_STRATEGIES = frozenset((_lib.ZSTD_greedy, _lib.ZSTD_lazy, _lib.ZSTD_lazy2))
# The libzstd constants and functions of the per-message calls, looked up once (each `_lib.X` is an
# attribute look-up on the CFFI module: a tenth of `_compress_with`'s Python time was spent on them).
_C_LEVEL: int = _lib.ZSTD_c_compressionLevel
_C_ROW_MATCH_FINDER: int = _lib.ZSTD_c_useRowMatchFinder
_C_HASH_LOG: int = _lib.ZSTD_c_hashLog
_C_SEARCH_LOG: int = _lib.ZSTD_c_searchLog
_C_MIN_MATCH: int = _lib.ZSTD_c_minMatch
_PS_DISABLE: int = _lib.ZSTD_ps_disable
_RESET: int = _lib.ZSTD_reset_session_and_parameters
_D_FORMAT: int = _lib.ZSTD_d_format
_F_MAGICLESS: int = _lib.ZSTD_f_zstd1_magicless
_FRAME_FIELDS = (  # a frame with a context: no content size, checksum or dictionary id (all implied)
    (_lib.ZSTD_c_contentSizeFlag, 0),
    (_lib.ZSTD_c_checksumFlag, 0),
    (_lib.ZSTD_c_dictIDFlag, 0),
)


def _compress_with(data: bytes, level: int, zdict: ContextDict, search: Search) -> bytes:
    """`data` as one magic-less zstd frame (no size, checksum or dictionary-id fields) with `zdict`.

    One `ZSTD_compress2` call (= ``ZSTD_compressStream2`` with ``ZSTD_e_end`` on the whole input, the
    source size pledged: the same bytes) on this thread's reused context, the dictionary referenced.
    """
    lib = _lib
    cctx = _contexts.cctx
    lib.ZSTD_CCtx_reset(cctx, _RESET)  # (cannot fail on a valid context)
    set_parameter, is_error = lib.ZSTD_CCtx_setParameter, lib.ZSTD_isError
    for param, value in (*_context_parameters(level, len(data), len(zdict.content), search), *_FRAME_FIELDS):
        code = set_parameter(cctx, param, value)
        if is_error(code):
            _ok(code, "parameter")
    content = _ffi.from_buffer(zdict.content)
    size, kind = len(zdict.content), zdict.dict_type
    _ok(lib.ZSTD_CCtx_loadDictionary_advanced(cctx, content, size, lib.ZSTD_dlm_byRef, kind), "dictionary")
    capacity = lib.ZSTD_compressBound(len(data))
    out = _alloc("char[]", capacity)
    try:
        written = _ok(lib.ZSTD_compress2(cctx, out, capacity, _ffi.from_buffer(data), len(data)), "compress")
    finally:
        lib.ZSTD_CCtx_reset(cctx, _RESET)  # forget the borrowed content
        del content
    return _strip_magic(_ffi.buffer(out, written))  # (slicing the CFFI buffer: the one copy)


def _decompress_with(payload: bytes, size: int, zdict: ContextDict) -> bytes:
    """One magic-less frame decoded against `zdict`: at most `size` bytes (CorruptFrameError if not one)."""
    lib, local = _lib, _contexts
    dctx = local.dctx
    lib.ZSTD_DCtx_reset(dctx, _RESET)  # (cannot fail on a valid context)
    _ok(lib.ZSTD_DCtx_setParameter(dctx, _D_FORMAT, _F_MAGICLESS), "format")
    content = _ffi.from_buffer(zdict.content)
    in_buffer, out_buffer = local.in_buffer, local.out_buffer
    try:
        loaded = lib.ZSTD_DCtx_loadDictionary_advanced(
            dctx, content, len(zdict.content), lib.ZSTD_dlm_byRef, zdict.dict_type
        )
        _ok(loaded, "dictionary")
        capacity = max(size, 1)
        out = _alloc("char[]", capacity)
        source = _ffi.from_buffer(payload)
        out_buffer.dst, out_buffer.size, out_buffer.pos = out, capacity, 0
        in_buffer.src, in_buffer.size, in_buffer.pos = source, len(payload), 0
        left = lib.ZSTD_decompressStream(dctx, out_buffer, in_buffer)
        consumed, produced = in_buffer.pos, out_buffer.pos
    finally:
        lib.ZSTD_DCtx_reset(dctx, _RESET)
        out_buffer.dst = in_buffer.src = _ffi.NULL  # borrowed only for this call
        del content
    if lib.ZSTD_isError(left):
        name = _ffi.string(lib.ZSTD_getErrorName(left)).decode()
        raise CorruptFrameError(f"zstd payload does not decode: {name}")
    if left or consumed != len(payload):
        raise CorruptFrameError("zstd payload is not exactly one whole frame of the recipe's size")
    return _ffi.buffer(out, produced)[:]  # type: ignore[no-any-return]


_ddicts: dict[bytes, tuple[Any, Any]] = {}  # dictionary bytes -> (its buffer, its ZSTD_DDict)
_ddicts_lock = threading.Lock()
_MAX_DDICTS = 64
_WINDOW_LOG_MAX = 27  # the streaming decoder's default limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT)
_BLOCK_MAX = 1 << 17  # ZSTD_BLOCKSIZE_MAX
# zstd 1.5.6 marked its block API deprecated (still exported by the pinned zstandard's libzstd); a libzstd
# without it decodes every frame through a dictionary built for the frame instead.
BLOCK_API: bool = hasattr(_lib, "ZSTD_decompressBlock") and hasattr(_lib, "ZSTD_insertBlock")


def _ddict(trained: bytes) -> Any:
    """The ZSTD_DDict of a dictionary (zstd format): built once, shared by every thread.

    A DDict is read-only once built (zstd references its entropy tables from a decoding context), so
    one serves all threads; it references `trained`'s bytes, kept alive with it.

    Raises:
        zstandard.ZstdError: zstd refuses the dictionary.
    """
    found = _ddicts.get(trained)
    if found is None:
        buffer = _ffi.from_buffer(trained)
        made = _lib.ZSTD_createDDict_advanced(
            buffer, len(trained), _lib.ZSTD_dlm_byRef, _lib.ZSTD_dct_fullDict, _lib.ZSTD_defaultCMem
        )
        if made == _ffi.NULL:
            raise zstandard.ZstdError("dictionary: zstd refuses the frame's dictionary")
        found = (buffer, _ffi.gc(made, _lib.ZSTD_freeDDict))
        with _ddicts_lock:
            if len(_ddicts) >= _MAX_DDICTS:
                _ddicts.clear()
            _ddicts[trained] = found
    return found[1]


def decompress_after(
    bare: bytes | memoryview, size: int, parts: Sequence[bytes | memoryview], trained: bytes | None
) -> memoryview:
    """Decode a `bare_block` payload whose zstd dictionary is `trained` (or none) then `parts` joined.

    The same bytes as `decompress` of the dressed payload with ``context_dict(parts, trained)``
    (whole dictionary or its header alone: offsets never reach before the context when only the
    header was used), without building the dictionary's entropy tables again for every frame: they
    come from the dictionary's `ZSTD_DDict`, made once (zstd's block API, ``zstd.h``: a decoding
    context begun with the DDict, the context inserted as an uncompressed block of its history
    (``ZSTD_insertBlock``), then the block decoded right after it, ``ZSTD_decompressBlock``). The
    context is joined once, into the buffer the block is decoded into.

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
    lib, dctx = _lib, _contexts.dctx  # (a streaming decode resets it before use: the state left is moot)
    if trained is not None:
        _ok(lib.ZSTD_decompressBegin_usingDDict(dctx, _ddict(trained)), "begin")
    else:
        _ok(lib.ZSTD_decompressBegin(dctx), "begin")
    whole = bytearray().join([*parts, bytes(size)])  # the context, then room for the block's output
    held = len(whole) - size
    out = _ffi.from_buffer(whole)
    lib.ZSTD_insertBlock(dctx, out, held)  # (returns the size given)
    block = _ffi.from_buffer(bare)
    produced = lib.ZSTD_decompressBlock(dctx, out + held, size, block + 1, len(bare) - 1)
    if lib.ZSTD_isError(produced):
        name = _ffi.string(lib.ZSTD_getErrorName(produced)).decode()
        raise CorruptFrameError(f"zstd payload does not decode: {name}")
    if produced != size:
        raise CorruptFrameError(f"payload decodes to {produced} bytes, the recipe needs {size}")
    return memoryview(whole)


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
    """`frame` (bytes, or a CFFI buffer: sliced, it gives bytes) without its magic number."""
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
            cache[ckey] = found
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

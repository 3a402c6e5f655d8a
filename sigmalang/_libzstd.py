"""libzstd through CFFI: per-thread contexts, and the parameters a frame's context is coded with.

zstd contexts are not thread-safe, so they are kept per thread.

A version-2/3 frame's dictionary (its context RSUs, `sigmalang._zstd.ContextDict`) differs for every
message. Through `zstandard.ZstdCompressor`/`ZstdDecompressor` each such message cost a new zstd context
(its creation queries the CPU's features, a trap to the hypervisor on a virtual machine: 7% of decoding
time) and two copies of the dictionary (into a `ZstdCompressionDict`, then into zstd's own). These
messages instead go through one compression and one decompression context per thread (`contexts`),
reset for each message, with the dictionary referenced, not copied, through the same libzstd
(python-zstandard's CFFI bindings, `zstandard.backend_cffi`): `sigmalang._zstd` codes whole frames on
them, `sigmalang._zstd_block` decodes one block after its context.

**Match finder for a frame's context** (`context_parameters`). zstd indexes every byte of a frame's
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
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import zstandard
from zstandard import backend_cffi

lib: Any = getattr(backend_cffi, "lib")  # noqa: B009 - untyped CFFI module, not re-exported
ffi: Any = getattr(backend_cffi, "ffi")  # noqa: B009


class _Contexts(threading.local):
    """One zstd compression and one decompression context per thread, reused message after message."""

    def __init__(self) -> None:
        self.cctx = ffi.gc(lib.ZSTD_createCCtx(), lib.ZSTD_freeCCtx)
        self.dctx = ffi.gc(lib.ZSTD_createDCtx(), lib.ZSTD_freeDCtx)
        # the decoder's stream positions, filled per frame (an `ffi.new` with an initialiser is ~1 µs)
        self.in_buffer = ffi.new("ZSTD_inBuffer *")
        self.out_buffer = ffi.new("ZSTD_outBuffer *")


contexts = _Contexts()
"""This thread's zstd contexts (``cctx``, ``dctx``) and decoder stream positions (``in_buffer``, ...)."""


def ok(code: int, what: str) -> int:
    """`code` (a libzstd size or error code) when it is not an error.

    Raises:
        zstandard.ZstdError: `code` is an error; the message names `what` and zstd's error.
    """
    if lib.ZSTD_isError(code):
        raise zstandard.ZstdError(f"{what}: {ffi.string(lib.ZSTD_getErrorName(code)).decode()}")
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


def context_parameters(
    level: int, source_bytes: int, context_bytes: int, search: Search = LEVEL_SEARCH
) -> tuple[tuple[int, int], ...]:
    """The zstd parameters for coding `source_bytes` with a context of `context_bytes` (module docstring).

    The level's own parameters for these sizes (``ZSTD_getCParams``); where they search hash chains
    (strategies greedy, lazy and lazy2: levels 5-12 here), the hash-chain match finder rather than
    the row-based one, a hash table of half its chain table's entries (at least zstd's minimum
    of 2**6), and `search`'s search log (where deeper than the level's) and minimum match where
    given. Other strategies (the fast ones of small inputs, level 3; binary trees) are left as they
    are: their second table is not a chain.

    Returns:
        ``(ZSTD_cParameter, value)`` pairs, the level first, for ``ZSTD_CCtx_setParameter``.
    """
    chosen = lib.ZSTD_getCParams(level, source_bytes, context_bytes)
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


_HASH_LOG_MIN: int = lib.ZSTD_HASHLOG_MIN
_CHAIN_STRATEGIES = frozenset((lib.ZSTD_greedy, lib.ZSTD_lazy, lib.ZSTD_lazy2))
# The libzstd constants and functions of the per-message calls, looked up once (each `lib.X` is an
# attribute look-up on the CFFI module: a tenth of `_compress_with`'s Python time was spent on them).
_C_LEVEL: int = lib.ZSTD_c_compressionLevel
_C_ROW_MATCH_FINDER: int = lib.ZSTD_c_useRowMatchFinder
_C_HASH_LOG: int = lib.ZSTD_c_hashLog
_C_SEARCH_LOG: int = lib.ZSTD_c_searchLog
_C_MIN_MATCH: int = lib.ZSTD_c_minMatch
_PS_DISABLE: int = lib.ZSTD_ps_disable
RESET: int = lib.ZSTD_reset_session_and_parameters
"""``ZSTD_reset_session_and_parameters``: how a context is reset before and after each message."""
FRAME_FIELDS = (  # a frame with a context: no content size, checksum or dictionary id (all implied)
    (lib.ZSTD_c_contentSizeFlag, 0),
    (lib.ZSTD_c_checksumFlag, 0),
    (lib.ZSTD_c_dictIDFlag, 0),
)

"""Content-defined chunking into reusable semantic units (RSUs), and RSU ids.

Chunk boundaries are chosen by the content itself (a rolling gear hash reaching a mask), not by
offsets, so inserting text early in a message moves only the chunks around the edit: the rest keep
their bytes and therefore their ids, and a store that has seen them can be referenced instead of
re-sent.

Algorithm: FastCDC (Xia et al., "FastCDC: a Fast and Efficient Content-Defined Chunking Approach for
Data Deduplication", USENIX ATC 2016; extended as "The Design of Fast Content-Defined Chunking for
Data Deduplication Based Storage Systems", IEEE TPDS 31(9), 2020), via the `pyfastcdc` package
(Cython, the 2020 variant with normalised chunking level 1 and the gear table of the paper's
reference code, destor ``src/chunking/fascdc_chunking.c``).

An RSU id is BLAKE2b with a 16-byte digest (RFC 7693) of the chunk's bytes.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterable

import pyfastcdc

from sigmalang.config import SigmaConfig
from sigmalang.frame import RSU_ID_BYTES

__all__ = ("chunk_spans", "rsu_id")

_digest = functools.partial(hashlib.blake2b, digest_size=RSU_ID_BYTES)

_local = threading.local()


def rsu_id(data: bytes | memoryview) -> bytes:
    """Content address of an RSU: BLAKE2b-128 of its bytes.

    Args:
        data: The RSU's bytes.

    Returns:
        16 bytes.
    """
    return _digest(data).digest()


def rsu_ids(chunks: list[memoryview]) -> list[bytes]:
    """`rsu_id` of each chunk, in order (one loop: the codec's per-chunk call)."""
    digest = _digest
    return [digest(c).digest() for c in chunks]


def _chunker(avg: int, lo: int, hi: int) -> pyfastcdc.FastCDC:
    cache: dict[tuple[int, int, int], pyfastcdc.FastCDC] | None = getattr(_local, "chunkers", None)
    if cache is None:
        cache = {}
        _local.chunkers = cache
    key = (avg, lo, hi)
    found = cache.get(key)
    if found is None:  # FastCDC objects are not safe to share between threads
        found = pyfastcdc.FastCDC(avg, min_size=lo, max_size=hi)
        cache[key] = found
    return found


def chunk_spans(data: bytes | memoryview, config: SigmaConfig | None = None) -> list[tuple[int, int]]:
    """Split `data` into content-defined chunks.

    Args:
        data: The input.
        config: Chunk size bounds (`chunk_min_bytes`, `chunk_avg_bytes`, `chunk_max_bytes`); default
            `SigmaConfig()`.

    Returns:
        ``(offset, length)`` pairs in bytes that tile `data` exactly, in order; empty for empty input.
        Every chunk but the last is at least `chunk_min_bytes` long and none exceeds `chunk_max_bytes`.
    """
    return [(c.offset, c.length) for c in _cuts(data, config or SigmaConfig())]


def chunk_views(data: memoryview, config: SigmaConfig) -> list[memoryview]:
    """The chunks of `chunk_spans`, as views of `data` (the ones the chunker makes: no offsets kept)."""
    return [c.data for c in _cuts(data, config)]


def _cuts(data: bytes | memoryview, config: SigmaConfig) -> Iterable[pyfastcdc.Chunk]:
    """The chunker's chunks of `data` (none for empty input)."""
    if not len(data):
        return ()
    return _chunker(config.chunk_avg_bytes, config.chunk_min_bytes, config.chunk_max_bytes).cut_buf(data)

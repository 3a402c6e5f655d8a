"""The header of a zstd-format dictionary: its magic, id, entropy tables and repeat offsets.

A zstd dictionary (RFC 8878 section 5) is ``magic (4) | dictionary id (4) | entropy tables |
content``, the entropy tables being a Huffman tree description (section 4.2.1), three FSE table
descriptions (offsets, match lengths, literal lengths; section 4.1.1) and three 4-byte repeat offsets.
Nothing records where the content starts, so the two variable-length parts are parsed here.

A version-2 or -3 frame with the TABLES flag uses a dictionary's header followed by the context alone:
zstd then has the dictionary's entropy tables (the saving of a dictionary on new text) without
hashing its content for every message (the cost).
"""

from __future__ import annotations

import threading

__all__ = ("dictionary_header",)

_MAGIC = b"\x37\xa4\x30\xec"  # RFC 8878 section 5
_MAX_SYMBOL = {"offsets": 31, "match lengths": 52, "literal lengths": 35}  # RFC 8878 sections 3.1.1.3.2
_MIN_ACCURACY_LOG = 5
_cache: dict[bytes, tuple[bytes, int]] = {}
_lock = threading.Lock()


def _fse_description_end(data: bytes, pos: int, max_symbol: int) -> int:
    """End offset of the FSE table description starting at `pos` (RFC 8878 section 4.1.1).

    Raises:
        ValueError: The description is malformed or runs past the end of `data`.
    """
    if pos >= len(data):
        raise ValueError("dictionary ends inside its entropy tables")
    bits = int.from_bytes(data[pos : pos + 512], "little")  # a description is at most ~100 bytes
    log = (bits & 0xF) + _MIN_ACCURACY_LOG
    bit = 4
    remaining = (1 << log) + 1
    threshold = 1 << log
    width = log + 1
    symbol = 0
    previous_zero = False
    while remaining > 1 and symbol <= max_symbol:
        if previous_zero:  # repeat flags: runs of zero-probability symbols
            while (bits >> bit) & 0xFFFF == 0xFFFF:
                symbol += 24
                bit += 16
            while (bits >> bit) & 3 == 3:
                symbol += 3
                bit += 2
            symbol += (bits >> bit) & 3
            bit += 2
        largest = (2 * threshold - 1) - remaining
        low = (bits >> bit) & (threshold - 1)
        if low < largest:
            count = low
            bit += width - 1
        else:
            count = (bits >> bit) & (2 * threshold - 1)
            if count >= threshold:
                count -= largest
            bit += width
        count -= 1  # -1: "less than 1" probability
        remaining -= abs(count)
        symbol += 1
        previous_zero = count == 0
        while remaining < threshold:
            width -= 1
            threshold >>= 1
    end = pos + (bit + 7) // 8
    if remaining != 1 or end > len(data):
        raise ValueError("malformed FSE table description in the dictionary")
    return end


def dictionary_header(data: bytes) -> tuple[bytes, int]:
    """Split off a zstd-format dictionary's header: everything but its content.

    Args:
        data: A dictionary in zstd format (as `zstandard.train_dictionary` makes).

    Returns:
        The header (magic, id, entropy tables, repeat offsets; about 100-200 bytes) and the largest
        repeat offset, bytes: content appended to the header must be at least that long for zstd to
        accept the result.

    Raises:
        ValueError: `data` is not a zstd-format dictionary, or its tables are malformed.
    """
    found = _cache.get(data)
    if found is not None:
        return found
    if data[:4] != _MAGIC or len(data) < 9:
        raise ValueError("not a zstd-format dictionary")
    weights = data[8]  # Huffman tree description: header byte, then FSE-compressed or 4-bit weights
    pos = 9 + (weights if weights < 128 else (weights - 127 + 1) // 2)
    for max_symbol in _MAX_SYMBOL.values():
        pos = _fse_description_end(data, pos, max_symbol)
    if pos + 12 > len(data):
        raise ValueError("dictionary ends inside its repeat offsets")
    reps = [int.from_bytes(data[pos + 4 * i : pos + 4 * i + 4], "little") for i in range(3)]
    header = (data[: pos + 12], max(reps))
    with _lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[data] = header
    return header

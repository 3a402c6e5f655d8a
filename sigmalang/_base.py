"""The *base* of a version-3 frame: the previous message of its stream, named by one manifest RSU.

A turn of an agent session is mostly its previous turn with something inserted (new messages before
the tools, a new document) or replaced (a sliding history window, a per-turn header). A version-2
frame named the previous turn's RSUs one by one, as runs of sequence numbers: on sessions of 60-80
turns those runs were a tenth of the output, growing with every turn. Version 3 instead stores, when
the next message of a stream arrives (in the same store call as that message's chunks), a
**manifest** of the previous one: one more RSU of the tenant whose bytes list the previous message's
RSUs (sequence numbers, in order). The frame names that manifest (one varint) and takes from
the base message its longest common **prefix** and **suffix**, so zstd codes only the middle, with
the base (and the other context RSUs) as its dictionary.

Manifest bytes (read on every decode, so laid out for `array` rather than varints: a Python loop
over varints cost a tenth of the decoding time)::

    3        magic          CE A3 6D ("Σm")
    1        width          4 or 8: bytes per sequence number
    width*n  seqs           the message's RSU sequence numbers, in order, little-endian

A manifest is an ordinary RSU: content-addressed, counted by retention, referenced by the frames
that name it (one reference, like each RSU of its list), evicted or collected like any other; a
frame whose manifest is gone fails with `MissingRSUError`.
"""

from __future__ import annotations

import array
import sys
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import NamedTuple

import xxhash

from sigmalang._frame_v2 import MAX_CONTEXT_RSUS
from sigmalang.errors import CorruptFrameError, MissingRSUError
from sigmalang.store import RSUStore


class Previous(NamedTuple):
    """What a stream remembers of its last message: its RSUs, and a digest of its first bytes."""

    seqs: tuple[int, ...]
    """The message's RSU sequence numbers, in order (the next message's base)."""
    head: tuple[int, int] = (0, 0)
    """``(n, XXH3-64 of its first n bytes)``: its first chunk and the two bytes after it ((0, 0) if
    unknown). A next message that does not start with them shares none of its chunks
    (`shared_chunks`), so they are not read early; a digest, not the bytes (up to 8 KiB a stream)."""

    def opens(self, data: bytes) -> bool:
        """Whether `data` may start with this message's first chunk (a hint: collisions are harmless)."""
        n, digest = self.head
        return 0 < n <= len(data) and xxhash.xxh3_64_intdigest(memoryview(data)[:n]) == digest

    @staticmethod
    def of(data: bytes, seqs: Sequence[int], first: int) -> Previous:
        """The record of message `data` whose RSUs are `seqs` and first chunk `first` bytes long."""
        n = first + 2
        return Previous(
            tuple(seqs), (n, xxhash.xxh3_64_intdigest(memoryview(data)[:n])) if 2 < n <= len(data) else (0, 0)
        )


MANIFEST_MAGIC = b"\xce\xa3m"
"""First bytes of a manifest RSU."""
_CODES = {4: "I", 8: "Q"}  # array type codes of 4 and 8 bytes (C unsigned int, unsigned long long)


def manifest(seqs: Sequence[int]) -> bytes:
    """The manifest of a message whose RSUs are `seqs` (in order, repeats kept).

    Raises:
        ValueError: More than `MAX_CONTEXT_RSUS` RSUs, or a sequence number out of range.
    """
    if len(seqs) > MAX_CONTEXT_RSUS:
        raise ValueError(f"a manifest lists at most {MAX_CONTEXT_RSUS} RSUs, got {len(seqs)}")
    if seqs and (min(seqs) <= 0 or max(seqs) >= 1 << 64):
        raise ValueError(f"sequence numbers are 1 to 2**64 - 1, got {min(seqs)}..{max(seqs)}")
    width = 4 if not seqs or max(seqs) < 1 << 32 else 8
    packed = array.array(_CODES[width], seqs)
    if sys.byteorder == "big":
        packed.byteswap()
    return MANIFEST_MAGIC + bytes([width]) + packed.tobytes()


def parse_manifest(data: bytes) -> list[int]:
    """The RSU sequence numbers a manifest lists (`manifest`).

    Raises:
        CorruptFrameError: `data` is not a manifest (the frame named another RSU as its base).
    """
    head = len(MANIFEST_MAGIC) + 1
    if len(data) < head or not data.startswith(MANIFEST_MAGIC):
        raise CorruptFrameError("the frame's base RSU is not a manifest")
    width = data[head - 1]
    if width not in _CODES or (len(data) - head) % width or (len(data) - head) // width > MAX_CONTEXT_RSUS:
        raise CorruptFrameError(f"manifest of width {width} and {len(data) - head} bytes")
    seqs = array.array(_CODES[width])
    seqs.frombytes(data[head:])
    if sys.byteorder == "big":
        seqs.byteswap()
    out = seqs.tolist()
    if out and min(out) <= 0:
        raise CorruptFrameError("manifest lists sequence number 0")
    return out


def common_prefix(a: bytes, b: bytes | memoryview) -> int:
    """Length of the longest common prefix of `a` and `b`, bytes (C-speed comparisons, O(n) bytes)."""
    hi = min(len(a), len(b))
    view = memoryview(b)
    if a.startswith(view[:hi]):
        return hi
    lo = 0  # a[:lo] == b[:lo] and a[:hi + 1] != b[:hi + 1]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a.startswith(view[lo:mid], lo):
            lo = mid
        else:
            hi = mid - 1
    return lo


def common_suffix(a: bytes, b: bytes | memoryview, limit: int) -> int:
    """Length of the longest common suffix of `a` and `b`, at most `limit`, bytes."""
    la, lb = len(a), len(b)
    hi = min(la, lb, limit)
    view = memoryview(b)
    if a.endswith(view[lb - hi :]):
        return hi
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a.endswith(view[lb - mid : lb - lo], 0, la - lo):
            lo = mid
        else:
            hi = mid - 1
    return lo


def shared_chunks(data: bytes, parts: Sequence[bytes], *, avg_bytes: int) -> tuple[int, int]:
    """How many of the base's leading chunks are also the message's first chunks, and their length.

    FastCDC (`sigmalang.chunking`, pyfastcdc) cuts a chunk from the bytes since the previous cut,
    reading one byte past the cut, with limits that depend on the bytes remaining when these are
    fewer than the average chunk size. So where the message starts with the base's bytes, it starts
    with the base's chunks too: each one of them followed by at least two more common bytes, with at
    least `avg_bytes` left in both. Those chunks need not be cut, hashed or stored again: their RSUs
    are the base's (`parts`, in order). The rule only spares work: were it wrong, the message's RSUs
    would still join to exactly the message (the base's bytes equal the message's there), only cut
    elsewhere than a fresh chunking would.

    Args:
        data: The message.
        parts: The base message's chunks, in order.
        avg_bytes: The chunker's average chunk size (`SigmaConfig.chunk_avg_bytes`), bytes.

    Returns:
        ``(k, cut)``: the first `k` chunks of the base, `cut` bytes, open the message too.
    """
    if not parts:
        return 0, 0
    base = b"".join(parts)
    room = min(len(data), len(base))
    ends = list(accumulate(map(len, parts)))  # chunk i is base[ends[i - 1] : ends[i]]
    # chunk i is shared when it ends two bytes before the common prefix does (conditions monotone in
    # i, hence bisection): not the base's last chunk, cut by its end rather than by content
    k = bisect_right(ends, min(common_prefix(data, base), room) - 2)
    # and starts with at least avg_bytes left in both (chunk 0 starts at 0, chunk i at ends[i - 1])
    k = min(k, 1 + bisect_right(ends, room - avg_bytes) if room >= avg_bytes else 0)
    return k, ends[k - 1] if k else 0


def read_chunks(store: RSUStore, tenant: str, seqs: Sequence[int]) -> dict[int, bytes]:
    """The contents of `seqs` by sequence number, or nothing when one is gone (the base is then unusable)."""
    unique = list(dict.fromkeys(seqs))
    try:
        return dict(zip(unique, store.get_many(tenant, unique), strict=True))
    except MissingRSUError:
        return {}

"""The *base* of a version-3 frame: the previous message of its stream, named by one manifest RSU.

A turn of an agent session is mostly its previous turn with something inserted (new messages before
the tools, a new document) or replaced (a sliding history window, a per-turn header). A version-2
frame named the previous turn's RSUs one by one, as runs of sequence numbers: on sessions of 60-80
turns those runs were a tenth of the output, growing with every turn. Version 3 instead stores, with
each message of a stream, a **manifest**: one more RSU of the tenant whose bytes list the message's
RSUs (sequence numbers, in order). The next frame names that manifest (one varint) and takes from
the base message its longest common **prefix** and **suffix**, so zstd codes only the middle, with
the base (and the other context RSUs) as its dictionary.

Manifest bytes::

    3        magic          CE A3 6D ("Σm")
    varint   count          RSUs of the message
    varint*  seqs           zigzag(seq - previous seq), the first against 0

A manifest is an ordinary RSU: content-addressed, counted by retention, referenced by the frames
that name it (one reference, like each RSU of its list), evicted or collected like any other; a
frame whose manifest is gone fails with `MissingRSUError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sigmalang import _varint
from sigmalang._frame_v2 import MAX_CONTEXT_RSUS
from sigmalang.errors import CorruptFrameError

MANIFEST_MAGIC = b"\xce\xa3m"
"""First bytes of a manifest RSU."""


def manifest(seqs: Sequence[int]) -> bytes:
    """The manifest of a message whose RSUs are `seqs` (in order, repeats kept).

    Raises:
        ValueError: More than `MAX_CONTEXT_RSUS` RSUs, or a sequence number below 1.
    """
    if len(seqs) > MAX_CONTEXT_RSUS:
        raise ValueError(f"a manifest lists at most {MAX_CONTEXT_RSUS} RSUs, got {len(seqs)}")
    out = bytearray(MANIFEST_MAGIC)
    _varint.encode(len(seqs), out)
    last = 0
    for seq in seqs:
        if seq <= 0:
            raise ValueError(f"sequence numbers start at 1, got {seq}")
        delta = seq - last
        _varint.encode(delta * 2 if delta >= 0 else -delta * 2 - 1, out)
        last = seq
    return bytes(out)


def parse_manifest(data: bytes) -> list[int]:
    """The RSU sequence numbers a manifest lists (`manifest`).

    Raises:
        CorruptFrameError: `data` is not a manifest (the frame named another RSU as its base).
    """
    view = memoryview(data)
    end = len(view)
    if bytes(view[: len(MANIFEST_MAGIC)]) != MANIFEST_MAGIC:
        raise CorruptFrameError("the frame's base RSU is not a manifest")
    try:
        count, pos = _varint.decode(view, len(MANIFEST_MAGIC), end)
        if count > min(MAX_CONTEXT_RSUS, end - pos):
            raise CorruptFrameError(f"manifest of {count} RSUs in {end - pos} bytes")
        seqs: list[int] = []
        last = 0
        for _ in range(count):
            zz, pos = _varint.decode(view, pos, end)
            last += zz >> 1 if not zz & 1 else -((zz + 1) >> 1)
            if last <= 0:
                raise CorruptFrameError(f"manifest lists sequence number {last}")
            seqs.append(last)
    except CorruptFrameError:
        raise
    except ValueError as exc:  # a truncated varint
        raise CorruptFrameError(f"truncated manifest: {exc}") from exc
    if pos != end:
        raise CorruptFrameError("manifest with trailing bytes")
    return seqs


def common_prefix(a: bytes, b: bytes) -> int:
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


def common_suffix(a: bytes, b: bytes, limit: int) -> int:
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

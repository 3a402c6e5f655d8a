"""Unsigned LEB128 varints (the encoding of protobuf and WebAssembly), used by the frame format."""

from __future__ import annotations

from sigmalang.errors import CorruptFrameError, TruncatedFrameError

_MAX_VARINT_BYTES = 10  # 64-bit values


def encode(value: int, out: bytearray) -> None:
    """Append `value` (>= 0, < 2**64) to `out` as an unsigned LEB128 varint."""
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def decode(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    """Read one varint from `buf[pos:end]`.

    Returns:
        ``(value, new_pos)``.

    Raises:
        TruncatedFrameError: The varint runs past `end`.
        CorruptFrameError: The varint is longer than 10 bytes.
    """
    if pos < end and buf[pos] < 0x80:  # one byte: most varints of a frame (sizes, runs)
        return buf[pos], pos + 1
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise TruncatedFrameError(size=end, needed=pos + 1)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if pos - start >= _MAX_VARINT_BYTES:
            raise CorruptFrameError("varint longer than 10 bytes")

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sigmalang
from sigmalang import (
    BadMagicError,
    ChecksumMismatchError,
    FrameError,
    SigmaError,
    TruncatedFrameError,
    UnsupportedVersionError,
)
from sigmalang.frame import CHECKSUM_BYTES, MAGIC, checksum

DATA = b"the same system prompt, again and again. " * 50 + bytes(range(200))


def test_frame_starts_with_magic_and_version() -> None:
    frame = sigmalang.compress(DATA)
    assert frame[:2] == MAGIC == "Σ".encode()
    assert frame[2] == sigmalang.FORMAT_VERSION
    info = sigmalang.inspect_frame(frame)
    assert info.content_size == len(DATA)
    assert info.frame_size == len(frame)


def test_every_truncation_is_rejected() -> None:
    frame = sigmalang.compress(DATA)
    for cut in range(len(frame)):
        with pytest.raises(FrameError):
            sigmalang.decompress(frame[:cut])


def test_every_single_byte_corruption_is_rejected() -> None:
    frame = sigmalang.compress(DATA)
    rng = random.Random(1)
    for pos in range(len(frame)):
        corrupted = bytearray(frame)
        corrupted[pos] ^= 1 << rng.randrange(8)
        with pytest.raises(FrameError):
            sigmalang.decompress(bytes(corrupted))


def test_checksum_mismatch_carries_both_values() -> None:
    frame = bytearray(sigmalang.compress(DATA))
    frame[len(frame) // 2] ^= 0xFF
    with pytest.raises(ChecksumMismatchError) as caught:
        sigmalang.decompress(bytes(frame))
    assert caught.value.expected == bytes(frame[-CHECKSUM_BYTES:])
    assert caught.value.expected != caught.value.actual
    assert isinstance(caught.value, ValueError)


def test_unknown_version_is_named_even_with_a_valid_checksum() -> None:
    frame = bytearray(sigmalang.compress(DATA))
    frame[2] = 9
    body = bytes(frame[:-CHECKSUM_BYTES])
    with pytest.raises(UnsupportedVersionError) as caught:
        sigmalang.decompress(body + checksum(body))
    assert caught.value.version == 9
    assert "version 9" in str(caught.value)


def test_foreign_data_is_not_a_frame() -> None:
    with pytest.raises(BadMagicError):
        sigmalang.decompress(b"\x28\xb5\x2f\xfd" + bytes(20))  # a zstd frame magic
    with pytest.raises(TruncatedFrameError):
        sigmalang.decompress(MAGIC[:1])


def test_unknown_flag_bits_are_rejected() -> None:
    frame = bytearray(sigmalang.compress(DATA))
    frame[3] |= 0x80
    body = bytes(frame[:-CHECKSUM_BYTES])
    with pytest.raises(sigmalang.CorruptFrameError):
        sigmalang.decompress(body + checksum(body))


@given(st.binary(max_size=200))
def test_random_bytes_never_decode(junk: bytes) -> None:
    with pytest.raises(SigmaError):
        sigmalang.decompress(junk)


def _store_frame() -> tuple[sigmalang.SigmaCodec, bytes, bytes]:
    codec = sigmalang.SigmaCodec()
    doc = b"".join(b"paragraph %d of the retrieved document, figure %d.\n" % (i, i * 3) for i in range(100))
    codec.compress(doc, tenant="t", stream="s")
    message = doc + b"and one more question?"
    return codec, codec.compress(message, tenant="t", stream="s").frame, message


def test_store_frames_are_version_2_with_a_context_and_a_tag() -> None:
    codec, frame, message = _store_frame()
    info = codec.inspect(frame, tenant="t")
    assert frame[2] == sigmalang.STORE_FORMAT_VERSION and info.context
    assert info.frame_size == len(frame) and info.content_size == len(message)
    assert codec.decompress(frame, tenant="t") == message


def test_every_truncation_and_bit_flip_of_a_store_frame_is_rejected() -> None:
    codec, frame, _ = _store_frame()
    for cut in range(len(frame)):
        with pytest.raises(FrameError):
            codec.decompress(frame[:cut], tenant="t")
    rng = random.Random(2)
    for pos in range(len(frame)):
        corrupted = bytearray(frame)
        corrupted[pos] ^= 1 << rng.randrange(8)
        with pytest.raises(FrameError):
            codec.decompress(bytes(corrupted), tenant="t")

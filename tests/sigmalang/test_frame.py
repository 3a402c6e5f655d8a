from __future__ import annotations

import hashlib
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
from sigmalang.frame import (
    CHECKSUM_BYTES,
    F_PACKED,
    MAGIC,
    TAG_BYTES,
    checksum,
    encode_store_frame,
    inspect_frame,
)

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


def _unpacked(info: sigmalang.FrameInfo, frame: bytes, key: bytes) -> bytes:
    """The same frame with its context runs written as before PACKED (two varints each)."""
    from sigmalang import _varint

    out = bytearray(frame[:3])
    out.append(frame[3] & ~F_PACKED)
    _varint.encode(info.content_size, out)
    if info.dict_id is not None:
        out += info.dict_id.to_bytes(4, "little")
    runs: list[list[int]] = []
    for seq in info.context:
        if runs and runs[-1][0] + runs[-1][1] == seq:
            runs[-1][1] += 1
        else:
            runs.append([seq, 1])
    _varint.encode(len(runs), out)
    end = 0
    for start, length in runs:
        _varint.encode((start - end) * 2 if start >= end else (end - start) * 2 - 1, out)
        _varint.encode(length, out)
        end = start + length
    out += frame[info.payload_offset : info.payload_offset + info.payload_size]
    return bytes(out + hashlib.blake2b(out, key=key, digest_size=TAG_BYTES).digest())


@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(1, 300)), min_size=1, max_size=40))
def test_packed_context_runs_round_trip(runs: list[tuple[int, int]]) -> None:
    context = tuple(dict.fromkeys(s for start, length in runs for s in range(start, start + length)))
    key = bytes(32)
    frame = encode_store_frame(
        key=key, content_size=5, payload=b"zstd!", raw=False, dict_id=None, context=context
    )
    info = inspect_frame(frame, key=key)
    assert info.flags & F_PACKED and info.context == context
    assert inspect_frame(_unpacked(info, frame, key), key=key).context == context  # the old layout too


def test_frames_with_unpacked_runs_still_decode() -> None:
    from tests.sigmalang.test_frame_v3 import version_2_frames

    codec, frames, messages = version_2_frames()
    frame = frames[1]  # a version-2 frame with a context, written by the previous release
    info = codec.inspect(frame, tenant="acme")
    old = _unpacked(info, frame, codec.key("acme"))
    assert not codec.inspect(old, tenant="acme").flags & F_PACKED and len(old) >= len(frame)
    assert codec.decompress(old, tenant="acme") == messages[1]


def test_packed_without_a_context_is_rejected() -> None:
    key = bytes(32)
    plain = bytearray(
        encode_store_frame(key=key, content_size=3, payload=b"abc", raw=True, dict_id=None, context=())
    )
    del plain[-TAG_BYTES:]
    plain[3] |= F_PACKED
    plain += hashlib.blake2b(plain, key=key, digest_size=TAG_BYTES).digest()
    with pytest.raises(sigmalang.CorruptFrameError, match="PACKED"):
        inspect_frame(bytes(plain), key=key)

"""Frames with a context borrow only a dictionary's entropy tables (TABLES) unless they bring new text."""

from __future__ import annotations

import hashlib
import random

import pytest
import zstandard

import sigmalang
from sigmalang import CorruptFrameError, SigmaCodec
from sigmalang._dict_header import dictionary_header
from sigmalang.frame import F_BASE, F_DICT, F_GENERIC, F_RAW, F_TABLES, TAG_BYTES, encode_store_frame
from sigmalang.generic import generic_dictionary


def _smallest_prefix_zstd_loads(data: bytes) -> int:
    """Independent oracle: the shortest prefix of `data` that zstd accepts as a dictionary header.

    The padding (content) is 0xff bytes, so a prefix one byte short cannot borrow a valid last byte.
    """

    def loads(k: int) -> bool:
        try:
            zdict = zstandard.ZstdCompressionDict(
                data[:k] + b"\xff" * 16, dict_type=zstandard.DICT_TYPE_FULLDICT
            )
            zstandard.ZstdCompressor(level=3, dict_data=zdict).compress(b"probe probe probe")
        except zstandard.ZstdError:
            return False
        return True

    lo, hi = 8, len(data)
    while lo < hi:
        mid = (lo + hi) // 2
        if loads(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _trained(seed: int) -> bytes:
    rng = random.Random(seed)
    words = ["order", "ship", "refund", '{"id":', "tool_call", "assistant", "the", "of", "\\n"]
    samples = [
        " ".join(rng.choice(words) + str(rng.randint(0, 99)) for _ in range(rng.randint(20, 300))).encode()
        for _ in range(400)
    ]
    return zstandard.train_dictionary(8192, samples, level=rng.choice([3, 19])).as_bytes()


@pytest.mark.parametrize("which", ["generic", "trained-1", "trained-2", "trained-3"])
def test_header_length_is_where_zstd_finds_the_content(which: str) -> None:
    data = generic_dictionary().data if which == "generic" else _trained(int(which[-1]))
    header, min_content = dictionary_header(data)
    assert len(header) == _smallest_prefix_zstd_loads(data)
    assert data.startswith(header) and 100 <= len(header) < 1024
    assert min_content == 8  # zstd's trainer starts the repeat offsets at 1, 4, 8


@pytest.mark.parametrize(
    "data", [b"", b"\x37\xa4\x30\xec", b"not a dictionary at all", b"\x37\xa4\x30\xec" + b"\xff" * 8]
)
def test_a_non_dictionary_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="dictionary"):
        dictionary_header(data)


def test_context_frames_use_the_generic_tables_and_decode() -> None:
    codec = SigmaCodec()
    base = b"".join(b"system: policy %d says refunds within %d days.\n" % (i, i % 30) for i in range(120))
    first = codec.compress(base, tenant="t", stream="s")
    second = codec.compress(base + b"user: may I have a refund for order 7?\n", tenant="t", stream="s")
    one, two = codec.inspect(first.frame, tenant="t"), codec.inspect(second.frame, tenant="t")
    assert not one.flags & F_TABLES  # no context: the generic dictionary whole (or none)
    # The generic dictionary is named by a flag (no id bytes), the previous turn by its manifest.
    assert two.flags & (F_TABLES | F_GENERIC | F_BASE | F_DICT) == F_TABLES | F_GENERIC | F_BASE
    assert two.dict_id == generic_dictionary().dict_id and two.base_prefix == len(base)
    assert codec.decompress(second.frame, tenant="t") == base + b"user: may I have a refund for order 7?\n"
    # Whether a dictionary's content is used follows the new bytes a message brings.
    rng = random.Random(5)
    words = [b"refund", b"parcel", b"courier", b"invoice", b"warehouse", b"tracking", b"customs", b"label"]
    for name, dictionary, threshold in (
        ("generic", None, codec.config.generic_content_min_new_bytes),
        ("trained", sigmalang.Dictionary(_trained(1)), codec.config.trained_content_min_new_bytes),
    ):
        if dictionary is not None:
            codec.dictionaries.add(dictionary)
        seen = set()
        turn = base
        for size in (40, 300, 3000, 12000, 60):
            turn += b" ".join(rng.choice(words) for _ in range(size // 7)) + b".\n"
            result = codec.compress(turn, tenant="t", stream=name)
            info = codec.inspect(result.frame, tenant="t")
            assert codec.decompress(result.frame, tenant="t") == turn
            if not info.context or info.flags & F_RAW:  # (a short middle may be stored as is)
                continue
            assert info.dict_id == (dictionary or generic_dictionary()).dict_id
            assert bool(info.flags & F_TABLES) == (result.report.literal_bytes < threshold), name
            seen.add(bool(info.flags & F_TABLES))
        assert seen == {True, False}, name  # both ways were exercised


def test_tables_flag_needs_a_dictionary_and_a_context() -> None:
    codec = SigmaCodec()
    key = codec.key("t")
    with pytest.raises(ValueError, match="TABLES"):
        encode_store_frame(
            key=key, content_size=1, payload=b"x", raw=False, dict_id=None, context=(1,), tables=True
        )
    plain = encode_store_frame(key=key, content_size=3, payload=b"abc", raw=True, dict_id=None, context=())
    forged = bytearray(plain[:-TAG_BYTES])
    forged[3] |= F_TABLES  # RAW with TABLES, and no dictionary or context
    forged += hashlib.blake2b(forged, key=key, digest_size=TAG_BYTES).digest()
    with pytest.raises(CorruptFrameError, match="TABLES"):
        codec.decompress(bytes(forged), tenant="t")

"""A frame's context indexed by zstd's hash-chain match finder, a smaller hash table (`sigmalang._libzstd`).

The encoder's match finder is its own choice: the payload must decode to exactly the message, for raw
contexts and for contexts after a zstd-format dictionary (whole, or its header and tables only), at
any context size, including contexts longer than the chain table the level gives small inputs.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sigmalang import _libzstd, _zstd
from sigmalang.generic import generic_dictionary

_WORDS = [b"tool", b"schema", b"tenant", b"frame", b"refund", b"policy", b"\n", b"{", b'"k": ', b"12"]


def _text(rng: random.Random, n: int) -> bytes:
    return b" ".join(rng.choice(_WORDS) for _ in range(n))


def _edited(rng: random.Random, parts: list[bytes]) -> bytes:
    """A message made of pieces of the context, edited: moved, cut, with new bytes between."""
    joined = b"".join(parts)
    out = bytearray()
    for _ in range(rng.randint(1, 6)):
        if joined and rng.random() < 0.7:
            start = rng.randrange(len(joined))
            out += joined[start : start + rng.randint(1, 3000)]
        else:
            noise = rng.random() < 0.3
            new = rng.randbytes(rng.randint(0, 200)) if noise else _text(rng, rng.randint(1, 300))
            out += new
    return bytes(out)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["raw", "whole", "tables"]), st.integers(1, 40))
def test_a_message_coded_after_its_context_decodes_exactly(seed: int, kind: str, n_parts: int) -> None:
    rng = random.Random(seed)
    parts = [_text(rng, rng.randint(0, 900)) for _ in range(n_parts)]
    trained = None if kind == "raw" else generic_dictionary().data
    zdict, context = _zstd.context_dict(parts, trained, tables=kind == "tables")
    if zdict is None:  # too short for a dictionary: the codec then goes without
        assert len(context) < _zstd.MIN_RAW_DICT or kind == "tables"
        return
    assert context.tobytes() == b"".join(parts)
    message = _edited(rng, parts)
    for level in (3, 8):
        payload = _zstd.compress(message, level, zdict, None)
        assert _zstd.decompress(payload, len(message), zdict, None) == message


def test_the_context_is_indexed_by_hash_chains_with_a_smaller_hash_table() -> None:
    lib = _libzstd.lib
    for source, context in ((4_000, 50_000), (12_000, 47_000), (100, 9), (140_000, 4_000_000)):
        chosen = lib.ZSTD_getCParams(8, source, context)
        got = dict(_libzstd.context_parameters(8, source, context))
        assert got[lib.ZSTD_c_useRowMatchFinder] == lib.ZSTD_ps_disable
        assert got[lib.ZSTD_c_hashLog] == max(min(chosen.hashLog, chosen.chainLog - 1), 6)
        assert got[lib.ZSTD_c_compressionLevel] == 8
    assert dict(_libzstd.context_parameters(8, 4_000, 50_000))[lib.ZSTD_c_hashLog] == 15  # zstd's own: 17


def test_the_fast_strategies_of_small_inputs_keep_zstds_parameters() -> None:
    """Level 3 (messages under 4 KiB) is dfast: its second table is not a chain, so nothing changes."""
    lib = _libzstd.lib
    assert lib.ZSTD_getCParams(3, 800, 40_000).strategy == 2  # ZSTD_dfast
    assert _libzstd.context_parameters(3, 800, 40_000) == ((lib.ZSTD_c_compressionLevel, 3),)


def test_a_context_larger_than_the_chain_table_still_round_trips() -> None:
    rng = random.Random(5)
    parts = [rng.randbytes(100_000) for _ in range(4)]  # 400 KB: beyond the 2**16-entry chain of small inputs
    zdict, _ = _zstd.context_dict(parts, None)
    assert zdict is not None
    message = parts[0][:5_000] + b"new text " + parts[3][-5_000:]  # incompressible but for the context
    payload = _zstd.compress(message, 8, zdict, None)
    assert len(payload) < 100  # both pieces found in the context, the first 395 KB back
    assert _zstd.decompress(payload, len(message), zdict, None) == message

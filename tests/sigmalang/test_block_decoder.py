"""Frames of one zstd block decode right after their context, the dictionary's tables made once.

`sigmalang._zstd_block.decompress_after` decodes a `bare_block` payload with zstd's block API: a decoding
context begun with the dictionary's `ZSTD_DDict` (built once), the frame's context inserted as
history, then the block. It must give exactly what the frame's own dictionary (`context_dict`: the
dictionary's content or header, then the context) gives through the streaming decoder, for raw,
whole-dictionary and tables-only contexts; and `SigmaCodec.decompress` must take it for such frames.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sigmalang
from sigmalang import SigmaCodec, _zstd, _zstd_block
from sigmalang._dict_header import dictionary_header
from sigmalang._frame_v3 import parse_v3
from sigmalang.errors import CorruptFrameError
from sigmalang.frame import F_BARE
from sigmalang.generic import generic_dictionary

_SECRET = bytes(range(64, 96))
_WORDS = [
    b"tool",
    b"schema",
    b"tenant",
    b"frame",
    b"refund. ",
    b"policy: ",
    b"\n",
    b"{",
    b'"k": ',
    b"12",
    b"\\n",
]


def _text(rng: random.Random, n: int) -> bytes:
    return b" ".join(rng.choice(_WORDS) for _ in range(n))


def _edited(rng: random.Random, context: bytes) -> bytes:
    """A message made of pieces of the context, moved and cut, with new text and noise between."""
    out = bytearray()
    for _ in range(rng.randint(1, 6)):
        if context and rng.random() < 0.7:
            start = rng.randrange(len(context))
            out += context[start : start + rng.randint(1, 3000)]
        elif rng.random() < 0.3:
            out += rng.randbytes(rng.randint(1, 200))
        else:
            out += _text(rng, rng.randint(1, 300))
    return bytes(out) or b"x"


def _trained() -> bytes:
    """A dictionary trained on messages like the test's (its entropy tables and repeat offsets differ)."""
    rng = random.Random(3)
    samples = [_text(rng, rng.randint(50, 400)) for _ in range(400)]
    found = sigmalang.train_dictionary(samples)
    assert found is not None
    return found.data


_TRAINED = _trained()


@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["raw", "whole", "tables"]),
    source=st.sampled_from(["generic", "trained"]),
    n_parts=st.integers(1, 30),
)
def test_a_block_decodes_after_its_context_as_through_the_frames_own_dictionary(
    seed: int, kind: str, source: str, n_parts: int
) -> None:
    rng = random.Random(seed)
    parts = [_text(rng, rng.randint(0, 900)) for _ in range(n_parts)]
    trained = None if kind == "raw" else (generic_dictionary().data if source == "generic" else _TRAINED)
    zdict, context = _zstd.context_dict(parts, trained, tables=kind == "tables")
    if zdict is None:
        assert len(context) < _zstd.context_floor(trained, tables=kind == "tables")
        return
    joined = b"".join(parts)
    message = _edited(rng, joined)
    for level in (3, 8):
        payload = _zstd.compress(message, level, zdict, None)
        bare = _zstd_block.bare_block(payload)
        if bare is None:  # stored as a raw zstd block (noise): such frames go through `decompress`
            assert _zstd.decompress(payload, len(message), zdict, None) == message
            continue
        whole = _zstd_block.decompress_after(bare, len(message), parts, trained)
        assert whole.tobytes() == joined + message
        assert _zstd.decompress(_zstd_block.dress_block(bare), len(message), zdict, None) == message


def _session(rng: random.Random, turns: int) -> list[bytes]:
    """A conversation whose turns re-send and edit the previous one (inserted, replaced and cut text)."""
    text = bytearray(_text(rng, rng.randrange(200, 2500)))
    out = [bytes(text)]
    for _ in range(turns - 1):
        for _ in range(rng.randint(0, 4)):
            at = rng.randrange(len(text) + 1)
            cut = rng.choice([0, 0, rng.randrange(300)])
            text[at : at + cut] = _text(rng, rng.randrange(1, 500))
        if rng.random() < 0.3:  # a new first line (a per-turn header): the base is then no prefix
            text[:10] = rng.randbytes(10)
        out.append(bytes(text))
    return out


@contextmanager
def _block_decodes() -> Iterator[list[int]]:
    """The sizes `decompress_after` decodes meanwhile (the fast path is taken, not only correct)."""
    calls: list[int] = []
    real = _zstd_block.decompress_after

    def counting(
        bare: bytes | memoryview, size: int, parts: list[bytes], trained: bytes | None
    ) -> memoryview:
        calls.append(size)
        return real(bare, size, parts, trained)

    _zstd_block.decompress_after = counting
    try:
        yield calls
    finally:
        _zstd_block.decompress_after = real


@settings(max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), dictionary=st.sampled_from(["trained", "generic", "none"]))
def test_edited_sessions_decode_byte_for_byte_through_the_block_path(seed: int, dictionary: str) -> None:
    rng = random.Random(seed)
    codec = SigmaCodec(
        secret=_SECRET, config=sigmalang.SigmaConfig(generic_dictionary=dictionary == "generic")
    )
    if dictionary == "trained":
        codec.dictionaries.add(sigmalang.Dictionary(_TRAINED), tenant="t")
    sessions = [_session(rng, rng.randint(2, 5)) for _ in range(3)]
    frames = [(codec.compress(m, tenant="t", stream=i).frame, m) for i, s in enumerate(sessions) for m in s]
    with _block_decodes() as calls:
        for frame, message in frames:
            assert codec.decompress(frame, tenant="t") == message
    headers = [parse_v3(memoryview(f), codec.key("t")) for f, _ in frames]
    bare = [h for h in headers if h.flags & F_BARE and h.context]  # one block, with a context
    assert bare  # the sessions' later turns are coded against their previous one
    assert len(calls) == len(bare)


def test_a_session_takes_the_block_path() -> None:
    rng = random.Random(11)
    codec = SigmaCodec(secret=_SECRET)
    turns = _session(rng, 6)
    frames = [codec.compress(m, tenant="t", stream="s").frame for m in turns]
    with _block_decodes() as calls:
        assert [codec.decompress(f, tenant="t") for f in frames] == turns
    assert len(calls) >= 4  # every turn after the first has its previous one as context


def test_without_the_block_api_every_frame_decodes_through_its_own_dictionary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A libzstd without the (deprecated-marked) block API: the same bytes, never the block path."""
    rng = random.Random(13)
    codec = SigmaCodec(secret=_SECRET)
    turns = _session(rng, 6)
    frames = [codec.compress(m, tenant="t", stream="s").frame for m in turns]
    monkeypatch.setattr(_zstd_block, "BLOCK_API", False)
    with _block_decodes() as calls:
        assert [codec.decompress(f, tenant="t") for f in frames] == turns
    assert calls == []


def _frame_parts(codec: SigmaCodec, turns: list[bytes]) -> tuple[bytes, bytes, bytes, int]:
    """The last turn's bare payload, its context joined and its dictionary, as the decoder sees them."""
    seen: dict[str, object] = {}
    real = _zstd_block.decompress_after

    def keep(bare: bytes | memoryview, size: int, parts: list[bytes], trained: bytes | None) -> memoryview:
        seen.update(bare=bytes(bare), size=size, context=b"".join(parts), trained=trained)
        return real(bare, size, parts, trained)

    frames = [codec.compress(m, tenant="t", stream="s").frame for m in turns]
    _zstd_block.decompress_after = keep
    try:
        assert codec.decompress(frames[-1], tenant="t") == turns[-1]
    finally:
        _zstd_block.decompress_after = real
    trained = seen["trained"]
    assert isinstance(trained, bytes)
    return seen["bare"], seen["context"], trained, seen["size"]  # type: ignore[return-value]


def test_a_corrupt_block_or_window_is_refused_never_decoded_past_its_size() -> None:
    rng = random.Random(5)
    bare, context, trained, size = _frame_parts(SigmaCodec(secret=_SECRET), _session(rng, 3))
    with pytest.raises(CorruptFrameError, match="too much memory"):
        _zstd_block.decompress_after(bytes([31 << 3]) + bare[1:], size, [context], trained)  # a 2 TiB window
    with pytest.raises(CorruptFrameError, match="a zstd block of"):
        _zstd_block.decompress_after(bare, 1 << 17 | 1, [context], trained)  # more than a block holds
    with pytest.raises(CorruptFrameError, match="decodes to|does not decode"):
        _zstd_block.decompress_after(bare, size - 1, [context], trained)  # not the size it decodes to
    with pytest.raises(CorruptFrameError, match="does not decode"):
        _zstd_block.decompress_after(bare[:1] + b"\xff" * (len(bare) - 1), size, [context], trained)
    with pytest.raises(CorruptFrameError, match="without content"):
        _zstd_block.decompress_after(bare[:1], size, [context], trained)


def test_a_context_shorter_than_the_tables_repeat_offsets_is_refused_as_before() -> None:
    header, _ = dictionary_header(_TRAINED)
    at = len(header) - 12  # the three repeat offsets end the header (RFC 8878 section 5)
    far = _TRAINED[:at] + (100).to_bytes(4, "little") + _TRAINED[at + 4 :]
    assert _zstd.context_floor(far, tables=True) == 100
    assert _zstd.context_dict([b"x" * 99], far, tables=True)[0] is None
    assert _zstd.context_dict([b"x" * 100], far, tables=True)[0] is not None
    assert _zstd.context_floor(far) == 0  # after the whole dictionary's content, any context
    assert _zstd.context_floor(None) == _zstd.MIN_RAW_DICT
    assert _zstd.context_dict([b"x" * 7], None)[0] is None


def test_threads_share_the_dictionarys_tables() -> None:
    rng = random.Random(9)
    codec = SigmaCodec(secret=_SECRET)
    codec.dictionaries.add(sigmalang.Dictionary(_TRAINED), tenant="t")
    sessions = [_session(rng, 4) for _ in range(6)]
    frames = [(codec.compress(m, tenant="t", stream=i).frame, m) for i, s in enumerate(sessions) for m in s]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def decode_all() -> None:
        try:
            start.wait()
            for _ in range(5):
                for frame, message in frames:
                    assert codec.decompress(frame, tenant="t") == message
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=decode_all) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []


def test_more_dictionaries_than_the_cache_holds_still_decode() -> None:
    rng = random.Random(13)
    made: list[tuple[Callable[[bytes], bytes], bytes, bytes]] = []
    base = bytearray(_TRAINED)
    for i in range(_zstd_block._MAX_DDICTS + 3):
        data = bytes(base[:-8]) + i.to_bytes(8, "little")  # same tables, different content (and id)
        codec = SigmaCodec(secret=_SECRET, config=sigmalang.SigmaConfig(generic_dictionary=False))
        codec.dictionaries.add(sigmalang.Dictionary(data), tenant="t")
        turns = _session(rng, 2)
        frames = [codec.compress(m, tenant="t", stream="s").frame for m in turns]
        made.append((lambda f, c=codec: c.decompress(f, tenant="t"), frames[-1], turns[-1]))
    assert len(_zstd_block._ddicts) <= _zstd_block._MAX_DDICTS
    for decode, frame, message in made:
        assert decode(frame) == message

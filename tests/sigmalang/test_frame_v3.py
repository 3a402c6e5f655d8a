"""Frame version 3 (base message by manifest, prefix and suffix, MAC and content hash); version 2 decodes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sigmalang
from sigmalang import CorruptFrameError, FrameError, MemoryRSUStore, MissingRSUError, SigmaCodec
from sigmalang._base import common_prefix, common_suffix, manifest, parse_manifest
from sigmalang.chunking import chunk_spans, rsu_id
from sigmalang.frame import F_BASE, F_RAW, MAC_BYTES, TRAILER_BYTES, encode_frame_v3, inspect_frame

V2_FRAMES = Path(__file__).parent / "data" / "v2_frames.hex"
SECRET = bytes(range(32))


def _messages() -> list[bytes]:
    """The messages of `data/v2_frames.hex` (the previous release's frames: stream "s", tenant "acme")."""
    rng = random.Random(11)
    words = [b"refund", b"parcel", b"courier", b"invoice", b"warehouse", b"tracking", b"customs", b"label"]
    words += [b"policy", b"days"]
    base = b"".join(b"system: policy %d says refunds within %d days.\n" % (i, i % 30) for i in range(120))
    return [base, base + b" ".join(rng.choice(words) for _ in range(400)) + b".\n"]


def version_2_frames() -> tuple[SigmaCodec, list[bytes], list[bytes]]:
    """A codec whose store holds what the previous release's store held, and that release's frames.

    The frames (version 2, written by ``SigmaCodec`` before version 3) are: the two messages without a
    dictionary, then with the generic one. The store is rebuilt the way that release filled it: each
    message's chunks in order (it stored no manifests), so the sequence numbers are the same.
    """
    codec = SigmaCodec(secret=SECRET)
    messages = _messages()
    for message in messages:
        view = memoryview(message)
        chunks = [bytes(view[o : o + n]) for o, n in chunk_spans(view, codec.config)]
        codec.store.put_many("acme", [(rsu_id(c), c) for c in chunks])
    frames = [bytes.fromhex(line) for line in V2_FRAMES.read_text().split()]
    return codec, frames, messages


def test_version_2_frames_of_the_previous_release_still_decode() -> None:
    codec, frames, messages = version_2_frames()
    assert [f[2] for f in frames] == [2, 2, 2, 2]
    assert [codec.decompress(f, tenant="acme") for f in frames] == messages + messages
    assert codec.inspect(frames[3], tenant="acme").context == (1, 2, 3, 4)
    with pytest.raises(sigmalang.FrameAuthenticationError):
        codec.decompress(frames[1], tenant="globex")
    corrupted = bytearray(frames[3])
    corrupted[20] ^= 4
    with pytest.raises(FrameError):
        codec.decompress(bytes(corrupted), tenant="acme")


def _turns(rng: random.Random, n: int) -> list[bytes]:
    words = "agent tool schema result retry vector tenant token cache the of to and plan step".split()
    system = " ".join(rng.choices(words, k=600)).encode()
    history = [system]
    out = []
    for turn in range(n):
        history.append(" ".join(rng.choices(words, k=rng.randint(5, 80))).encode())
        header = b"turn %d at %d\n" % (turn, rng.randrange(10**6))  # a per-turn header: no common prefix
        window = history[:1] + history[-3:] if rng.random() < 0.5 else history  # a sliding window
        out.append(header + b"\n".join(window) + b"\ntools: search, fetch\n")
    return out


def test_a_later_turn_names_its_base_and_codes_only_what_is_new() -> None:
    codec = SigmaCodec()
    system = b"".join(b"system rule %d: answer from the documents, cite them.\n" % i for i in range(150))
    first = codec.compress(system + b"user: hello\n", tenant="t", stream="s")
    second = codec.compress(system + b"user: hello\nassistant: hi\nuser: refunds?\n", tenant="t", stream="s")
    info = codec.inspect(second.frame, tenant="t")
    assert info.version == 3 and info.flags & F_BASE and info.flags & F_RAW  # 29 new bytes: stored
    assert info.base_prefix == len(system) + len(b"user: hello\n") and info.base_suffix == 0
    assert info.literal_size == len(b"assistant: hi\nuser: refunds?\n")
    first_info = codec.inspect(first.frame, tenant="t")
    assert info.base is not None and info.base not in first_info.context
    assert set(info.context) >= {info.base}  # the manifest is held too; then the base's RSUs
    assert len(second.frame) < 60  # header, base, prefix, the new 29 bytes (coded or stored), hash and MAC
    assert codec.decompress(second.frame, tenant="t").endswith(
        b"user: hello\nassistant: hi\nuser: refunds?\n"
    )


@given(st.integers(0, 2**32 - 1), st.integers(2, 7))
def test_round_trip_over_edited_turns_in_streams(seed: int, n: int) -> None:
    """Inserted, replaced, windowed and headed turns, in two interleaved streams, decode exactly."""
    rng = random.Random(seed)
    codec = SigmaCodec()
    frames = []
    for stream in ("a", "b"):
        for turn in _turns(rng, n):
            edited = bytearray(turn)
            if rng.random() < 0.3:  # an edit anywhere (also inside the common prefix of the next turn)
                pos = rng.randrange(len(edited))
                edited[pos : pos + rng.randint(0, 40)] = rng.randbytes(rng.randint(0, 40))
            frames.append((bytes(edited), codec.compress(bytes(edited), tenant="t", stream=stream).frame))
    for message, frame in frames:
        assert codec.decompress(frame, tenant="t") == message
    assert any(inspect_frame(f).flags & F_BASE for _, f in frames)


@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_common_prefix_and_suffix_are_the_longest(a: bytes, b: bytes) -> None:
    p = common_prefix(a, b)
    assert a[:p] == b[:p] and (p == min(len(a), len(b)) or a[p] != b[p])
    limit = min(len(a), len(b)) - p
    s = common_suffix(a, b, limit)
    assert s <= limit and a[len(a) - s :] == b[len(b) - s :]
    assert s == limit or a[len(a) - s - 1] != b[len(b) - s - 1]


@given(st.lists(st.integers(1, 2**40), max_size=300))
def test_manifests_round_trip(seqs: list[int]) -> None:
    assert parse_manifest(manifest(seqs)) == seqs


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\xce\xa3",
        b"not a manifest",
        b"\xce\xa3m\x05\x02",
        b"\xce\xa3m\x01\x02\x00",
        b"\xce\xa3m\x01\x01",
    ],
)
def test_a_broken_manifest_is_a_corrupt_frame(blob: bytes) -> None:
    with pytest.raises(CorruptFrameError):
        parse_manifest(blob)


def _stream(codec: SigmaCodec) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(4)
    turns = [t for t in _turns(rng, 4)]
    frames = [codec.compress(t, tenant="t", stream="s").frame for t in turns]
    return turns, frames


def test_an_evicted_manifest_is_a_missing_rsu() -> None:
    codec = SigmaCodec()
    turns, frames = _stream(codec)
    info = codec.inspect(frames[-1], tenant="t")
    assert info.base is not None
    for frame in frames:
        codec.release(frame, tenant="t")
    codec.store.collect_garbage("t")
    with pytest.raises(MissingRSUError) as caught:
        codec.decompress(frames[-1], tenant="t")
    assert caught.value.seq == info.base
    assert codec.inspect(frames[-1], tenant="t").context[-1] == info.base  # listed, not expanded


class _Restored(MemoryRSUStore):
    """A store whose content changed under the same sequence numbers (reset, restored from elsewhere)."""

    altered: int | None = None

    def get_many(self, tenant: str, seqs: Sequence[int]) -> list[bytes]:
        out = super().get_many(tenant, seqs)
        return [
            bytes([c[0] ^ 1]) + c[1:] if s == self.altered and c and not c.startswith(b"\xce\xa3m") else c
            for s, c in zip(seqs, out, strict=True)
        ]


def test_a_context_changed_under_the_same_numbers_fails_the_content_hash() -> None:
    store = _Restored()
    codec = SigmaCodec(store=store)
    turns, frames = _stream(codec)
    info = codec.inspect(frames[-1], tenant="t")
    assert info.base is not None and info.base_prefix > 0
    store.altered = info.context[info.context.index(info.base) + 1]  # the base's first RSU
    with pytest.raises(CorruptFrameError, match="content hash"):
        codec.decompress(frames[-1], tenant="t")


def test_every_truncation_and_bit_flip_of_a_v3_frame_with_a_base_is_rejected() -> None:
    codec = SigmaCodec()
    _, frames = _stream(codec)
    frame = frames[-1]
    assert inspect_frame(frame).flags & F_BASE
    for cut in range(len(frame)):
        with pytest.raises(FrameError):
            codec.decompress(frame[:cut], tenant="t")
    for pos in range(len(frame)):
        for bit in (0, 5):
            corrupted = bytearray(frame)
            corrupted[pos] ^= 1 << bit
            with pytest.raises(FrameError):
                codec.decompress(bytes(corrupted), tenant="t")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"generic": True, "dict_id": 5}, "GENERIC"),
        ({"tables": True}, "TABLES"),
        ({"raw": True, "generic": True}, "stored"),
        ({"base_prefix": 1}, "base"),
        ({"base": 1, "base_prefix": 3, "base_suffix": 3}, "exceed"),
    ],
)
def test_contradictory_v3_fields_are_refused(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "key": bytes(32),
        "content_size": 5,
        "content_hash": 0,
        "payload": b"12345",
        "raw": False,
        "dict_id": None,
        "generic": False,
        "tables": False,
        "context": (),
    } | kwargs
    with pytest.raises(ValueError, match=match):
        encode_frame_v3(**args)  # type: ignore[arg-type]


def test_a_v3_frame_is_smaller_than_its_v2_predecessor() -> None:
    """The fixed cost: no dictionary id for the generic dictionary, 12 trailer bytes instead of 16."""
    codec, v2, messages = version_2_frames()
    fresh = SigmaCodec(secret=SECRET)
    v3 = [fresh.compress(m, tenant="acme", stream="s").frame for m in messages]
    assert len(v3[0]) <= len(v2[2]) - 4  # first message, generic dictionary: no id, smaller trailer
    assert len(v3[1]) < len(v2[3])
    assert TRAILER_BYTES == 12 and MAC_BYTES == 8
    assert not inspect_frame(v3[1]).flags & F_RAW
    assert [fresh.decompress(f, tenant="acme") for f in v3] == messages


def test_base_frames_on_every_store_release_every_reference(store: sigmalang.RSUStore) -> None:
    """Manifests are RSUs like the others: held by the frames naming them, freed with them."""
    codec = SigmaCodec(store=store)
    turns, frames = _stream(codec)
    assert sum(bool(inspect_frame(f).flags & F_BASE) for f in frames) == len(frames) - 1
    assert [codec.decompress(f, tenant="t") for f in frames] == turns
    assert store.stats("t").referenced > 0
    for frame in frames:
        codec.release(frame, tenant="t")
    assert store.stats("t").referenced == 0  # every reference the frames held, manifests' included
    codec.store.collect_garbage("t")
    assert store.stats("t").rsus == 0

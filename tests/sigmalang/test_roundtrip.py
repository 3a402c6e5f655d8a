from __future__ import annotations

import json
import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sigmalang
from sigmalang import MissingDictionaryError, MissingRSUError, RSUStore, SigmaCodec

FIXED = [
    b"",
    b"\x00",
    b"a",
    bytes(range(256)),
    os.urandom(70_000),
    b"\x00" * 100_000,
    "ΣLANG — ünïcödé ✓ 日本語 🙂".encode(),
    json.dumps({"role": "system", "content": "You are a careful agent. " * 200}).encode(),
]


@pytest.mark.parametrize("data", FIXED, ids=lambda d: f"{len(d)}B")
def test_one_shot_round_trip_is_byte_exact(data: bytes) -> None:
    assert sigmalang.decompress(sigmalang.compress(data)) == data


@given(st.binary(max_size=20_000))
def test_one_shot_round_trip_property(data: bytes) -> None:
    assert sigmalang.decompress(sigmalang.compress(data)) == data


@given(st.text(max_size=3_000))
def test_unicode_text_round_trip_property(text: str) -> None:
    data = text.encode("utf-8", errors="surrogatepass")
    assert sigmalang.decompress(sigmalang.compress(data)) == data


def test_incompressible_input_grows_by_at_most_a_few_bytes() -> None:
    data = os.urandom(50_000)
    assert len(sigmalang.compress(data)) <= len(data) + 20


def test_huge_input_round_trip_with_store() -> None:
    rng = random.Random(7)
    block = rng.randbytes(1 << 20)
    data = block + b"separator" + block  # 2 MiB with an internal repeat
    codec = SigmaCodec(config=sigmalang.SigmaConfig(context_max_bytes=4 << 20))
    first = codec.compress(data)
    assert codec.decompress(first.frame) == data
    second = codec.compress(data)
    assert codec.decompress(second.frame) == data
    assert second.report.bytes_out < len(data) // 100  # the whole input is now in the store


@given(st.lists(st.binary(min_size=0, max_size=6_000), min_size=1, max_size=6), st.binary(max_size=3_000))
def test_codec_round_trip_over_related_messages(parts: list[bytes], suffix: bytes) -> None:
    codec = SigmaCodec()
    frames = []
    history = b""
    for part in parts:
        history += part
        message = history + suffix
        frames.append((message, codec.compress(message, stream="s").frame))
    for message, frame in frames:
        assert codec.decompress(frame) == message


def session_turns(turns: int) -> list[bytes]:
    rng = random.Random(3)
    words = "agent tool schema result retry vector tenant token cache the of to and plan step".split()
    system = " ".join(rng.choices(words, k=900))
    tools = [{"name": f"tool_{i}", "description": " ".join(rng.choices(words, k=60))} for i in range(12)]
    history: list[dict[str, str]] = [{"role": "system", "content": system}]
    out = []
    for _ in range(turns):
        history.append({"role": "user", "content": " ".join(rng.choices(words, k=40))})
        out.append(json.dumps({"messages": history, "tools": tools}).encode())
        history.append({"role": "assistant", "content": " ".join(rng.choices(words, k=50))})
    return out


def test_repeated_session_content_is_referenced(store: RSUStore) -> None:
    codec = SigmaCodec(store=store)
    turns = session_turns(10)
    results = [codec.compress(t, tenant="acme", stream="session-1") for t in turns]
    assert results[0].report.glyphs == 0
    later = results[1:]
    assert all(r.report.glyphs > 0 for r in later)
    gross = sum(r.report.dedup_saved + r.report.dictionary_saved + r.report.entropy_saved for r in later)
    assert sum(r.report.dedup_saved for r in later) / gross > 0.6
    total_in = sum(r.report.bytes_in for r in later)
    total_out = sum(r.report.bytes_out for r in later)
    assert total_in / total_out > 20
    one_shot = sum(len(sigmalang.compress(t)) for t in turns[1:])
    assert total_out * 5 < one_shot
    for turn, result in zip(turns, results, strict=True):
        assert codec.decompress(result.frame, tenant="acme") == turn


def test_reports_add_up_exactly() -> None:
    codec = SigmaCodec()
    for turn in session_turns(4):
        r = codec.compress(turn, tenant="acme", stream="s").report
        assert r.bytes_in - r.bytes_out == r.dedup_saved + r.dictionary_saved + r.entropy_saved - r.framing


def test_a_frame_decodes_only_for_its_tenant() -> None:
    codec = SigmaCodec()
    turns = session_turns(2)
    codec.compress(turns[0], tenant="alice", stream="s")
    frame = codec.compress(turns[1], tenant="alice", stream="s").frame
    assert codec.decompress(frame, tenant="alice") == turns[1]
    with pytest.raises(sigmalang.FrameAuthenticationError, match="another tenant"):
        codec.decompress(frame, tenant="bob")
    with pytest.raises(sigmalang.FrameAuthenticationError):
        codec.release(frame, tenant="bob")
    with pytest.raises(sigmalang.FrameAuthenticationError):  # same tenant name, another service secret
        SigmaCodec(store=codec.store).decompress(frame, tenant="alice")


def test_a_frame_forged_to_name_another_tenants_rsus_fails() -> None:
    """Bob edits his own frame to point at sequence numbers Alice's store holds: the MAC refuses it."""
    codec = SigmaCodec()
    secret_doc = b"".join(b"alice's secret paragraph %d: balance %d\n" % (i, i * 31) for i in range(200))
    codec.compress(secret_doc, tenant="alice")
    bob = codec.compress(b"bob says hello " * 10, tenant="bob").frame
    info = codec.inspect(bob, tenant="bob")
    forged = sigmalang.frame.encode_store_frame(
        key=b"\0" * 32, content_size=info.content_size, payload=b"x", raw=False, dict_id=None, context=(1, 2)
    )
    for tenant in ("alice", "bob"):
        with pytest.raises(sigmalang.FrameAuthenticationError):
            codec.decompress(forged, tenant=tenant)
    flipped = bytearray(bob)
    flipped[5] ^= 1
    with pytest.raises(sigmalang.FrameError):
        codec.decompress(bytes(flipped), tenant="bob")


def test_content_is_never_shared_between_tenants() -> None:
    codec = SigmaCodec()
    turn = session_turns(1)[0]
    first = codec.compress(turn, tenant="alice")
    again_alice = codec.compress(turn, tenant="alice")
    first_bob = codec.compress(turn, tenant="bob")
    assert again_alice.report.referenced_bytes == len(turn)
    assert first_bob.report.referenced_bytes == 0 and first_bob.report.glyphs == 0
    assert first_bob.report.bytes_out >= first.report.bytes_out - 16  # bob gains nothing from alice


def test_an_evicted_context_fails_clearly_never_wrong_bytes() -> None:
    turns = session_turns(3)
    codec = SigmaCodec(config=sigmalang.SigmaConfig(store_max_bytes=len(turns[0]) + 4096))
    codec.compress(turns[0], tenant="acme", stream="s")
    second = codec.compress(turns[1], tenant="acme", stream="s")
    assert second.report.glyphs > 0
    other = random.Random(5).randbytes(len(turns[0]) + 8192)
    codec.compress(other, tenant="acme", stream="other")  # evicts what the second frame names
    assert codec.store.stats("acme").evicted > 0
    with pytest.raises(MissingRSUError, match="evicted") as caught:
        codec.decompress(second.frame, tenant="acme")
    assert caught.value.seq in codec.inspect(second.frame, tenant="acme").context
    assert isinstance(caught.value, LookupError)


def test_a_store_without_the_context_fails_clearly() -> None:
    secret = b"k" * 32
    codec = SigmaCodec(secret=secret)
    turns = session_turns(2)
    codec.compress(turns[0], tenant="acme", stream="s")
    frame = codec.compress(turns[1], tenant="acme", stream="s").frame
    with pytest.raises(MissingRSUError):  # same secret, empty store
        SigmaCodec(secret=secret).decompress(frame, tenant="acme")
    with pytest.raises(sigmalang.FrameError):
        sigmalang.decompress(frame)  # a store-backed frame needs its codec and tenant


def test_frame_needs_its_dictionary() -> None:
    samples = [
        json.dumps({"id": i, "type": "task.result", "text": f"value {i * 7}"}).encode() for i in range(300)
    ]
    dictionary = sigmalang.train_dictionary(samples, size_bytes=4096)
    assert dictionary is not None
    message = json.dumps({"id": 5000, "type": "task.result", "text": "value 35000"}).encode()
    frame = sigmalang.compress(message, dictionary=dictionary)
    assert sigmalang.inspect_frame(frame).dict_id == dictionary.dict_id
    assert sigmalang.decompress(frame, dictionaries=[dictionary]) == message
    with pytest.raises(MissingDictionaryError) as caught:
        sigmalang.decompress(frame)
    assert caught.value.dict_id == dictionary.dict_id


def test_output_limit_is_enforced() -> None:
    frame = sigmalang.compress(b"x" * 10_000)
    with pytest.raises(sigmalang.OutputTooLargeError):
        sigmalang.decompress(frame, max_output_bytes=9_999)
    assert sigmalang.decompress(frame, max_output_bytes=10_000) == b"x" * 10_000


def test_a_long_turn_keeps_its_head_in_the_context() -> None:
    """A turn above 256 KiB still finds its first bytes (system prompt, tools) in the previous turn."""
    rng = random.Random(3)
    head, history = rng.randbytes(100_000), rng.randbytes(300_000)  # incompressible: only references help
    codec = SigmaCodec()
    first = head + history
    second = first + rng.randbytes(1_000)
    codec.compress(first, tenant="acme", stream="long")
    result = codec.compress(second, tenant="acme", stream="long")
    assert result.report.bytes_out < 4_000  # the new kilobyte, the frame and its context runs
    assert codec.decompress(result.frame, tenant="acme") == second


def test_a_new_conversation_is_compressed_against_the_tenants_latest_message() -> None:
    """A session's first turn re-sends what the tenant's previous session sent, edited throughout."""
    rng = random.Random(11)
    sent = bytes(b for b in rng.randbytes(24_000) if b not in b"\n.!?;:\\")[:20_000]  # no anchors either
    edited = bytearray(sent)
    for pos in range(0, len(edited), 200):  # no chunk and no sentence repeats exactly
        edited[pos] ^= 0xFF
    codec = SigmaCodec()
    codec.compress(sent, tenant="acme", stream="session-1")
    first = codec.compress(bytes(edited), tenant="acme", stream="session-2")
    assert first.report.bytes_out < 4_000
    assert codec.decompress(first.frame, tenant="acme") == bytes(edited)
    other = codec.compress(bytes(edited), tenant="globex", stream="session-1")  # never another tenant's
    assert other.report.bytes_out > 19_000

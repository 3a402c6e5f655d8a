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
    codec = SigmaCodec()
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


def test_repeated_session_content_becomes_glyphs(store: RSUStore) -> None:
    codec = SigmaCodec(store=store)
    turns = session_turns(10)
    results = [codec.compress(t, stream="session-1") for t in turns]
    assert results[0].report.glyphs == 0
    later = results[1:]
    assert all(r.report.glyphs > 0 for r in later)
    gross = sum(r.report.dedup_saved + r.report.dictionary_saved + r.report.entropy_saved for r in later)
    assert sum(r.report.dedup_saved for r in later) / gross > 0.6
    total_in = sum(r.report.bytes_in for r in later)
    total_out = sum(r.report.bytes_out for r in later)
    assert total_in / total_out > 10
    one_shot = sum(len(sigmalang.compress(t)) for t in turns[1:])
    assert total_out * 3 < one_shot
    for turn, result in zip(turns, results, strict=True):
        assert codec.decompress(result.frame) == turn


def test_decompress_without_the_rsus_names_the_missing_hash() -> None:
    codec = SigmaCodec()
    turns = session_turns(2)
    codec.compress(turns[0])
    frame = codec.compress(turns[1]).frame
    info = sigmalang.inspect_frame(frame)
    assert info.rsu_ids
    with pytest.raises(MissingRSUError) as caught:
        SigmaCodec().decompress(frame)
    assert caught.value.rsu_id in info.rsu_ids
    assert caught.value.rsu_id.hex() in str(caught.value)
    with pytest.raises(LookupError):
        sigmalang.decompress(frame)


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

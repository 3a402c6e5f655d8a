"""`SigmaCodec`'s in-memory hints (each stream's previous message, each tenant's latest message and
anchor index) stay within their bounds, least recently used out, and a lost hint never breaks a frame."""

from __future__ import annotations

import random

import pytest

from sigmalang import SigmaCodec
from sigmalang import codec as codec_module


def _message(seed: int) -> bytes:
    rng = random.Random(seed)
    words = [f"word{rng.randrange(5000)}" for _ in range(600)]
    return " ".join(words).encode() + b". The end of the message.\n"


def test_streams_beyond_the_bound_drop_the_least_recently_used_and_still_round_trip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec_module, "_MAX_STREAMS", 2)
    codec = SigmaCodec()
    frames = []
    for i, stream in enumerate(("s1", "s2", "s1", "s3")):  # s1 used again: s2 is the least recently used
        message = _message(i)
        frames.append((codec.compress(message, tenant="acme", stream=stream).frame, message))
    assert set(codec._streams) == {("acme", "s1"), ("acme", "s3")}
    again = _message(1) + _message(9)  # s2 goes on without its hint: a valid frame, decoded exactly
    frames.append((codec.compress(again, tenant="acme", stream="s2").frame, again))
    assert set(codec._streams) == {("acme", "s3"), ("acme", "s2")}
    assert [codec.decompress(frame, tenant="acme") for frame, _ in frames] == [m for _, m in frames]


def test_tenants_beyond_the_bound_drop_the_least_recently_used_index_and_latest_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec_module, "_MAX_TENANT_INDEXES", 2)
    codec = SigmaCodec()
    for i, tenant in enumerate(("a", "b", "a")):
        codec.compress(_message(i), tenant=tenant, stream="s")
    index_a = codec._indexes["a"]  # (reading it makes "a" the most recently used: it is already)
    codec.compress(_message(3), tenant="c", stream="s")
    assert set(codec._indexes) == {"a", "c"} and set(codec._latest) == {"a", "c"}
    frame = codec.compress(_message(4), tenant="b", stream="s").frame  # b starts over: still exact
    assert codec.decompress(frame, tenant="b") == _message(4)
    assert set(codec._indexes) == {"c", "b"} and set(codec._latest) == {"c", "b"}
    codec.compress(_message(5), tenant="a", stream="s")
    assert codec._indexes["a"] is not index_a  # "a" was dropped, so it starts a new index

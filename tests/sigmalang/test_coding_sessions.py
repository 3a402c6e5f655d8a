"""ΣLANG on the coding-agent session shape (`benchmarks/sigma_corpus_coding.py`), byte for byte.

The third generator's sessions differ from the two the codec was tuned on: code rather than prose,
JSON tool calls and results (JSON inside JSON for one envelope), pretty-printed and key-sorted
envelopes, histories compacted at the front (a turn's previous message is then no prefix of it) and
non-ASCII prose. Every turn must decode to its exact bytes through a codec that sees the sessions as
the service does (one stream per session, one tenant per repository).
"""

from __future__ import annotations

import json

import pytest

import sigmalang
from benchmarks.sigma_corpus import Session
from benchmarks.sigma_corpus_coding import build_coding_sessions


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    # 3 tenants: one per envelope (Ollama, Anthropic, OpenAI); turns long enough to be compacted
    return build_coding_sessions(3, tenants=3, sessions_per_tenant=2, turns=(7, 9))


def test_the_draw_has_the_shapes_it_promises(sessions: list[Session]) -> None:
    firsts = [s.turns[0] for s in sessions]
    assert any(t.startswith(b'{\n  "model"') for t in firsts), "an Ollama envelope, pretty-printed"
    assert any(t.startswith(b'{"max_tokens":') for t in firsts), "an Anthropic envelope, keys sorted"
    openai = [t for t in firsts if t.startswith(b'{"model": ')]
    assert openai, "an OpenAI envelope"
    for turn in (t for s in sessions for t in s.turns):
        json.loads(turn)  # every request is one JSON document
    compacted = [
        (a, b) for s in sessions for a, b in zip(s.turns, s.turns[1:], strict=False) if b"Summary of the" in b
    ]
    assert compacted, "some histories are summarised"
    assert any(not b.startswith(a[: len(a) // 2]) for a, b in compacted), "a compacted turn drops its front"


@pytest.mark.parametrize("generic", [True, False], ids=["generic-dictionary", "no-dictionary"])
def test_every_turn_round_trips_byte_exact_with_its_base(sessions: list[Session], generic: bool) -> None:
    codec = sigmalang.SigmaCodec(config=sigmalang.SigmaConfig(generic_dictionary=generic))
    frames = [
        (s.tenant, turn, codec.compress(turn, tenant=s.tenant, stream=s.session_id).frame)
        for s in sessions
        for turn in s.turns
    ]
    for tenant, turn, frame in frames:
        assert codec.decompress(frame, tenant=tenant) == turn
    bases = sum(bool(codec.inspect(f, tenant=t).flags & sigmalang.FrameFlags.BASE) for t, _, f in frames)
    assert bases >= len(frames) - 2 * len(sessions), "later turns are coded against their base"
    total_in = sum(len(turn) for _, turn, _ in frames)
    total_out = sum(len(f) for _, _, f in frames)
    assert total_in / total_out > 5, "sessions re-send their history: ΣLANG references it"

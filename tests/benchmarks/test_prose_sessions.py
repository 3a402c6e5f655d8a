"""The fourth session generator (`benchmarks/sigma_corpus_prose.py`): what its draws promise.

Deterministic per seed; every turn one JSON request of the envelope its tenant uses (OpenAI chat
completions, Anthropic Messages, Ollama ``/api/chat`` as a Go client writes it); each turn of a session
re-sends the previous one's messages and adds to them; retrieved passages are text of files installed
in the venv; and ΣLANG gives every turn back byte for byte.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import pytest

import sigmalang
from benchmarks.sigma_corpus import Session
from benchmarks.sigma_corpus_prose import build_prose_sessions
from benchmarks.sigma_draw import TRAINING_SEED_OFFSET, add_draw_arguments, draw
from benchmarks.sigma_prose_apps import APPS, source_texts


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    # 6 tenants: every app once, every envelope twice
    return build_prose_sessions(5, tenants=6, sessions_per_tenant=3, turns=(3, 8))


def envelope_of(turn: bytes) -> str:
    if turn.startswith(b'{"model": '):
        return "openai"
    body = json.loads(turn)
    return "anthropic" if "max_tokens" in body else "ollama"


def messages_of(turn: bytes) -> list[dict[str, Any]]:
    body = json.loads(turn)
    messages: list[dict[str, Any]] = body["messages"]
    return messages


def text_hits(block: str) -> list[tuple[str, str]]:
    """``[n] source — title`` then the passage, for each hit of a plain-text context block."""
    out = []
    for hit in re.split(r"\n\n(?=\[\d+\] \S+ \u2014 )", block):
        header, text = hit.split("\n", 1)
        assert re.match(r"\[\d+\] \S+ \u2014 ", header), header
        out.append((header.split(" ")[1], text))
    return out


def test_the_same_seed_draws_the_same_bytes_and_another_seed_others() -> None:
    first = build_prose_sessions(3, tenants=3, sessions_per_tenant=2)
    assert first == build_prose_sessions(3, tenants=3, sessions_per_tenant=2)
    assert [s.turns for s in first] != [
        s.turns for s in build_prose_sessions(4, tenants=3, sessions_per_tenant=2)
    ]


def test_sessions_have_the_turns_asked_for(sessions: list[Session]) -> None:
    assert len(sessions) == 18
    assert all(3 <= len(s.turns) <= 8 for s in sessions)
    assert len({s.tenant for s in sessions}) == 6
    with pytest.raises(ValueError, match="turns must be 1 <= min <= max"):
        build_prose_sessions(1, turns=(5, 2))


def test_every_turn_is_a_request_of_its_tenants_envelope(sessions: list[Session]) -> None:
    by_tenant: dict[str, set[str]] = {}
    for s in sessions:
        for turn in s.turns:
            by_tenant.setdefault(s.tenant, set()).add(envelope_of(turn))
    assert all(len(envelopes) == 1 for envelopes in by_tenant.values()), "one envelope per tenant"
    assert {e for envs in by_tenant.values() for e in envs} == {"openai", "anthropic", "ollama"}
    for s in sessions:
        for turn in s.turns:
            body = json.loads(turn)
            kind = envelope_of(turn)
            if kind == "openai":
                assert turn == json.dumps(body).encode(), "as Python's json.dumps writes it (\\uXXXX escapes)"
                assert body["messages"][0]["role"] == "system"
                assert all(t["type"] == "function" and "parameters" in t["function"] for t in body["tools"])
                calls = {c["id"] for m in body["messages"] for c in m.get("tool_calls") or ()}
                for m in body["messages"]:
                    for c in m.get("tool_calls") or ():
                        json.loads(c["function"]["arguments"])  # arguments are a JSON string
                    if m["role"] == "tool":
                        assert m["tool_call_id"] in calls
                        assert all("text" in hit for hit in json.loads(m["content"]))  # JSON inside JSON
            elif kind == "anthropic":
                assert turn == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), "compact"
                assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
                assert all("input_schema" in t for t in body["tools"])
                roles = [m["role"] for m in body["messages"]]
                assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), (
                    "user and assistant alternate"
                )
                uses = {
                    b["id"]
                    for m in body["messages"]
                    if isinstance(m["content"], list)
                    for b in m["content"]
                    if b["type"] == "tool_use"
                }
                results = [
                    b
                    for m in body["messages"]
                    if isinstance(m["content"], list)
                    for b in m["content"]
                    if b["type"] == "tool_result"
                ]
                assert all(r["tool_use_id"] in uses for r in results)
            else:
                assert not set(turn) & set(b"<>&"), "Go's encoding/json escapes <, > and &"
                compact = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
                assert turn.replace(b"\\u003c", b"<").replace(b"\\u003e", b">").replace(b"\\u0026", b"&") == (
                    compact.encode()
                )
                for tool in body["tools"]:
                    params = tool["function"]["parameters"]
                    assert list(params) == sorted(params), "Go marshals maps with sorted keys"
                assert body["stream"] is False
    raw_utf8 = [t for s in sessions for t in s.turns if envelope_of(t) != "openai" and not t.isascii()]
    assert raw_utf8, "the Anthropic and Ollama clients send non-ASCII text as raw UTF-8"


def test_each_turn_resends_the_previous_turns_messages_and_adds_to_them(sessions: list[Session]) -> None:
    for s in sessions:
        for before, after in zip(s.turns, s.turns[1:], strict=False):
            old, new = json.loads(before), json.loads(after)
            assert new["messages"][: len(old["messages"])] == old["messages"]
            assert len(new["messages"]) > len(old["messages"])
            assert len(after) > len(before)
            assert new["tools"] == old["tools"]
            assert {k: v for k, v in new.items() if k != "messages"} == {
                k: v for k, v in old.items() if k != "messages"
            }


def test_retrieved_passages_are_text_of_files_installed_in_the_venv(sessions: list[Session]) -> None:
    texts = {name: text for app in APPS for name, _, text in source_texts(app.name)}
    for app in APPS:
        assert all(
            path.is_file() and path.read_text(errors="replace") == text
            for _, path, text in source_texts(app.name)
        )
    checked = 0
    for s in sessions:
        for m in messages_of(s.turns[-1]):
            content = m["content"]
            if m["role"] == "tool" and "tool_call_id" in m:  # OpenAI: a JSON list of hits
                hits = [(h["source"], h["text"]) for h in json.loads(content)]
            elif isinstance(content, list) and content[0]["type"] == "tool_result":  # Anthropic
                hits = [(h["source"], h["text"]) for h in json.loads(content[0]["content"])]
            elif m["role"] == "tool" or (m["role"] == "user" and content.startswith("Context:\n")):
                hits = text_hits(content.removeprefix("Context:\n").split("\n\nQuestion: ")[0])
            else:
                continue
            for source, text in hits:
                paragraphs = text.split("\n\n")
                assert all(p in texts[source] for p in paragraphs), (source, text[:80])
                checked += 1
    assert checked > 60


def test_draw_builds_the_prose_corpus_and_its_training_sessions_from_another_seed() -> None:
    parser = argparse.ArgumentParser()
    add_draw_arguments(parser)
    args = parser.parse_args(
        ["--corpus", "prose", "--seed", "9", "--tenants", "2", "--sessions-per-tenant", "2"]
    )
    assert draw(args) == build_prose_sessions(9, tenants=2, sessions_per_tenant=2, turns=(2, 12))
    training = draw(args, training=True)
    assert training == build_prose_sessions(
        9 + TRAINING_SEED_OFFSET, tenants=2, sessions_per_tenant=4, turns=(2, 12)
    )


def test_interleaved_sessions_round_trip_byte_exact_through_the_default_codec(
    sessions: list[Session],
) -> None:
    """A tenant's sessions arrive interleaved (concurrent users), as the service's default codec sees them."""
    codec = sigmalang.SigmaCodec()
    pending = [list(s.turns) for s in sessions]
    frames: list[tuple[str, bool, bytes, bytes]] = []  # tenant, a later turn of its session, turn, frame
    while any(pending):
        for s, turns in zip(sessions, pending, strict=True):
            if turns:
                later = len(turns) < len(s.turns)
                turn = turns.pop(0)
                frame = codec.compress(turn, tenant=s.tenant, stream=s.session_id).frame
                frames.append((s.tenant, later, turn, frame))
    for tenant, _, turn, frame in reversed(frames):
        assert codec.decompress(frame, tenant=tenant) == turn
    for tenant, later, _, frame in frames:
        if later:
            assert codec.inspect(frame, tenant=tenant).flags & sigmalang.FrameFlags.BASE, (
                "coded against its base"
            )
    assert sum(len(t) for *_, t, _ in frames) > 5 * sum(len(f) for *_, f in frames), "history is referenced"

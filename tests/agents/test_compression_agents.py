"""The Compression team's eight agents on a real nats-server, with the real codec, a real on-disk RSU
store and Ryot's real tokenizer, called through the orchestrator."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from agents import BadInputError, Bus, NotFoundError, TooLargeError
from agents.compression import COMPRESSION_AGENTS, MAX_DATA_BYTES
from agents.compression.wire import pack_parts, unpack_parts
from agents.protocol import Attached
from bridges.sigma import SigmaBridge, approx_tokens
from orchestrator import Orchestrator, testing
from orchestrator.testing import running
from ryot import RyotEngine
from sigmalang import DictionaryRegistry, DiskRSUStore, SigmaCodec, compress
from tests.agents.conftest import discovered

pytestmark = pytest.mark.anyio
Team = Callable[..., AbstractAsyncContextManager[tuple[Orchestrator, SigmaBridge]]]

SYSTEM = "You are a careful agent. Follow the tool schemas exactly. " * 40
TOOLS = json.dumps({"tools": [{"name": f"tool_{i}", "params": {"q": "string", "k": i}} for i in range(60)]})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def turn(n: int) -> bytes:
    history = "".join(f"user: question {i}\nassistant: answer number {i * 7}\n" for i in range(n))
    return f"{SYSTEM}\n{TOOLS}\n{history}".encode()


@pytest.fixture
def team(bus: Bus, engine: RyotEngine, tmp_path: Path) -> Team:
    """All eight compression agents on one bridge over a DiskRSUStore, for an ``async with`` block."""

    @asynccontextmanager
    async def run(count_tokens: bool = True) -> AsyncIterator[tuple[Orchestrator, SigmaBridge]]:
        codec = SigmaCodec(
            store=DiskRSUStore(tmp_path / "sigma" / "rsu.db"),
            dictionaries=DictionaryRegistry(tmp_path / "sigma" / "dictionaries"),
        )
        counter = (lambda text: len(engine.tokenize(text))) if count_tokens else None
        async with (
            SigmaBridge(codec, count_tokens=counter, exact_tokens_max_bytes=64 * 1024) as bridge,
            running(bus, [cls(bridge) for cls in COMPRESSION_AGENTS]) as orchestrator,
        ):
            yield orchestrator, bridge

    return run


async def call(
    orchestrator: Orchestrator, agent: str, payload: dict[str, Any], tenant: str = "default"
) -> dict[str, Any]:
    """One call in ``tenant``."""
    return await testing.call(orchestrator, agent, payload, tenant=tenant)


async def test_compressor_and_decompressor_round_trip_with_dedup_and_ryot_tokens(
    team: Team, engine: RyotEngine
) -> None:
    first, second = turn(3), turn(4)
    async with team() as (orch, _):
        one = await call(orch, "compressor", {"data": b64(first), "stream": "s1"})
        two = await call(orch, "compressor", {"data": b64(second), "stream": "s1"})
        for frame, original in ((one["frame"], first), (two["frame"], second)):
            out = await call(orch, "decompressor", {"frame": frame})
            assert base64.b64decode(out["data"]) == original
            assert out["report"]["bytes_out"] == len(original)
    r1, r2 = one["report"], two["report"]
    assert r1["token_counter"] == "ryot"
    assert r1["tokens_in"] == len(engine.tokenize(first.decode()))
    assert r1["glyphs"] == 0 and r1["new_rsus"] > 0
    # The second turn re-sends the system prompt and tool schemas: the stored turn is its context.
    assert r2["glyphs"] > 0 and r2["referenced_bytes"] > len(SYSTEM)
    assert r2["shares"]["dedup"] > 0.5
    assert r2["ratio"] > 3 * r1["ratio"]
    assert r2["tokens_out"] < r2["tokens_in"] / 5
    saved = r2["dedup_saved"] + r2["dictionary_saved"] + r2["entropy_saved"] - r2["framing"]
    assert saved == r2["bytes_in"] - r2["bytes_out"]


async def test_glyph_encoder_and_codec_inspector_describe_a_frame(team: Team) -> None:
    async with team() as (orch, bridge):
        await call(orch, "compressor", {"data": b64(turn(5))}, "ghost")
        await call(orch, "compressor", {"data": b64(turn(2))})
        frame = (await call(orch, "compressor", {"data": b64(turn(3))}))["frame"]
        recipe = await call(orch, "glyph-encoder", {"frame": frame})
        header = await call(orch, "codec-inspector", {"frame": frame})
        # A frame whose context RSUs this tenant's store no longer holds.
        made = (await call(orch, "compressor", {"data": b64(turn(6))}, "ghost"))["frame"]
        await bridge.forget_tenant("ghost")
        foreign_header = await call(orch, "codec-inspector", {"frame": made}, "ghost")
        foreign_recipe = await call(orch, "glyph-encoder", {"frame": made}, "ghost")
    steps = recipe["recipe"]
    assert recipe["glyphs"] == sum(s["kind"] == "glyph" for s in steps) > 0
    assert all(s["in_store"] and s["seq"] >= 1 and s["size"] > 0 for s in steps if s["kind"] == "glyph")
    assert steps[-1]["kind"] == "payload" and steps[-1]["size"] > 0
    assert recipe["content_size"] == len(turn(3))
    assert header["decodable"] is True and header["missing_rsus"] == []
    assert header["glyphs"] == recipe["glyphs"] and {"REFS", "BASE"} & set(header["flags"])
    assert "TABLES" in header["flags"] and "REF_PREFIX" not in header["flags"]  # generic tables
    assert header["content_size"] == len(turn(3)) and header["version"] == 3
    # A frame of a tenant whose store no longer holds its context: not decodable, named by seq.
    assert foreign_header["decodable"] is False and foreign_header["missing_rsus"]
    assert set(foreign_recipe["missing_rsus"]) == set(foreign_header["missing_rsus"])


async def test_deduplicator_reports_batch_and_store_duplicates(team: Team) -> None:
    batch = [turn(2), turn(2), turn(6)]
    async with team() as (orch, _):
        dry = await call(orch, "deduplicator", {"messages": [b64(m) for m in batch]})
        again = await call(orch, "deduplicator", {"messages": [b64(m) for m in batch], "commit": True})
        after = await call(orch, "deduplicator", {"messages": [b64(turn(2))]})
    first, second, third = dry["messages"]
    assert first["known_bytes"] == first["repeated_bytes"] == 0 and first["new_bytes"] == len(turn(2))
    assert second["repeated_bytes"] > 0.9 * len(turn(2))
    assert third["repeated_bytes"] > len(SYSTEM)
    assert dry["total_bytes"] == sum(map(len, batch)) and dry["dedup_ratio"] > 1.5
    assert again["messages"] == dry["messages"]  # the dry run added nothing to the store
    assert after["messages"][0]["known_bytes"] > 0.9 * len(turn(2))  # committed chunks are known now


async def test_dictionary_trainer_trains_and_the_compressor_uses_it(team: Team) -> None:
    rng = random.Random(7)
    samples = [
        json.dumps(
            {"role": "tool", "name": f"search_{rng.randint(0, 9)}", "args": {"q": f"item {i}"}}
        ).encode()
        for i in range(200)
    ]
    async with team() as (orch, bridge):
        few = await call(orch, "dictionary-trainer", {"texts": ["one", "two"]})
        trained = await call(orch, "dictionary-trainer", {"samples": [b64(s) for s in samples]})
        small = json.dumps({"role": "tool", "name": "search_3", "args": {"q": "item 999"}}).encode()
        packed = await call(orch, "compressor", {"data": b64(small)})
        out = await call(orch, "decompressor", {"frame": packed["frame"]})
        stats = await call(orch, "rsu-manager", {"action": "stats"})
        other = await call(orch, "compressor", {"data": b64(small)}, tenant="globex")
        other_stats = await call(orch, "rsu-manager", {"action": "stats"}, tenant="globex")
        assert bridge.codec.dictionaries.active_for("default") is not None
        assert bridge.codec.dictionaries.active is None  # trained for the caller's tenant only
    assert few["trained"] is False and "16" in few["reason"] and few["min_samples"] == 16
    assert trained["trained"] is True and trained["active"] is True and trained["size_bytes"] > 0
    assert packed["report"]["dict_id"] == trained["dict_id"]
    assert packed["report"]["shares"]["dictionary"] > 0
    assert base64.b64decode(out["data"]) == small
    assert stats["store"]["dictionaries"] == 2  # the generic one and the trained one
    assert stats["store"]["active_dict_id"] == trained["dict_id"]
    assert other["report"]["dict_id"] != trained["dict_id"]  # another tenant never uses it
    assert other_stats["store"]["active_dict_id"] is None


async def test_rsu_manager_pins_releases_and_collects_garbage(team: Team) -> None:
    async with team() as (orch, _):
        pinned = await call(orch, "rsu-manager", {"action": "pin", "data": b64(SYSTEM.encode())})
        await call(orch, "compressor", {"data": b64(turn(8))})  # adds RSUs, references none
        frame = (await call(orch, "compressor", {"data": b64(turn(8))}))["frame"]  # references them
        before = (await call(orch, "rsu-manager", {"action": "stats"}))["store"]
        released = await call(orch, "rsu-manager", {"action": "release", "frame": frame})
        with pytest.raises(BadInputError) as twice:
            await call(orch, "rsu-manager", {"action": "release", "frame": frame})
        gc = await call(orch, "rsu-manager", {"action": "gc"})
        with pytest.raises(NotFoundError) as unknown:
            await call(orch, "rsu-manager", {"action": "pin", "rsu_ids": ["00" * 16]})
        unpinned = await call(orch, "rsu-manager", {"action": "unpin", "rsu_ids": pinned["rsu_ids"]})
        gc2 = await call(orch, "rsu-manager", {"action": "gc"})
    assert len(pinned["rsu_ids"]) >= 1 and pinned["store"]["pinned"] == len(pinned["rsu_ids"])
    assert before["referenced"] > 0 and before["rsus"] > len(pinned["rsu_ids"])
    assert released["released_rsus"] == before["referenced"]
    assert twice.value.field == "frame" and "already released" in twice.value.message
    # No frame holds a reference any more: GC frees everything but the pinned RSUs.
    assert gc["removed"] == before["rsus"] - len(pinned["rsu_ids"]) and gc["bytes_freed"] > 0
    assert gc["store"]["rsus"] == gc["store"]["pinned"] == len(pinned["rsu_ids"])
    assert unknown.value.field == "rsu_ids"
    assert unpinned["store"]["pinned"] == 0
    assert gc2["store"]["rsus"] == 0


async def test_context_optimizer_meets_the_budget_in_ryot_tokens(team: Team, engine: RyotEngine) -> None:
    code = "```python\ndef area(r):\n    return 3.14159 * r * r\n```"
    filler = " ".join(f"Sentence {i} is about gardening and the weather in spring." for i in range(60))
    text = f"{filler}\n\nThe reactor temperature limit is 451.75 kelvin.\n\n{code}\n\n{filler}"
    async with team() as (orch, _):
        out = await call(
            orch,
            "context-optimizer",
            {"text": text, "budget_tokens": 120, "query": "reactor temperature limit"},
        )
    assert out["token_counter"] == "ryot"
    assert out["tokens_out"] == len(engine.tokenize(out["text"])) <= 120
    assert out["tokens_in"] == len(engine.tokenize(text)) > 500
    assert "451.75 kelvin" in out["text"]
    assert code in out["text"] or "def area" not in out["text"]


@pytest.mark.parametrize(
    ("agent", "payload", "field"),
    [
        ("compressor", {"data": "not base64!"}, "data"),
        ("compressor", {"data": "aGk=", "level": 99}, "level"),
        ("compressor", {"data": "aGk=", "bogus": 1}, "bogus"),
        ("compressor", {}, "data"),  # neither data nor messages
        ("compressor", {"data": "aGk=", "messages": ["aGk="]}, "data"),
        ("decompressor", {"frame": b64(b"definitely not a frame")}, "frame"),
        ("codec-inspector", {"frame": b64(b"\xce\xa3")}, "frame"),
        ("glyph-encoder", {"frame": 5}, "frame"),
        ("deduplicator", {"messages": []}, "messages"),
        ("deduplicator", {"messages": ["aGk=", "%%%"]}, "messages.1"),
        ("context-optimizer", {"text": "x", "budget_tokens": -1}, "budget_tokens"),
        ("context-optimizer", {"text": "abc", "budget_tokens": 5, "protected": [[1, 9]]}, "protected.0"),
        ("dictionary-trainer", {}, "samples"),
        ("rsu-manager", {"action": "explode"}, "action"),
        ("rsu-manager", {"action": "unpin", "rsu_ids": ["xyz"]}, "rsu_ids.0"),
        ("rsu-manager", {"action": "release"}, "frame"),
    ],
)
async def test_bad_input_names_the_field(team: Team, agent: str, payload: dict[str, Any], field: str) -> None:
    async with team() as (orch, _):
        with pytest.raises(BadInputError) as info:
            await call(orch, agent, payload)
    assert info.value.field == field, info.value


async def test_corrupted_frames_are_refused_clearly(team: Team) -> None:
    async with team() as (orch, _):
        frame = bytearray(base64.b64decode((await call(orch, "compressor", {"data": b64(turn(1))}))["frame"]))
        frame[len(frame) // 2] ^= 0x40
        with pytest.raises(BadInputError, match="authentication failed") as flipped:
            await call(orch, "decompressor", {"frame": b64(bytes(frame))})
        with pytest.raises(BadInputError, match="truncated"):
            await call(orch, "decompressor", {"frame": b64(bytes(frame[:3]))})
        with pytest.raises(BadInputError, match="unsupported ΣLANG frame version 9"):
            await call(orch, "codec-inspector", {"frame": b64(b"\xce\xa3\x09" + bytes(20))})
    assert flipped.value.field == "frame"


async def test_an_evicted_context_is_not_found(team: Team) -> None:
    async with team() as (orch, bridge):
        await call(orch, "compressor", {"data": b64(turn(5)), "stream": "s"})
        frame = (await call(orch, "compressor", {"data": b64(turn(6)), "stream": "s"}))["frame"]
        await bridge.forget_tenant("default")
        with pytest.raises(NotFoundError, match="evicted") as info:
            await call(orch, "decompressor", {"frame": frame})
    assert info.value.field == "frame"


async def test_tenants_never_see_each_others_content(team: Team) -> None:
    async with team() as (orch, _):
        alice = await call(orch, "compressor", {"data": b64(turn(6))}, "alice")
        await call(orch, "compressor", {"data": b64(turn(6)), "stream": "s"}, "alice")
        probe = await call(orch, "deduplicator", {"messages": [b64(turn(6))]}, "bob")
        bob = await call(orch, "compressor", {"data": b64(turn(6))}, "bob")
        alice_probe = await call(orch, "deduplicator", {"messages": [b64(turn(6))]}, "alice")
        with pytest.raises(BadInputError, match="tenant") as decode:
            await call(orch, "decompressor", {"frame": alice["frame"]}, "bob")
        with pytest.raises(BadInputError, match="tenant"):
            await call(orch, "rsu-manager", {"action": "release", "frame": alice["frame"]}, "bob")
        with pytest.raises(BadInputError, match="tenant"):
            await call(orch, "glyph-encoder", {"frame": alice["frame"]}, "bob")
        bob_stats = (await call(orch, "rsu-manager", {"action": "stats"}, "bob"))["store"]
        alice_back = await call(orch, "decompressor", {"frame": alice["frame"]}, "alice")
    assert decode.value.field == "frame"
    # Bob's first message costs what Alice's first one did: nothing of hers is used ...
    assert bob["report"]["bytes_out"] == alice["report"]["bytes_out"]
    assert bob["report"]["referenced_bytes"] == alice["report"]["referenced_bytes"]  # (its own repeats)
    assert probe["messages"][0]["known_bytes"] == 0  # ... and Bob cannot learn that she holds it
    assert alice_probe["messages"][0]["known_bytes"] == len(turn(6))
    assert bob_stats["rsus"] > 0 and base64.b64decode(alice_back["data"]) == turn(6)


async def test_batches_compress_in_order_and_decode(team: Team) -> None:
    turns = [turn(i) for i in range(2, 7)]
    async with team() as (orch, _):
        packed = await call(orch, "compressor", {"messages": [b64(t) for t in turns], "stream": "b"})
        frames = [r["frame"] for r in packed["results"]]
        back = await call(orch, "decompressor", {"frames": frames})
    assert [base64.b64decode(d) for d in back["datas"]] == turns
    reports = [r["report"] for r in packed["results"]]
    assert reports[0]["glyphs"] == 0 and all(r["glyphs"] > 0 for r in reports[1:])


async def test_messages_and_frames_travel_raw_as_attachments_both_ways(team: Team) -> None:
    turns = [turn(i) for i in range(2, 6)] + [bytes(range(256)) * 8]  # text turns and binary
    async with team() as (orch, _):
        out = await call(
            orch, "compressor", Attached({"streams": ["a", "a", "a", "a", "b"]}, pack_parts(turns))
        )
        assert out["count"] == len(turns) and out["results"] is None and out["frame"] is None
        reports_json, *frames = unpack_parts(getattr(out, "attachment"), 4097)  # noqa: B009 - an Attached
        reports = json.loads(reports_json)
        assert [r["bytes_in"] for r in reports] == [len(t) for t in turns]
        assert [r["bytes_out"] for r in reports] == [len(f) for f in frames]
        assert reports[0]["glyphs"] == 0 and all(r["glyphs"] > 0 for r in reports[1:4])
        back = await call(orch, "decompressor", Attached({}, pack_parts(frames)))
        assert back["count"] == len(turns) and unpack_parts(getattr(back, "attachment"), 4096) == turns  # noqa: B009
        # The same frames through base64 JSON decode the same, and another tenant cannot read them.
        as_json = await call(orch, "decompressor", {"frames": [b64(f) for f in frames]})
        assert [base64.b64decode(d) for d in as_json["datas"]] == turns
        with pytest.raises(BadInputError) as foreign:
            await call(orch, "decompressor", Attached({}, pack_parts(frames[:1])), tenant="mallory")
        assert foreign.value.field == "frames"
        for bad, why in ((b"", "empty batch"), (pack_parts(turns)[:-1], "runs past the end")):
            with pytest.raises(BadInputError, match=why) as refused:
                await call(orch, "compressor", Attached({}, bad))
            assert refused.value.field == "messages"
        with pytest.raises(BadInputError, match="exactly one of") as both:
            await call(orch, "compressor", Attached({"data": b64(b"x")}, pack_parts([b"y"])))
        assert both.value.field == "data"
        with pytest.raises(TooLargeError, match=f"the limit is {MAX_DATA_BYTES} bytes") as big:
            await call(orch, "compressor", Attached({}, pack_parts([bytes(MAX_DATA_BYTES)])))
        assert big.value.field == "messages"
        with pytest.raises(BadInputError, match="takes no binary attachment"):  # only those that declare it
            await call(orch, "deduplicator", Attached({"messages": [b64(b"x")]}, b"raw"))


async def test_sizes_beyond_the_nats_limit_are_too_large_naming_the_limit(team: Team) -> None:
    bomb = compress(bytes(MAX_DATA_BYTES + 1))  # a tiny frame that decodes past the limit
    async with team() as (orch, _):
        with pytest.raises(TooLargeError, match=f"the limit is {MAX_DATA_BYTES} bytes") as big:
            await call(orch, "compressor", {"data": b64(bytes(MAX_DATA_BYTES + 3))})
        with pytest.raises(TooLargeError, match=f"the limit is {MAX_DATA_BYTES} bytes") as decoded:
            await call(orch, "decompressor", {"frame": b64(bomb)})
        with pytest.raises(TooLargeError, match="NATS carries at most"):
            await call(orch, "compressor", {"data": b64(bytes(8 * 1024 * 1024))})
        with pytest.raises(TooLargeError, match=f"the limit is {MAX_DATA_BYTES} bytes") as batch:
            await call(orch, "compressor", {"messages": [b64(bytes(MAX_DATA_BYTES // 2 + 1))] * 2})
    assert batch.value.field == "messages"
    assert big.value.field == "data" and decoded.value.field == "frame"


async def test_without_a_tokenizer_counts_are_approximate_and_say_so(team: Team) -> None:
    text = "approximate counting " * 50
    async with team(count_tokens=False) as (orch, _):
        packed = await call(orch, "compressor", {"data": b64(text.encode())})
        fitted = await call(orch, "context-optimizer", {"text": text, "budget_tokens": 10_000})
        stats = await call(orch, "rsu-manager", {"action": "stats"})
    assert packed["report"]["token_counter"] == "approx"
    assert packed["report"]["tokens_in"] == approx_tokens(text)
    assert fitted["token_counter"] == "approx" and stats["store"]["token_counter"] == "approx"


async def test_long_inputs_are_counted_approximately_and_say_so(team: Team) -> None:
    data = random.Random(1).randbytes(100_000)
    async with team() as (orch, bridge):
        out = await call(orch, "compressor", {"data": b64(data)})
        back = await call(orch, "decompressor", {"frame": out["frame"]})
    assert len(data) > bridge.exact_tokens_max_bytes
    assert out["report"]["token_counter"] == "approx" and back["report"]["token_counter"] == "approx"
    assert base64.b64decode(back["data"]) == data
    assert out["report"]["shares"] == {"dedup": 0.0, "dictionary": 0.0, "entropy": 0.0}  # random: RAW


async def test_all_eight_agents_register_on_the_bus(team: Team, bus: Bus) -> None:
    expected = {cls.name for cls in COMPRESSION_AGENTS}
    async with team() as (orch, _):
        listed = await discovered(orch, lambda agents: expected <= {a.name for a in agents if a.replicas})
    agents = [a for a in listed if a.team == "compression"]
    assert sorted(a.name for a in agents) == sorted(cls.name for cls in COMPRESSION_AGENTS)
    assert len(agents) == 8 and all(a.metadata["token_counter"] == "ryot" for a in agents)


async def test_team_starter_persists_the_store_and_counts_with_ryot(bus: Bus, tmp_path: Path) -> None:
    from contextlib import AsyncExitStack

    from neurectomy.server.teams import start_compression
    from neurectomy.settings import Settings

    settings = Settings(state_dir=tmp_path / "state")
    orch = Orchestrator(bus)
    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="no agent 'nope'")):
        async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
            await start_compression(settings, stack, bus, tg, agent="nope")
    for round_ in range(2):
        async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
            await start_compression(settings, stack, bus, tg)
            packed = await call(orch, "compressor", {"data": b64(turn(4))})
            small = await call(orch, "compressor", {"data": b64(SYSTEM[:2000].encode())})
            stats = (await call(orch, "rsu-manager", {"action": "stats"}))["store"]
            tg.cancel_scope.cancel()
        # Ryot's tokenizer counts short messages exactly; longer ones are approximated (and say so).
        assert small["report"]["token_counter"] == "ryot"
        assert packed["report"]["token_counter"] == "approx" and len(turn(4)) > 4096
        # The second process lifetime finds the first one's RSUs on disk and references them.
        assert (packed["report"]["glyphs"] > 0) == (round_ == 1)
        assert stats["rsus"] > 0
    assert (tmp_path / "state" / "sigma" / "rsu.db").is_file()

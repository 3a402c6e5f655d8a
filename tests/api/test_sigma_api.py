"""ΣLANG through a real ``neurectomy serve`` process: REST, SDK (binary and base64, sync and async), CLI."""

from __future__ import annotations

import base64
import json
import random
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from agents.compression import MAX_DATA_BYTES, MAX_TEXT_CHARS
from agents.compression.wire import pack_parts, unpack_parts
from neurectomy import AsyncClient, BadRequestError, Client, TooLargeError
from ryot import RyotEngine
from sigmalang import SigmaCodec, compress, train_dictionary

SESSION = "System: you are a support agent. Tools: " + json.dumps(
    [{"name": f"lookup_{i}", "schema": {"id": "integer", "fields": ["a", "b", "c"]}} for i in range(40)]
)
INPUTS = [
    b"",
    b"x",
    "Σ unicode — 日本語 🚀 ".encode() * 300,
    random.Random(3).randbytes(50_000),
    (SESSION * 30).encode(),
    bytes(range(256)) * 4096,  # 1 MiB
]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "base64"])
def test_sdk_round_trips_byte_exact(service: str, binary: bool) -> None:
    with Client(service) as client:
        for data in INPUTS:
            packed = client.sigma.compress(data, binary=binary)
            assert client.sigma.decompress(packed.frame, binary=binary).data == data
            assert client.sigma.decompress(packed.frame, binary=not binary).data == data
            r = packed.report
            assert r.bytes_in == len(data) and r.bytes_out == len(packed.frame)
            assert (
                r.dedup_saved + r.dictionary_saved + r.entropy_saved - r.framing == r.bytes_in - r.bytes_out
            )
            assert r.tokens_in is not None and r.tokens_out is not None


def test_report_counts_ryot_tokens_and_attributes_the_dedup_share(service: str, engine: RyotEngine) -> None:
    first = f"{SESSION}\nuser: where is order 17?".encode()
    second = f"{SESSION}\nuser: where is order 17?\nassistant: shipped.\nuser: and order 18?".encode()
    with Client(service) as client:
        one = client.sigma.compress(first, stream="conversation-1")
        two = client.sigma.compress(second, stream="conversation-1")
        assert client.sigma.decompress(two.frame).data == second
        stats = client.sigma.stats()
    assert one.report.token_counter == "ryot"
    assert one.report.tokens_in == len(engine.tokenize(first.decode()))
    assert two.report.glyphs > 0 and two.report.shares.dedup > 0.5
    assert two.report.ratio is not None and two.report.ratio > 10
    assert two.report.tokens_out is not None and two.report.tokens_out < two.report.tokens_in / 2
    assert stats.rsus > 0 and stats.referenced > 0 and stats.token_counter == "ryot"
    assert stats.metrics["compressions"] >= 2


def test_raw_http_binary_answers_with_the_report_header(service: str) -> None:
    data = (SESSION * 3).encode()
    response = httpx.post(
        f"{service}/v1/sigma/compress?level=19&dedup=false",
        content=data,
        headers={"content-type": "application/octet-stream"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    report = json.loads(response.headers["x-sigma-report"])
    assert report["level"] == 19 and report["glyphs"] == 0 and report["bytes_out"] == len(response.content)
    assert set(report["shares"]) == {"dedup", "dictionary", "entropy"}
    # dedup=false: a self-contained frame that any ΣLANG decoder (without the store) can read.
    assert SigmaCodec().decompress(response.content) == data


@pytest.mark.anyio
async def test_async_sdk_round_trip(service: str) -> None:
    data = "async ΣLANG ".encode() * 1000
    async with AsyncClient(service) as client:
        packed = await client.sigma.compress(data, binary=False)
        assert (await client.sigma.decompress(packed.frame)).data == data
        assert (await client.sigma.stats()).rsus > 0
        fitted = await client.sigma.optimize("One. Two. Three.", budget_tokens=1000)
    assert fitted.text == "One. Two. Three."


def test_optimize_meets_the_budget_and_keeps_code_json_and_numbers(service: str, engine: RyotEngine) -> None:
    code = "```python\nTHRESHOLD = 0.875\nprint(THRESHOLD * 2)\n```"
    blob = '{"sensor": "t-17", "limit_c": 451.75, "ok": true}'
    noise = " ".join(f"Paragraph filler sentence {i} talks about unrelated hobbies." for i in range(80))
    facts = f"The sensor t-17 reports limit_c.\n\n{blob}\n\n{code}\n\nThe threshold is 0.875."
    text = f"{noise}\n\n{facts}\n\n{noise}"
    with Client(service) as client:
        fitted = client.sigma.optimize(text, budget_tokens=150, query="sensor t-17 limit threshold")
        protected = client.sigma.optimize(
            text, budget_tokens=150, protected=[(text.index(code), text.index(code) + 5)]
        )
    assert fitted.token_counter == "ryot"
    assert fitted.tokens_in == len(engine.tokenize(text))
    assert fitted.tokens_out == len(engine.tokenize(fitted.text)) <= 150 < fitted.tokens_in
    assert blob in fitted.text and "0.875" in fitted.text
    for result in (fitted, protected):
        assert code in result.text or "THRESHOLD" not in result.text  # whole or absent, never altered
        assert blob in result.text or 'limit_c": ' not in result.text
    assert code in protected.text and protected.tokens_out <= 150


def test_corrupted_frames_are_400_with_a_clear_message(service: str) -> None:
    with Client(service) as client:
        frame = bytearray(client.sigma.compress(b"hello " * 500, dedup=False).frame)
        frame[len(frame) // 2] ^= 1
        for binary in (True, False):
            with pytest.raises(BadRequestError, match="checksum mismatch") as info:  # a version-1 frame
                client.sigma.decompress(bytes(frame), binary=binary)
            assert info.value.field == "frame" and info.value.status_code == 400
        with pytest.raises(BadRequestError, match="not a ΣLANG frame"):
            client.sigma.decompress(b"PK\x03\x04 a zip file")
        with pytest.raises(BadRequestError, match="truncated"):
            client.sigma.decompress(bytes(frame[:5]))
        with pytest.raises(BadRequestError, match="another tenant"):  # made by another secret
            other = SigmaCodec()
            other.compress(b"never seen by the service " * 200)
            client.sigma.decompress(other.compress(b"never seen by the service " * 200).frame)


def _as(tenant: str) -> dict[str, str]:
    return {"x-neurectomy-tenant": tenant}


def test_a_tenants_frames_and_store_are_its_own(service: str) -> None:
    doc = "".join(f"Alice's contract clause {i}: the fee is {i * 17} euros.\n" for i in range(300)).encode()
    b64 = base64.b64encode(doc).decode()
    made = httpx.post(f"{service}/v1/sigma/compress", json={"data": b64}, headers=_as("alice"), timeout=30)
    frame = made.json()["frame"]
    again = httpx.post(f"{service}/v1/sigma/compress", json={"data": b64}, headers=_as("alice"), timeout=30)
    as_bob = httpx.post(
        f"{service}/v1/sigma/decompress", json={"frame": frame}, headers=_as("bob"), timeout=30
    )
    raw_bob = httpx.post(
        f"{service}/v1/sigma/decompress",
        content=base64.b64decode(frame),
        headers={**_as("bob"), "content-type": "application/octet-stream"},
        timeout=30,
    )
    bob = httpx.post(f"{service}/v1/sigma/compress", json={"data": b64}, headers=_as("bob"), timeout=30)
    as_alice = httpx.post(
        f"{service}/v1/sigma/decompress", json={"frame": frame}, headers=_as("alice"), timeout=30
    )
    assert as_bob.status_code == raw_bob.status_code == 400, as_bob.text
    assert (
        as_bob.json()["error"]["field"] == "frame" and "another tenant" in as_bob.json()["error"]["message"]
    )
    assert base64.b64decode(as_alice.json()["data"]) == doc
    # Alice's second copy is found in her store; Bob's first costs what Alice's first did.
    assert again.json()["report"]["referenced_bytes"] == len(doc)
    assert bob.json()["report"]["referenced_bytes"] == made.json()["report"]["referenced_bytes"]
    assert bob.json()["report"]["bytes_out"] == made.json()["report"]["bytes_out"]


def test_batch_routes_round_trip_a_session(service: str) -> None:
    turns = [
        f"{SESSION}\n".encode() + b"".join(b"user: question %d?\n" % i for i in range(n)) for n in range(1, 9)
    ]
    body = {"messages": [base64.b64encode(t).decode() for t in turns], "stream": "batch-1"}
    packed = httpx.post(f"{service}/v1/sigma/compress/batch", json=body, headers=_as("batcher"), timeout=60)
    assert packed.status_code == 200, packed.text
    results = packed.json()["results"]
    frames = [r["frame"] for r in results]
    back = httpx.post(
        f"{service}/v1/sigma/decompress/batch", json={"frames": frames}, headers=_as("batcher"), timeout=60
    )
    assert [base64.b64decode(d) for d in back.json()["datas"]] == turns
    later = [r["report"] for r in results[1:]]
    assert sum(r["bytes_in"] for r in later) / sum(r["bytes_out"] for r in later) > 20
    foreign = httpx.post(
        f"{service}/v1/sigma/decompress/batch", json={"frames": frames}, headers=_as("other"), timeout=60
    )
    assert foreign.status_code == 400 and foreign.json()["error"]["field"] == "frames"


@pytest.mark.anyio
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "base64"])
async def test_sdk_batch_methods_round_trip_a_session(service: str, binary: bool) -> None:
    turns = [SESSION.encode() + b"".join(b"\nuser: ask %d?" % i for i in range(n)) for n in range(1, 6)]
    with Client(service) as client:
        packed = client.sigma.compress_batch(turns, stream=f"sdk-batch-{binary}", binary=binary)
        assert client.sigma.decompress_batch([p.frame for p in packed], binary=binary) == turns
        raw = httpx.post(  # frames in, messages out, length-prefixed both ways
            f"{service}/v1/sigma/decompress/batch",
            content=pack_parts(p.frame for p in packed),
            headers={"content-type": "application/octet-stream", "accept": "application/octet-stream"},
            timeout=60,
        )
        assert raw.headers["content-type"] == "application/octet-stream"
        assert unpack_parts(raw.content, 4096) == turns
        foreign = httpx.post(
            f"{service}/v1/sigma/decompress/batch",
            content=pack_parts(p.frame for p in packed),
            headers={"content-type": "application/octet-stream", **_as("someone-else")},
            timeout=60,
        )
        assert foreign.status_code == 400 and foreign.json()["error"]["field"] == "frames"
    assert [p.report.bytes_in for p in packed] == [len(t) for t in turns]
    assert [p.report.bytes_out for p in packed] == [len(p.frame) for p in packed]
    assert packed[-1].report.glyphs > 0  # the stream gave each turn the previous one
    async with AsyncClient(service) as aclient:
        again = await aclient.sigma.compress_batch(turns, stream=f"sdk-batch2-{binary}", binary=binary)
        assert await aclient.sigma.decompress_batch([p.frame for p in again], binary=binary) == turns
        assert [p.report.bytes_out for p in again] == [len(p.frame) for p in again]
        with pytest.raises(BadRequestError) as bad:
            await aclient.sigma.compress_batch([], binary=binary)
        assert bad.value.field == "messages"
        with pytest.raises(BadRequestError) as bad:
            await aclient.sigma.compress_batch(turns, streams=["a", "b"], binary=binary)
        assert bad.value.field == "streams"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "base64"])
def test_one_batch_carries_the_turns_of_many_conversations(service: str, binary: bool) -> None:
    a = [f"{SESSION}\nuser: conversation A, turn {i}".encode() * (i + 1) for i in range(3)]
    b = [random.Random(i).randbytes(3000) for i in range(3)]
    interleaved = [m for pair in zip(a, b, strict=True) for m in pair]
    streams = [f"{c}-{binary}" for _ in range(3) for c in ("A", "B")]
    with Client(service) as client:
        packed = client.sigma.compress_batch(interleaved, streams=streams, binary=binary)
        assert client.sigma.decompress_batch([p.frame for p in packed]) == interleaved
        assert [p.report.bytes_in for p in packed] == [len(m) for m in interleaved]
        with pytest.raises(BadRequestError) as bad:  # streams and stream together
            client.sigma.compress_batch(a, stream="x", streams=["A"] * 3, binary=binary)
        assert bad.value.field == "streams"


def test_batch_route_takes_a_length_prefixed_binary_body(service: str) -> None:
    turns = [
        f"{SESSION}\n".encode() + b"".join(b"user: binary %d?\n" % i for i in range(n)) for n in range(6)
    ]
    body = b"".join(struct.pack("<I", len(t)) + t for t in turns)
    headers = {**_as("binary-batcher"), "content-type": "application/octet-stream"}
    packed = httpx.post(
        f"{service}/v1/sigma/compress/batch",
        params={"stream": "bin-1"},
        content=body,
        headers=headers,
        timeout=60,
    )
    assert packed.status_code == 200, packed.text
    results = packed.json()["results"]
    assert [r["report"]["bytes_in"] for r in results] == [len(t) for t in turns]
    back = httpx.post(
        f"{service}/v1/sigma/decompress/batch",
        json={"frames": [r["frame"] for r in results]},
        headers=_as("binary-batcher"),
        timeout=60,
    )
    assert [base64.b64decode(d) for d in back.json()["datas"]] == turns
    assert results[-1]["report"]["glyphs"] > 0  # the stream query parameter gave it the previous turn
    raw = httpx.post(
        f"{service}/v1/sigma/compress/batch",
        params={"stream": "bin-2"},
        content=body,
        headers={**headers, "accept": "application/octet-stream"},
        timeout=60,
    )
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/octet-stream"
    reports, *raw_frames = unpack_parts(raw.content, 4097)
    assert [r["bytes_out"] for r in json.loads(reports)] == [len(f) for f in raw_frames]
    assert [r["bytes_in"] for r in json.loads(reports)] == [len(t) for t in turns]
    back_raw = httpx.post(
        f"{service}/v1/sigma/decompress/batch",
        json={"frames": [base64.b64encode(f).decode() for f in raw_frames]},
        headers=_as("binary-batcher"),
        timeout=60,
    )
    assert [base64.b64decode(d) for d in back_raw.json()["datas"]] == turns
    for bad, why in ((b"", "empty"), (body[:-1], "runs past the end"), (body + b"\x01\x00", "truncated")):
        refused = httpx.post(f"{service}/v1/sigma/compress/batch", content=bad, headers=headers, timeout=30)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["field"] == "messages" and why in refused.json()["error"]["message"]


def test_unpack_parts_reads_length_prefixed_messages_within_the_limit() -> None:
    messages = [b"", b"x", bytes(range(256)) * 3]
    assert unpack_parts(b"".join(struct.pack("<I", len(m)) + m for m in messages), 4096) == messages
    assert unpack_parts(struct.pack("<I", 0) * 4096, 4096) == [b""] * 4096
    with pytest.raises(ValueError, match="more than 4096"):
        unpack_parts(struct.pack("<I", 0) * 4097, 4096)
    with pytest.raises(ValueError, match="runs past the end"):
        unpack_parts(struct.pack("<I", 1 << 31) + b"abc", 4096)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/sigma/compress", {"data": "***"}, "data"),
        ("/v1/sigma/compress", {"data": "aGk=", "level": 40}, "level"),
        ("/v1/sigma/compress", {}, "data"),
        ("/v1/sigma/compress/batch", {"messages": []}, "messages"),
        ("/v1/sigma/decompress/batch", {"frames": ["%%"]}, "frames.0"),
        ("/v1/sigma/decompress", {"frame": 7}, "frame"),
        ("/v1/sigma/optimize", {"text": "x"}, "budget_tokens"),
        ("/v1/sigma/optimize", {"text": "x", "budget_tokens": -3}, "budget_tokens"),
        ("/v1/sigma/optimize", {"text": "abc", "budget_tokens": 9, "protected": [[2, 50]]}, "protected.0"),
        ("/v1/sigma/dictionaries", {"samples": ["@@"]}, "samples.0"),
        ("/v1/sigma/dictionaries", {}, "samples"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    service: str, path: str, body: dict[str, object], field: str
) -> None:
    response = httpx.post(f"{service}{path}", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field, response.text


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]"])
def test_malformed_json_is_400_never_500(service: str, raw: bytes) -> None:
    for path in ("/v1/sigma/compress", "/v1/sigma/decompress"):
        response = httpx.post(f"{service}{path}", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text


def test_oversize_is_413_with_the_limit(service: str) -> None:
    with Client(service) as client:
        with pytest.raises(TooLargeError, match=f"the limit is {MAX_DATA_BYTES} bytes") as binary:
            client.sigma.compress(bytes(MAX_DATA_BYTES + 1))
        with pytest.raises(TooLargeError, match=f"the limit is {MAX_DATA_BYTES} bytes"):
            client.sigma.compress(bytes(MAX_DATA_BYTES + 1), binary=False)
        with pytest.raises(TooLargeError, match=f"the limit is {MAX_TEXT_CHARS} characters"):
            client.sigma.optimize("word " * (MAX_TEXT_CHARS // 5 + 1), budget_tokens=10)
        # A frame of a few bytes that would decode past the limit (a decompression bomb).
        bomb = SigmaCodec().compress(bytes(MAX_DATA_BYTES + 1), dedup=False).frame
        with pytest.raises(TooLargeError, match=f"the limit is {MAX_DATA_BYTES} bytes"):
            client.sigma.decompress(bomb)
    assert binary.value.status_code == 413 and binary.value.field == "data"
    huge = httpx.post(
        f"{service}/v1/sigma/compress",
        content=bytes(12 * 1024 * 1024),
        headers={"content-type": "application/octet-stream"},
        timeout=60,
    )
    assert huge.status_code == 413
    assert "limit of" in huge.json()["error"]["message"]


def test_dictionary_training_through_the_sdk(service: str) -> None:
    rng = random.Random(11)
    samples = [
        json.dumps(
            {"event": "tool_call", "tool": f"lookup_{rng.randint(0, 39)}", "id": rng.randint(0, 10**6)}
        )
        for _ in range(300)
    ]
    with Client(service) as client:
        few = client.sigma.train_dictionary([b"a", b"b"])
        trained = client.sigma.train_dictionary(samples)
        small = json.dumps({"event": "tool_call", "tool": "lookup_7", "id": 4242}).encode()
        packed = client.sigma.compress(small)
        assert client.sigma.decompress(packed.frame).data == small
        stats = client.sigma.stats()
    assert few.trained is False and few.reason
    assert trained.trained and trained.active and trained.dict_id is not None
    assert packed.report.dict_id == trained.dict_id and packed.report.shares.dictionary > 0
    assert stats.active_dict_id == trained.dict_id and stats.dictionaries >= 1


def test_compression_agents_are_listed(service: str) -> None:
    with Client(service) as client:
        names = {a.name for a in client.agents() if a.team == "compression"}
    assert names == {
        "compressor",
        "decompressor",
        "deduplicator",
        "glyph-encoder",
        "context-optimizer",
        "dictionary-trainer",
        "rsu-manager",
        "codec-inspector",
    }


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "neurectomy", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_compress_and_decompress_a_file(service: str, tmp_path: Path) -> None:
    original = tmp_path / "notes.txt"
    original.write_bytes((SESSION + "\n").encode() * 200 + random.Random(5).randbytes(10_000))
    packed = _cli("compress", str(original), "--url", service, "--block-size", "65536")
    assert packed.returncode == 0, packed.stderr
    sigma = tmp_path / "notes.txt.sigma"
    assert sigma.read_bytes().startswith(b"SGMF\x01")
    assert sigma.stat().st_size < original.stat().st_size / 5
    assert "ratio" in packed.stderr and "dedup share" in packed.stderr and "tokens in" in packed.stderr
    restored = tmp_path / "restored.txt"
    unpacked = _cli("decompress", str(sigma), "-o", str(restored), "--url", service)
    assert unpacked.returncode == 0, unpacked.stderr
    assert restored.read_bytes() == original.read_bytes()
    # A bare frame from the API decodes too; garbage is refused without writing an output.
    bare = tmp_path / "bare.sigma"
    bare.write_bytes(
        base64.b64decode(
            httpx.post(f"{service}/v1/sigma/compress", json={"data": "aGVsbG8="}).json()["frame"]
        )
    )
    assert _cli("decompress", str(bare), "--url", service).returncode == 0
    assert (tmp_path / "bare").read_bytes() == b"hello"
    junk = tmp_path / "junk.sigma"
    junk.write_bytes(b"not a sigma file")
    refused = _cli("decompress", str(junk), "--url", service)
    assert refused.returncode == 1 and "neither a ΣLANG file nor a ΣLANG frame" in refused.stderr
    assert not (tmp_path / "junk").exists()


def test_rsus_are_sealed_at_rest_and_shredded_with_the_tenant(
    service: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The service runs the Storage team in process, so its RSU store is sealed with the vault's keys."""
    canary = b"rest-canary-5b1d0e77-" * 50
    message = (SESSION * 10).encode() + canary
    head = {"X-Neurectomy-Tenant": "sealcanary", "Content-Type": "application/octet-stream"}
    with httpx.Client(base_url=service, timeout=120) as http:
        first = http.post("/v1/sigma/compress", content=message, headers=head, params={"stream": "s"})
        second = http.post("/v1/sigma/compress", content=message + b"!", headers=head, params={"stream": "s"})
        assert first.status_code == second.status_code == 200
        assert json.loads(second.headers["X-Sigma-Report"])["glyphs"] > 0
        # `service` joins a nats-server of its own (--nats-url), so its RSUs live in JetStream KV
        # (nats.shared_state): the server's files must not hold the content either.
        base = tmp_path_factory.getbasetemp()
        states = [*base.glob("serve-state*"), *base.glob("service-nats*")]
        assert any(p.name.startswith("blk") or p.name.endswith(".blk") for s in states for p in s.rglob("*"))
        found = [p for s in states for p in s.rglob("*") if p.is_file() and canary[:40] in p.read_bytes()]
        assert found == []
        shred = http.delete("/v1/vault/tenants/sealcanary", headers={"X-Neurectomy-Tenant": "sealcanary"})
        assert shred.status_code == 200, shred.text
        after = http.post("/v1/sigma/decompress", content=second.content, headers=head)
        assert after.status_code == 404, after.text


def test_a_dictionary_is_the_trainers_tenants_and_a_missing_one_is_a_named_404(service: str) -> None:
    samples = [json.dumps({"op": "lookup", "key": f"k{i % 13}", "shard": i % 4, "n": i}) for i in range(120)]
    small = json.dumps({"op": "lookup", "key": "k5", "shard": 2, "n": 777}).encode()
    raw = {"Content-Type": "application/octet-stream"}
    with Client(service) as client, httpx.Client(base_url=service, timeout=120) as http:
        trained = client.sigma.train_dictionary(samples)  # the default tenant's
        assert trained.dict_id is not None
        alone = http.post("/v1/sigma/compress", content=small, headers=raw, params={"dedup": "false"})
        assert (
            alone.status_code == 200
            and json.loads(alone.headers["X-Sigma-Report"])["dict_id"] == trained.dict_id
        )
        mine = http.post("/v1/sigma/decompress", content=alone.content, headers=raw)
        theirs = http.post(
            "/v1/sigma/decompress", content=alone.content, headers={**raw, "X-Neurectomy-Tenant": "dictguest"}
        )
        # A frame naming a dictionary no replica holds (trained here, never sent to the service).
        local = train_dictionary([s.encode() + b"!" for s in samples])
        assert local is not None
        unknown = http.post("/v1/sigma/decompress", content=compress(small, dictionary=local), headers=raw)
    assert mine.status_code == 200 and mine.content == small
    assert theirs.status_code == 404, theirs.text  # another tenant cannot use (or fetch) it
    assert f"{trained.dict_id:#010x}" in theirs.json()["error"]["message"]
    assert unknown.status_code == 404, unknown.text
    assert f"{local.dict_id:#010x}" in unknown.json()["error"]["message"]

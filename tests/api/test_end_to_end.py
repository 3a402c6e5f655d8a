"""SDK / curl-like HTTP / CLI → REST → orchestrator → NATS → generator agent → Ryot, all real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from neurectomy import AsyncClient, BadRequestError, Client, GenerateResponse, TokenEvent
from ryot import RyotEngine


def test_sdk_generate_usage_matches_ryot_tokenization(service: str, engine: RyotEngine) -> None:
    prompt = "The largest planet in the solar system is"
    with Client(service) as client:
        result = client.generate(prompt, max_tokens=8, temperature=0.0)
    assert result.text
    assert result.usage.prompt_tokens == len(engine.tokenize(prompt))
    assert result.usage.completion_tokens == 8
    assert result.usage.total_tokens == result.usage.prompt_tokens + 8
    assert result.finish_reason == "length"


def test_sdk_stream_yields_tokens_then_usage(service: str, engine: RyotEngine) -> None:
    prompt = "List three fruits:"
    with Client(service) as client:
        events = list(client.stream(prompt, max_tokens=12, temperature=0.0))
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    done = events[-1]
    assert isinstance(done, GenerateResponse)
    assert len(tokens) >= 2
    assert "".join(t.text for t in tokens) == done.text
    assert done.usage.prompt_tokens == len(engine.tokenize(prompt))
    assert done.usage.completion_tokens == 12


@pytest.mark.anyio
async def test_async_sdk_chat_stream(service: str) -> None:
    async with AsyncClient(service) as client:
        events = [
            e
            async for e in client.stream(
                messages=[{"role": "user", "content": "Say hello."}], max_tokens=6, temperature=0.0
            )
        ]
        agents = await client.agents()
    assert isinstance(events[-1], GenerateResponse)
    assert events[-1].usage.completion_tokens <= 6
    assert "generator" in [a.name for a in agents]  # other teams run too (settings.teams)


def test_raw_http_sse_format(service: str) -> None:
    body = {"prompt": "Hello", "max_tokens": 4, "temperature": 0, "stream": True}
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    sent = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01", "x-request-id": "sse-format-1"}
    with httpx.stream("POST", f"{service}/v1/generate", json=body, headers=sent, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        # the request context middleware adds the ids at the response start, each once
        assert response.headers.get_list("x-request-id") == ["sse-format-1"]
        assert response.headers.get_list("x-trace-id") == [trace_id]
        (parent,) = response.headers.get_list("traceparent")
        assert parent.startswith(f"00-{trace_id}-")
        lines = [line for line in response.iter_lines() if line]
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events[-1] == "done" and set(events[:-1]) == {"token"}
    done = json.loads(lines[-1].removeprefix("data: "))
    assert done["usage"]["completion_tokens"] == 4
    assert done["id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "Hi", "max_tokens": -1}, "max_tokens"),
        ({"prompt": "Hi", "temperature": -1}, "temperature"),
        ({"prompt": "Hi", "max_tokens": "many"}, "max_tokens"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "Hi", "bogus": 1}, "bogus"),
        ({}, "prompt"),
        ({"prompt": "Hi", "messages": [{"role": "user", "content": "Hi"}]}, "prompt"),
        ({"messages": [{"role": "robot", "content": "Hi"}]}, "messages.0.role"),
        ({"prompt": "x" * 200_001}, "prompt"),
        ({"prompt": "Hi", "max_tokens": 30000}, "max_tokens"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(service: str, body: dict[str, object], field: str) -> None:
    response = httpx.post(f"{service}/v1/generate", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    # Valid for the schema but beyond the model's context window: the code clients look for.
    overflow = body.get("max_tokens") == 30000
    assert error["code"] == ("context_length_exceeded" if overflow else "bad_request")
    assert error["field"] == field, error


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"just a string"', b"\xff\xfe\x00garbage"])
def test_malformed_bodies_are_400_never_500(service: str, raw: bytes) -> None:
    response = httpx.post(
        f"{service}/v1/generate", content=raw, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"


def test_oversized_body_is_413_with_the_limit(service: str) -> None:
    response = httpx.post(f"{service}/v1/generate", content=b"x" * (5 * 1024 * 1024), timeout=30)
    assert response.status_code == 413


def test_sdk_raises_typed_error_with_field(service: str) -> None:
    with Client(service) as client, pytest.raises(BadRequestError) as info:
        client.generate("Hi", max_tokens=1, seed=-5)
    assert info.value.field == "seed"


def test_server_side_rejection_reaches_the_sdk_as_bad_request(service: str) -> None:
    with Client(service) as client, pytest.raises(BadRequestError) as info:
        client.generate("Hi", max_tokens=8000)  # valid for the schema, beyond the 4096-token context
    assert info.value.status_code == 400
    assert info.value.field == "max_tokens"


def test_client_disconnect_cancels_generation_and_frees_the_model(service: str) -> None:
    with Client(service) as client:
        stream = client.stream("Write a very long story about a lighthouse.", max_tokens=2000)
        for _, event in zip(range(3), stream, strict=False):
            assert isinstance(event, TokenEvent)
        stream.close()  # closes the HTTP connection mid-stream
        # Had the 2000-token generation kept running, the generator would be busy with it for ~50 s.
        deadline = time.monotonic() + 5
        while next(a for a in client.agents() if a.name == "generator").in_flight:
            assert time.monotonic() < deadline, "the generation went on after the client left"
            time.sleep(0.05)
        assert client.generate("Hi", max_tokens=2).usage.completion_tokens >= 1


def test_agents_health_and_openapi(service: str) -> None:
    deadline = time.monotonic() + 30
    while True:  # replicas come from heartbeats: on a busy machine one may be late, so wait for it
        agents = {a["name"]: a for a in httpx.get(f"{service}/v1/agents", timeout=10).json()}
        if agents["generator"]["replicas"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert agents["generator"]["team"] == "inference"
    assert agents["generator"]["replicas"] == 1
    assert {n for n, a in agents.items() if a["team"] == "storage"} == {
        "archivist",
        "retriever",
        "fetcher",
        "eraser",
        "key-warden",
        "indexer",
        "snapshotter",
        "vault-stats",
    }  # the embedder behind /v1/embeddings is an internal service, not listed
    health = httpx.get(f"{service}/health", timeout=10).json()
    assert health["nats_connected"] is True and health["model_loaded"] is True
    schema = httpx.get(f"{service}/schema/openapi.json", timeout=10).json()
    assert "/v1/generate" in schema["paths"]
    assert {"/v1/vault/records", "/v1/vault/search", "/v1/vault/stats"} <= set(schema["paths"])


def test_cli_ask_streams_and_prints_usage(service: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "neurectomy",
            "ask",
            "--url",
            service,
            "--max-tokens",
            "6",
            "--temperature",
            "0",
            "Hi",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip()
    assert "6 completion tokens" in done.stderr


def test_cli_agents_table(service: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "neurectomy", "agents", "--url", service],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "generator" in done.stdout and "inference" in done.stdout


def test_json_schema_output_parses(service: str) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
    }
    with Client(service) as client:
        result = client.generate(
            messages=[{"role": "user", "content": "Invent a person; answer in JSON."}],
            json_schema=schema,
            max_tokens=48,
            temperature=0.5,
            seed=7,
        )
    person = json.loads(result.text)
    assert isinstance(person["name"], str) and isinstance(person["age"], int) and person["age"] >= 0
    bad = httpx.post(f"{service}/v1/generate", json={"prompt": "Hi", "grammar": "root ::= ("}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "grammar"


def test_request_id_is_echoed_when_safe_and_replaced_when_not(service: str) -> None:
    body = {"prompt": "Hi", "max_tokens": 1}
    ok = httpx.post(f"{service}/v1/generate", json=body, headers={"X-Request-Id": "abc-123_X"}, timeout=30)
    assert ok.headers["x-request-id"] == "abc-123_X" and ok.json()["id"] == "abc-123_X"
    # a dot or space would break the NATS cancel subject built from the id
    odd = httpx.post(f"{service}/v1/generate", json=body, headers={"X-Request-Id": "a b.c"}, timeout=30)
    assert odd.status_code == 200
    assert odd.headers["x-request-id"] != "a b.c" and odd.headers["x-request-id"].isalnum()


def test_sdk_chat_and_embeddings(service: str) -> None:
    with Client(service) as client:
        reply = client.chat([{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0.0)
        vectors = client.embeddings(
            ["A cat sits on the mat.", "A kitten rests on a rug.", "Bond yields rose."]
        )
        with pytest.raises(BadRequestError) as info:
            client.embeddings([])
    assert reply.usage.completion_tokens <= 4
    assert len(vectors) == 3 and all(len(v) == 384 for v in vectors)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert abs(cos(vectors[0], vectors[0]) - 1.0) < 1e-3
    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    assert info.value.field == "input"

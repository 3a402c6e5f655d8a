"""Pathological JSON bodies: refused before they are read where the route knows its limit, and decoded with
the garbage collector paused where they must be decoded (real NATS, the app in-process)."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import litestar.connection.request
import pydantic
import pytest

import agents._decode
from agents import Bus
from agents.collective import spec_of
from agents.limits import ENVELOPE_RESERVE_BYTES
from api import create_app
from api._bodies import JsonRequest, agent_body_limit, validate_json
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator.testing import running
from tests.api.test_agent_input_limit import LIMIT, Counter

pytestmark = pytest.mark.anyio


def nested_lists(size: int) -> bytes:
    """``{"input": {"text": [[],[],...]}}`` of about ``size`` bytes: a Python list per 3 bytes."""
    return b'{"input":{"text":[' + b",".join([b"[]"] * (size // 3)) + b"]}}"


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats_server.url, name="tests-pathological") as connected:
        yield connected


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size of every body the API decodes through Litestar (``JsonRequest.json``)."""
    seen: list[int] = []
    original = JsonRequest.json

    async def spy(self: JsonRequest) -> Any:
        seen.append(len(await self.body()))
        return await original(self)

    monkeypatch.setattr(JsonRequest, "json", spy)
    yield seen


async def test_a_body_over_the_agents_limit_is_413_before_it_is_decoded(bus: Bus, decodes: list[int]) -> None:
    agent = Counter()
    limit = agent_body_limit(LIMIT)
    assert limit == 3 * LIMIT + ENVELOPE_RESERVE_BYTES
    body = nested_lists(limit + 1000)
    async with running(bus, [agent], specs=[spec_of(Counter)]) as orchestrator:
        transport = httpx.ASGITransport(app=create_app(orchestrator))
        async with httpx.AsyncClient(transport=transport, base_url="http://neurectomy.test") as client:
            refused = await client.post(
                "/v1/agents/t-counter", content=body, headers={"content-type": "application/json"}
            )
            assert refused.status_code == 413, refused.text
            assert refused.json()["error"] == {
                "code": "too_large",
                "field": "input",
                "message": f"request body of {len(body)} bytes; t-counter takes at most {LIMIT} bytes of "
                f"JSON input, so this route takes at most {limit} bytes",
            }
            assert decodes == []  # neither the API nor the agent decoded it

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
                for start in range(0, len(body), 16384):
                    yield body[start : start + 16384]

            streamed = await client.post(
                "/v1/agents/t-counter", content=chunks(), headers={"content-type": "application/json"}
            )
            assert streamed.status_code == 413, streamed.text
            assert streamed.json()["error"]["field"] == "input"
            assert f"so this route takes at most {limit} bytes" in streamed.json()["error"]["message"]
            assert decodes == []
            health = await client.get("/health")  # 503: no generator here; it answers all the same
            assert health.json()["nats_connected"] is True
    assert agent.calls == 0


async def test_an_input_the_agent_takes_passes_however_the_client_escapes_it(bus: Bus) -> None:
    agent = Counter()
    text = "\U0001f600" * ((LIMIT - len(b'{"text":""}')) // 4)  # 4 bytes of UTF-8 each: the agent's limit
    body = json.dumps({"input": text}).encode()  # escaped: 12 bytes per character (a surrogate pair)
    assert len(body) > 2.9 * LIMIT
    async with running(bus, [agent], specs=[spec_of(Counter)]) as orchestrator:
        transport = httpx.ASGITransport(app=create_app(orchestrator))
        async with httpx.AsyncClient(transport=transport, base_url="http://neurectomy.test") as client:
            json_type = {"content-type": "application/json"}
            ok = await client.post("/v1/agents/t-counter", content=body, headers=json_type)
            assert ok.status_code == 200, ok.text
            assert ok.json()["output"] == {"chars": len(text)}
    assert agent.calls == 1


async def test_health_answers_while_a_pathological_body_is_refused(bus: Bus) -> None:
    agent = Counter()
    body = nested_lists(4 * 1024 * 1024 - 4096)  # the API's max_body_bytes
    async with running(bus, [agent], specs=[spec_of(Counter)]) as orchestrator:
        transport = httpx.ASGITransport(app=create_app(orchestrator))
        async with httpx.AsyncClient(transport=transport, base_url="http://neurectomy.test") as client:
            answers: dict[str, object] = {}

            async def post() -> None:
                response = await client.post(
                    "/v1/agents/t-counter", content=body, headers={"content-type": "application/json"}
                )
                answers["post"] = response.status_code

            async def health() -> None:
                answers["health"] = (await client.get("/health")).json()["nats_connected"]

            async with anyio.create_task_group() as tg:
                tg.start_soon(post)
                tg.start_soon(health)
    assert answers == {"post": 413, "health": True}
    assert agent.calls == 0


def test_a_large_decode_runs_with_the_collector_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    enabled_during: list[bool] = []
    original = agents._decode.pydantic_core.from_json

    def spy(data: Any) -> Any:
        enabled_during.append(gc.isenabled())
        return original(data)

    monkeypatch.setattr(agents._decode.pydantic_core, "from_json", spy)
    large = b"[" + b",".join([b"[]"] * agents._decode.GC_PAUSE_MIN_BYTES) + b"]"
    assert gc.isenabled()
    assert agents._decode.from_json(b"[[]]") == [[]]
    assert len(agents._decode.from_json(large)) == agents._decode.GC_PAUSE_MIN_BYTES
    assert enabled_during == [True, False]  # small: as it was; large: paused
    assert gc.isenabled()  # restored
    gc.disable()
    try:
        agents._decode.from_json(large)
        assert not gc.isenabled()  # a caller's pause is kept
    finally:
        gc.enable()
    with pytest.raises(ValueError, match="EOF"):
        agents._decode.from_json(large[:-1])
    assert gc.isenabled()  # restored after an error too


class Numbers(pydantic.BaseModel):
    values: list[int]


def test_a_route_validating_a_large_body_itself_pauses_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    enabled_during: list[bool] = []

    class Spied(Numbers):
        @pydantic.field_validator("values")
        @classmethod
        def record(cls, values: list[int]) -> list[int]:
            enabled_during.append(gc.isenabled())
            return values

    body = b'{"values":[' + b",".join([b"1"] * agents._decode.GC_PAUSE_MIN_BYTES) + b"]}"
    assert len(validate_json(Spied, body).values) == agents._decode.GC_PAUSE_MIN_BYTES
    assert validate_json(Spied, b'{"values":[1]}').values == [1]
    assert enabled_during == [False, True]
    assert gc.isenabled()
    with pytest.raises(pydantic.ValidationError, match="values"):
        validate_json(Numbers, body.replace(b"1", b'"a"', 1))
    assert gc.isenabled()


async def test_the_api_decodes_a_large_body_with_the_collector_paused(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    enabled_during: list[tuple[int, bool]] = []
    original = litestar.connection.request.decode_json

    def spy(value: bytes, **kwargs: Any) -> Any:
        enabled_during.append((len(value), gc.isenabled()))
        return original(value, **kwargs)

    monkeypatch.setattr(litestar.connection.request, "decode_json", spy)
    large = {"input": "x" * agents._decode.GC_PAUSE_MIN_BYTES}  # within the route's limit, over the agent's
    async with running(bus, [Counter()], specs=[spec_of(Counter)]) as orchestrator:
        transport = httpx.ASGITransport(app=create_app(orchestrator))
        async with httpx.AsyncClient(transport=transport, base_url="http://neurectomy.test") as client:
            small = await client.post("/v1/agents/t-counter", json={"input": "abc"})
            assert small.status_code == 200 and small.json()["output"] == {"chars": 3}
            refused = await client.post("/v1/agents/t-counter", json=large)
            assert refused.status_code == 413 and refused.json()["error"]["field"] == "input"
    assert [enabled for _, enabled in enabled_during] == [True, False]
    assert enabled_during[1][0] > agents._decode.GC_PAUSE_MIN_BYTES
    assert gc.isenabled()

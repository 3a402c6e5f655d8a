"""``POST /v1/agents/{name}`` with an input over the agent's ``max_input_bytes``: 413 naming ``input`` and
both sizes, refused by the agent before it decodes the JSON (real NATS, the app in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pydantic_core
import pytest

from agents import Agent, Bus, Call
from agents.collective import spec_of
from api import create_app
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator.testing import running

pytestmark = pytest.mark.anyio

LIMIT = 2000


class Counter(Agent):
    """Counts the characters of its text; takes at most :data:`LIMIT` bytes of JSON."""

    name = "t-counter"
    team = "analysis"
    description = "Counts the characters of a text."
    max_input_bytes = LIMIT

    def __init__(self) -> None:
        self.calls = 0

    async def handle(self, call: Call) -> Mapping[str, Any]:
        self.calls += 1
        return {"chars": len(call.input["text"])}


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats_server.url, name="tests-api-limit") as connected:
        yield connected


async def test_an_input_over_the_agents_limit_is_413_naming_input_and_both_sizes(bus: Bus) -> None:
    agent = Counter()
    async with running(bus, [agent], specs=[spec_of(Counter)]) as orchestrator:
        app = create_app(orchestrator)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://neurectomy.test") as client:
            described = await client.get("/v1/agents/t-counter")
            assert described.status_code == 200 and described.json()["max_input_bytes"] == LIMIT
            fits = "x" * (LIMIT - len(b'{"text":""}'))  # the agent's input is exactly LIMIT bytes
            ok = await client.post("/v1/agents/t-counter", json={"input": fits})
            assert ok.status_code == 200 and ok.json()["output"] == {"chars": len(fits)}
            over = await client.post("/v1/agents/t-counter", json={"input": fits + "y"})
            assert over.status_code == 413, over.text
            error = over.json()["error"]
            size = len(pydantic_core.to_json({"text": fits + "y"}))
            assert error == {
                "code": "too_large",
                "field": "input",
                "message": f"{size} bytes of JSON; t-counter takes at most {LIMIT} bytes",
            }
    assert agent.calls == 1

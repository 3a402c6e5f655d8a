"""The Litestar app in-process (real NATS, real agent, real model), called through httpx's ASGI transport.

The app runs in the test's own event loop, so it can share the test's NATS connection.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from agents import AgentRunner, Bus, GeneratorAgent
from api import create_app
from bridges import RyotBridge
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator import Orchestrator
from ryot import RyotEngine

pytestmark = pytest.mark.anyio


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://neurectomy.test")  # type: ignore[arg-type]


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats_server.url, name="tests-api") as connected:
        yield connected


async def test_stopped_agent_gives_503_at_once(bus: Bus, engine: RyotEngine) -> None:
    app = create_app(Orchestrator(bus))
    async with _client(app) as client, anyio.create_task_group() as tg:
        runner = AgentRunner(bus, GeneratorAgent(RyotBridge(engine)))
        scope = anyio.CancelScope()

        async def run_agent() -> None:
            with scope:
                await runner.run()

        tg.start_soon(run_agent)
        with anyio.fail_after(5):
            while not runner.instance_id:
                await anyio.sleep(0.01)
        ok = await client.post("/v1/generate", json={"prompt": "Hi", "max_tokens": 2})
        assert ok.status_code == 200
        assert (await client.get("/health")).json()["model_loaded"] is True

        scope.cancel()  # stop the agent
        with anyio.fail_after(5):
            while runner.instance_id and (await client.get("/v1/agents")).json():
                await anyio.sleep(0.01)
        # A minute's deadline: answered at the deadline instead of at once (no "no responders" from the
        # server, or a retry until the deadline), the 503 would come a minute late, which no load makes
        # of an answer at once (milliseconds idle, a few seconds on a starved machine).
        started = time.perf_counter()
        gone = await client.post("/v1/generate", json={"prompt": "Hi", "max_tokens": 2, "timeout_s": 60})
        assert time.perf_counter() - started < 15.0
        assert gone.status_code == 503
        assert gone.json()["error"]["code"] == "no_responders"
        streamed = await client.post("/v1/generate", json={"prompt": "Hi", "stream": True})
        assert streamed.status_code == 503
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json() == {
            "status": "degraded",
            "nats_connected": True,
            "model_loaded": False,
            "model": None,
            "generator_replicas": 0,
        }


async def test_full_mailbox_gives_429_with_retry_after(bus: Bus, engine: RyotEngine) -> None:
    app = create_app(Orchestrator(bus))
    runner = AgentRunner(bus, GeneratorAgent(RyotBridge(engine)), mailbox_size=1, concurrency=1)
    long = {"prompt": "Write a long essay about mountains.", "max_tokens": 300}
    async with _client(app) as client, anyio.create_task_group() as tg:
        await tg.start(runner.run)

        async def occupy() -> None:
            await client.post("/v1/generate", json=long)

        async def reached(in_flight: int, accepted: int) -> None:
            # the state itself, not a fixed wait: on a busy machine a request may take long to get there
            with anyio.fail_after(30):
                while runner.stats.in_flight < in_flight or runner.stats.accepted < accepted:
                    await anyio.sleep(0.01)

        tg.start_soon(occupy)
        await reached(1, 1)  # taken by the only worker
        tg.start_soon(occupy)
        await reached(1, 2)  # waits in the mailbox
        busy = await client.post("/v1/generate", json=long)
        assert busy.status_code == 429
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["code"] == "busy"
        tg.cancel_scope.cancel()


async def test_deadline_gives_504(bus: Bus, engine: RyotEngine) -> None:
    app = create_app(Orchestrator(bus))
    runner = AgentRunner(bus, GeneratorAgent(RyotBridge(engine)))
    async with _client(app) as client, anyio.create_task_group() as tg:
        await tg.start(runner.run)
        late = await client.post(
            "/v1/generate", json={"prompt": "Write a long story.", "max_tokens": 1500, "timeout_s": 0.3}
        )
        assert late.status_code == 504
        assert late.json()["error"]["code"] == "timeout"
        tg.cancel_scope.cancel()

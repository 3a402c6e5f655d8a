from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import pytest

from agents import Agent, AgentRunner, Bus, GeneratorAgent
from bridges import RyotBridge
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator import AgentInfo, Orchestrator
from ryot import RyotEngine

RunnerFactory = Callable[..., AbstractAsyncContextManager[AgentRunner]]


@pytest.fixture
def generator_runner(bus: Bus, engine: RyotEngine) -> RunnerFactory:
    """Runs a generator agent on the shared engine for the duration of an ``async with`` block."""

    @asynccontextmanager
    async def run(**kwargs: object) -> AsyncIterator[AgentRunner]:
        runner = AgentRunner(bus, GeneratorAgent(RyotBridge(engine)), **kwargs)  # type: ignore[arg-type]
        async with anyio.create_task_group() as tg:
            await tg.start(runner.run)
            yield runner
            tg.cancel_scope.cancel()

    return run


@asynccontextmanager
async def serving(agent_bus: Bus, agent: Agent) -> AsyncIterator[AgentRunner]:
    """Runs ``agent`` on ``agent_bus`` for the duration of an ``async with`` block."""
    runner = AgentRunner(agent_bus, agent)
    async with anyio.create_task_group() as tg:
        await tg.start(runner.run)
        yield runner
        tg.cancel_scope.cancel()


@pytest.fixture
async def agent_bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    """The agents' connection (another Bus in this process and loop than a caller's), answering callers in
    this process locally (``local_replies``)."""
    async with await Bus.connect(nats_server.url, name="tests-agents") as connected:
        connected.local_replies = True
        yield connected


async def discovered(orch: Orchestrator, seen: Callable[[list[AgentInfo]], bool]) -> list[AgentInfo]:
    """``orch.agents()`` once ``seen`` holds for its list (up to 60 s): one discovery pass collects for
    0.25 s, and on a busy machine an agent's or a replica's answer may miss it."""
    with anyio.fail_after(60):
        while not seen(agents := await orch.agents()):
            pass
    return agents

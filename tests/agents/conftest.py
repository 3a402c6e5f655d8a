from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import pytest

from agents import AgentRunner, Bus, GeneratorAgent
from bridges import RyotBridge
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

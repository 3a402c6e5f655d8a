"""``RyotBridge`` over a model pool on the real Gemma 3 270M. Loading on demand, idle unloading by the
bridge's loop and reloading are proven end to end in ``tests/api/test_models_api.py`` (and the pool's own
rules in ``tests/ryot/test_pool.py``); here: the one-engine bridge and unknown names."""

from __future__ import annotations

import anyio
import pytest

from bridges import RyotBridge
from ryot import Finished, RyotEngine, SamplingParams, UnknownModelError

pytestmark = pytest.mark.anyio


async def generate(bridge: RyotBridge, model: str | None) -> Finished:
    async for event in bridge.stream("Hello", SamplingParams(max_tokens=2, temperature=0), model=model):
        if isinstance(event, Finished):
            return event
    raise AssertionError("no Finished event")


async def test_a_bridge_over_one_engine_works_as_before(engine: RyotEngine) -> None:
    bridge = RyotBridge(engine)  # not closed: the engine belongs to the session
    assert bridge.model_name == engine.model_name and bridge.engine is engine
    with anyio.fail_after(5):
        await bridge.run_idle_unloader()  # nothing is ever unloaded: returns at once
    finished = await generate(bridge, engine.model_name)
    assert finished.usage.completion_tokens >= 1
    assert bridge.status()[0]["state"] == "loaded"
    assert await bridge.context_window() == engine.n_ctx
    assert await bridge.count_tokens("Hello world", model=engine.model_name) >= 2
    failures = bridge.metrics.failures
    with pytest.raises(UnknownModelError) as caught:
        await generate(bridge, "nope")
    assert engine.model_name in str(caught.value)
    with pytest.raises(UnknownModelError):
        await bridge.tokenize("Hello", model="nope")
    assert bridge.metrics.failures == failures + 1

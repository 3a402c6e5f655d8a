"""Starting the Inference team: the model loaded once, one bridge to it, and the eight agents.

All agents (or the one asked for) share one `bridges.RyotBridge`.

Every agent instance uses ``settings.generator``'s mailbox size and concurrency; Ryot queues what they
hand it for its single worker (a full engine queue answers ``busy``).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import anyio.abc
import structlog

from agents import AgentRunner, Bus
from agents.inference import INFERENCE_AGENTS
from bridges import RyotBridge
from neurectomy.settings import Settings

__all__ = ("start_inference",)

log = structlog.get_logger("neurectomy")


async def start_inference(
    settings: Settings,
    stack: AsyncExitStack,
    bus: Bus,
    tg: anyio.abc.TaskGroup,
    *,
    agent: str | None = None,
    replicas: int = 1,
) -> None:
    """Load the model and start the Inference team's agents (all eight, or only ``agent``).

    Raises:
        ValueError: The team has no agent named ``agent``.
        ryot.ModelLoadError: The model cannot be loaded.
    """
    names = [cls.name for cls in INFERENCE_AGENTS]
    if agent is not None and agent not in names:
        raise ValueError(f"the inference team has no agent {agent!r} (available: {', '.join(names)})")
    with anyio.CancelScope(shield=True):
        bridge = await RyotBridge.open(settings.ryot, timeout_s=settings.orchestrator.default_deadline_s)
    stack.push_async_callback(bridge.aclose)
    log.info(
        "model loaded", model=bridge.model_name, threads=bridge.engine.n_threads, n_ctx=bridge.engine.n_ctx
    )
    for cls in INFERENCE_AGENTS:
        if agent is not None and cls.name != agent:
            continue
        for _ in range(replicas):
            runner = AgentRunner(
                bus,
                cls(bridge),
                mailbox_size=settings.generator.mailbox_size,
                concurrency=settings.generator.concurrency,
            )
            await tg.start(runner.run)

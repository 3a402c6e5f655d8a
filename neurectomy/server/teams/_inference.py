"""Starting the Inference team: the model pool, one bridge to it, and the eight agents.

All agents (or the one asked for) share one `bridges.RyotBridge` over the configured models
(``settings.ryot.models``): the ``preload`` ones load before the agents start, the others on their first
request; the bridge's idle loop (in the team's task group) frees models idle past their ``idle_unload_s``.

With ``nats.shared_state`` (on against an existing NATS server or cluster) the ``chat`` agents keep their
sessions in JetStream KV (`agents.inference.SharedChatMemory`), so any replica on any host continues a
session; otherwise each instance remembers its own.

Every agent instance uses ``settings.generator``'s mailbox size and concurrency; Ryot queues what they
hand it for its single worker (a full engine queue answers ``busy``).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import anyio.abc
import structlog

from agents import Bus
from agents.inference import INFERENCE_AGENTS, ChatAgent, SessionMemory, SharedChatMemory
from agents.jetstream import JetStream
from bridges import RyotBridge
from neurectomy.server.teams._runners import check_agent, start_runners
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
    """Load the preloaded models and start the Inference team's agents (all eight, or only ``agent``).

    Raises:
        ValueError: The team has no agent named ``agent``.
        ryot.ModelLoadError: A preloaded model cannot be loaded.
    """
    check_agent("inference", [cls.name for cls in INFERENCE_AGENTS], agent)
    with anyio.CancelScope(shield=True):
        bridge = await RyotBridge.open(
            settings.ryot,
            timeout_s=settings.orchestrator.default_deadline_s,
            chunk_interval_s=settings.generator.chunk_interval_s,
        )
    stack.push_async_callback(bridge.aclose)
    for status in bridge.pool.status():
        log.info(
            "model loaded" if status.state == "loaded" else "model configured (loads on first use)",
            model=status.name,
            default=status.default,
            n_ctx=status.n_ctx,
            parallel=status.parallel,
            idle_unload_s=status.idle_unload_s,
        )
    await tg.start(bridge.run_idle_unloader)
    memory: SessionMemory | None = None
    if settings.nats.shares_state() and agent in (None, ChatAgent.name):
        memory = await SharedChatMemory.open(JetStream(bus))
        log.info("chat sessions in JetStream KV", bucket=memory._bucket.name)
    await start_runners(
        bus,
        tg,
        lambda: [cls(bridge, memory=memory) if cls is ChatAgent else cls(bridge) for cls in INFERENCE_AGENTS],
        agent=agent,
        replicas=replicas,
        mailbox_size=settings.generator.mailbox_size,
        concurrency=settings.generator.concurrency or settings.ryot.parallel,
    )

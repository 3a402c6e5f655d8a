"""Starting the Synthesis team: eight agents that compose the others through an orchestrator.

The team gets an :class:`~orchestrator.Orchestrator` of its own (on the same bus, following the same
heartbeats), passed to the agents as their `agents.collective.Collective`: their sub-calls are selected,
routed, retried and failed over like any plan step, and cancelled with the call that made them. The
same code runs in ``serve`` and in ``neurectomy agent --team synthesis`` on another host.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import anyio.abc

from agents import Bus
from agents.roster import ROSTER
from agents.synthesis import SYNTHESIS_AGENTS
from neurectomy.server.teams._runners import check_agent, start_runners
from neurectomy.settings import Settings
from orchestrator import Orchestrator

__all__ = ("AGENT_CONCURRENCY", "AGENT_MAILBOX_SIZE", "start_synthesis")

AGENT_MAILBOX_SIZE = 64
"""Calls that may wait per synthesis agent instance; one more is refused with 429."""
AGENT_CONCURRENCY = 8
"""Calls one instance handles at once (mostly waiting on other agents)."""


async def start_synthesis(
    settings: Settings,
    stack: AsyncExitStack,
    bus: Bus,
    tg: anyio.abc.TaskGroup,
    *,
    agent: str | None = None,
    replicas: int = 1,
) -> None:
    """Start the Synthesis team's agents (all eight, or only ``agent``) with an orchestrator to call through.

    Raises:
        ValueError: The team has no agent named ``agent``.
    """
    check_agent("synthesis", [cls.name for cls in SYNTHESIS_AGENTS], agent)
    orchestrator = Orchestrator(bus, settings.orchestrator, specs=ROSTER)
    await tg.start(orchestrator.run)
    collective = orchestrator.collective()
    await start_runners(
        bus,
        tg,
        lambda: [cls(collective) for cls in SYNTHESIS_AGENTS],
        agent=agent,
        replicas=replicas,
        mailbox_size=AGENT_MAILBOX_SIZE,
        concurrency=AGENT_CONCURRENCY,
    )

"""Agents in this process, and an orchestrator that has seen every one of them (tests, benchmarks).

::

    async with running(bus, [SentimentAgent(), KeywordAgent()]) as orch:
        out = await call(orch, "sentiment", {"text": "What a lovely day"})

:func:`running` returns only once every replica's first heartbeat has reached the orchestrator, so a
test may route at once: the router knows every replica and its load (waiting a fixed time instead
fails on a busy machine, when the second replica's heartbeat comes late).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

from agents.actor import Agent, AgentRunner
from agents.collective import AgentSpec
from agents.errors import NoRespondersError
from agents.messaging import Bus
from orchestrator._orchestrator import Orchestrator
from orchestrator.config import OrchestratorConfig

__all__ = ("call", "running", "wait_for_replicas")

SEEN_TIMEOUT_S = 30.0
"""How long :func:`running` waits for the agents' first heartbeats, in seconds (generous: a busy CPU)."""


async def wait_for_replicas(
    orchestrator: Orchestrator, replicas: Counter[str], *, timeout_s: float = SEEN_TIMEOUT_S
) -> None:
    """Wait until the orchestrator's load monitor sees at least ``replicas[name]`` healthy instances.

    Args:
        orchestrator: An orchestrator whose :meth:`~Orchestrator.run` is running.
        replicas: Healthy instances wanted per agent name.
        timeout_s: Give up after this many seconds.

    Raises:
        TimeoutError: Some replica's heartbeat did not arrive in time.
    """
    monitor = orchestrator.monitor
    with anyio.fail_after(timeout_s):
        while any(len(monitor.healthy(name)) < n for name, n in replicas.items()):
            await monitor.next_beat()


@asynccontextmanager
async def running(
    bus: Bus,
    agents: Iterable[Agent | AgentRunner],
    *,
    config: OrchestratorConfig | None = None,
    specs: Sequence[AgentSpec] = (),
    concurrency: int = 1,
) -> AsyncIterator[Orchestrator]:
    """Run ``agents`` and an orchestrator following their heartbeats, for an ``async with`` block.

    Args:
        bus: Connected bus.
        agents: Agents (each run by a new :class:`AgentRunner` with ``concurrency``) or runners
            (run as they are, e.g. with a small mailbox); two runners of one agent are two replicas.
        config: The orchestrator's configuration (default: :class:`OrchestratorConfig`).
        specs: The roster for selection and :meth:`Orchestrator.invoke` (default: none, enough for
            :func:`call`).
        concurrency: Calls each new runner handles at once.

    Yields:
        The orchestrator, once every runner is subscribed and its heartbeat has been seen. On exit the
        runners drain and stop.

    Raises:
        TimeoutError: A runner's heartbeat did not arrive within :data:`SEEN_TIMEOUT_S`.
    """
    runners = [
        a if isinstance(a, AgentRunner) else AgentRunner(bus, a, concurrency=concurrency) for a in agents
    ]
    orchestrator = Orchestrator(bus, config, specs=specs)
    async with anyio.create_task_group() as tg:
        await tg.start(orchestrator.run)
        for runner in runners:
            await tg.start(runner.run)
        await wait_for_replicas(orchestrator, Counter(r.agent.name for r in runners))
        yield orchestrator
        tg.cancel_scope.cancel()


async def call(
    orchestrator: Orchestrator,
    agent: str,
    payload: Any,
    *,
    tenant: str | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Call a running agent once (:meth:`Orchestrator.call_once`) and return its output.

    The agent's team comes from its heartbeats (when the orchestrator runs, as :func:`running`'s does),
    else from the orchestrator's roster, else from :data:`agents.roster.ROSTER` and the internal services
    (:data:`agents.roster.HELPERS`).

    Args:
        orchestrator: The orchestrator to call through.
        agent: Agent name.
        payload: The agent's input (an object, or text for agents that take text).
        tenant: The caller's tenant (default: the context's ``default``).
        timeout_s: Deadline in seconds (default: the orchestrator's default deadline).

    Returns:
        The agent's output.

    Raises:
        NoRespondersError: The agent's team is unknown, or no instance answers.
        AgentError: The agent's error (e.g. :class:`agents.errors.BadInputError` naming the field).
    """
    extra = {} if tenant is None else {"tenant": tenant}
    ctx = orchestrator.context(timeout_s=timeout_s, **extra)
    return await orchestrator.call_once(_team_of(orchestrator, agent), agent, payload, ctx)


def _team_of(orchestrator: Orchestrator, agent: str) -> str:
    seen = orchestrator.monitor.healthy(agent)
    if seen:
        return seen[0].beat.team
    from agents.collective import spec_of
    from agents.roster import HELPERS, ROSTER  # the whole collective: loaded only when needed

    for spec in (*orchestrator.specs, *ROSTER, *(spec_of(h) for h in HELPERS)):
        if spec.name == agent:
            return spec.team
    raise NoRespondersError(f"no instance of {agent} has been seen and no roster names it")

"""What every team starter shares: refusing an unknown agent name, and starting runners for instances."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import anyio.abc

from agents import Agent, AgentRunner, Bus

__all__ = ("check_agent", "start_runners")


def check_agent(team: str, names: Sequence[str], agent: str | None) -> None:
    """Refuse an ``agent`` the team does not have (before any resource is opened).

    Raises:
        ValueError: ``agent`` is not in ``names`` (the message lists them).
    """
    if agent is not None and agent not in names:
        raise ValueError(f"the {team} team has no agent {agent!r} (available: {', '.join(names)})")


async def start_runners(
    bus: Bus,
    tg: anyio.abc.TaskGroup,
    build: Callable[[], Iterable[Agent]],
    *,
    agent: str | None,
    replicas: int,
    mailbox_size: int,
    concurrency: int,
) -> None:
    """Start ``replicas`` runners of each instance ``build()`` makes (only ``agent``'s, if given).

    Args:
        bus: Connected bus.
        tg: Task group the runners live in.
        build: Makes one instance of each of the team's agents (called once per replica).
        agent: Only this agent, or all.
        replicas: Instances per agent (they share its queue group).
        mailbox_size: Calls that may wait per instance.
        concurrency: Calls one instance handles at once.
    """
    for _ in range(replicas):
        for instance in build():
            if agent is None or instance.name == agent:
                runner = AgentRunner(bus, instance, mailbox_size=mailbox_size, concurrency=concurrency)
                await tg.start(runner.run)

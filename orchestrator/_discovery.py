"""What runs on the bus, as the orchestrator reports it: agents, models and health from ``$SRV.STATS``.

Part of :mod:`orchestrator._orchestrator`: a mixin of :class:`~orchestrator._orchestrator.Orchestrator`,
which keeps the dispatch (selection, routing, plans, generation) while this module asks the agents'
micro services who is there (discovery), merges their replicas and joins the router's breaker states.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import anyio

from agents.collective import AgentSpec
from agents.messaging import Bus
from agents.protocol import agent_subject
from orchestrator._load import LoadMonitor
from orchestrator._models import ModelInfo, models_from_stats
from orchestrator._route import Router
from orchestrator.config import OrchestratorConfig

__all__ = ("AgentInfo", "Discovery")


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """An agent as discovered on the bus.

    Attributes:
        name: Agent name (also its queue group).
        team: Team it belongs to.
        description: What it does.
        subject: Subject it listens on.
        capabilities: What it can be asked for.
        replicas: Running instances.
        in_flight: Calls being handled across instances.
        mailbox_depth: Calls waiting across instances.
        requests: Requests received across instances.
        metadata: The first instance's metadata (e.g. the model).
        health: ``up`` (heartbeats arrive), ``down`` (no instance), or ``circuit_open`` (failing).
        load: Calls in flight and waiting per worker, summed over healthy replicas.
    """

    name: str
    team: str
    description: str
    subject: str
    capabilities: tuple[str, ...]
    replicas: int
    in_flight: int
    mailbox_depth: int
    requests: int
    metadata: dict[str, str]
    health: str = "up"
    load: float = 0.0


class Discovery:
    """Agents, models and health (mixed into :class:`~orchestrator._orchestrator.Orchestrator`).

    The orchestrator sets these attributes in its ``__init__``.
    """

    bus: Bus
    config: OrchestratorConfig
    specs: tuple[AgentSpec, ...]
    monitor: LoadMonitor
    router: Router
    health_requires_generator: bool

    async def stats(self) -> list[dict[str, Any]]:
        """Every micro service instance's ``$SRV.STATS`` answer (agents, the embedder, others on the bus).

        The collection waits (up to ``discovery_timeout_s``) for as many answers as the heartbeats report
        healthy instances, so a slow answer on a busy machine (an agent whose loop is decoding) is not
        left out; it ends a short quiet gap after that (see :meth:`Bus.discover
        <agents.messaging.Bus.discover>`).

        Returns:
            The decoded answers, one per instance that answered.
        """
        return await self.bus.discover(
            "STATS", timeout_s=self.config.discovery_timeout_s, expect=self.monitor.instances()
        )

    async def agents(self, answers: list[dict[str, Any]] | None = None) -> list[AgentInfo]:
        """Every agent of the roster and any other agent answering ``$SRV.STATS``, by team and name.

        Internal services (metadata ``internal: true``, such as the embedder) are not listed.

        One entry per agent (replicas summed); roster agents with no instance have ``replicas`` 0 and
        ``health`` ``down``.

        Args:
            answers: :meth:`stats` already collected (one collection for several views); ``None``
                collects them now.

        Returns:
            The agents sorted by team, then name, with replicas, health (``up``, ``down``,
            ``circuit_open``), load, calls in flight and queued.
        """
        if answers is None:
            answers = await self.stats()
        by_name: dict[str, AgentInfo] = {}
        for answer in answers:
            meta = {str(k): str(v) for k, v in (answer.get("metadata") or {}).items()}
            if "team" not in meta or meta.get("internal") == "true":
                continue  # another micro service on the same NATS, or an internal one (the embedder)
            endpoints = answer.get("endpoints") or [{}]
            data = endpoints[0].get("data") or {}
            name = str(answer.get("name", ""))
            prev = by_name.get(name)
            by_name[name] = AgentInfo(
                name=name,
                team=meta["team"],
                description=meta.get("description", ""),
                subject=str(endpoints[0].get("subject", "")),
                capabilities=tuple(c for c in meta.get("capabilities", "").split(",") if c),
                replicas=(prev.replicas if prev else 0) + 1,
                in_flight=(prev.in_flight if prev else 0) + int(data.get("in_flight", 0)),
                mailbox_depth=(prev.mailbox_depth if prev else 0) + int(data.get("mailbox_depth", 0)),
                requests=(prev.requests if prev else 0)
                + sum(int(e.get("num_requests", 0)) for e in endpoints),
                metadata=prev.metadata if prev else meta,
            )
        for spec in self.specs:
            if spec.name not in by_name:
                by_name[spec.name] = AgentInfo(
                    name=spec.name,
                    team=spec.team,
                    description=spec.description,
                    subject=agent_subject(spec.team, spec.name),
                    capabilities=spec.capabilities,
                    replicas=0,
                    in_flight=0,
                    mailbox_depth=0,
                    requests=0,
                    metadata={},
                    health="down",
                )
        for name, info in by_name.items():
            if info.replicas == 0:
                continue
            _, load = self.monitor.load(name)
            breaker = self.router.breakers.get(name)
            health = "circuit_open" if breaker is not None and breaker.state == "open" else "up"
            by_name[name] = replace(info, health=health, load=round(load, 3))
        return sorted(by_name.values(), key=lambda a: (a.team, a.name))

    async def models(self, answers: list[dict[str, Any]] | None = None) -> list[ModelInfo]:
        """The models the running agents serve, with their status (see `orchestrator._models`).

        Ryot models come from the Inference agents' pool status (every configured model, loaded or
        not), others (the embedding model) from the agents' metadata.

        Args:
            answers: :meth:`stats` already collected; ``None`` collects them now (waiting for every
                instance the heartbeats report, so a generator busy decoding is not left out).

        Returns:
            One entry per model: id, kind, status, the agent that reported it, context size and load.
        """
        return models_from_stats(await self.stats() if answers is None else answers)

    async def health(self) -> dict[str, Any]:
        """NATS connectivity and whether a generator with a loaded model answers.

        Whether the generator gates ``ok`` is the constructor's ``health_requires_generator``.

        Returns:
            ``status`` (``ok`` or ``degraded``), ``nats_connected``, ``model_loaded``, ``model`` and
            ``generator_replicas``.
        """
        connected = self.bus.is_connected
        generators: list[AgentInfo] = []
        if connected:
            with anyio.move_on_after(self.config.discovery_timeout_s * 2):
                generators = [a for a in await self.agents() if a.name == "generator"]
        model_loaded = any(a.metadata.get("model_loaded") == "true" for a in generators)
        return {
            "status": "ok"
            if connected and (model_loaded or not self.health_requires_generator)
            else "degraded",
            "nats_connected": connected,
            "model_loaded": model_loaded,
            "model": generators[0].metadata.get("model") if generators else None,
            "generator_replicas": sum(a.replicas for a in generators),
        }

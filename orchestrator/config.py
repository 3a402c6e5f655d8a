"""Configuration of the orchestrator."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class OrchestratorConfig(BaseModel):
    """How the orchestrator dispatches calls to agents."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_deadline_s: float = Field(default=120.0, gt=0)
    """Deadline of a call when the caller gives none, in seconds."""
    accept_timeout_s: float = Field(default=2.0, gt=0)
    """How long an agent may take to accept (or refuse) a call, in seconds."""
    discovery_timeout_s: float = Field(default=0.25, gt=0)
    """Upper bound on collecting ``$SRV`` answers when listing agents, in seconds."""

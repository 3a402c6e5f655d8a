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
    step_timeout_s: float = Field(default=60.0, gt=0)
    """Deadline of one attempt of a plan step or routed call when none is given, in seconds."""
    retries: int = Field(default=2, ge=0, le=10)
    """Extra attempts of a routed call after a retryable failure (timeout, crash, lost instance)."""
    backoff_base_s: float = Field(default=0.05, gt=0)
    """First retry waits up to this long (full jitter, doubling per retry), in seconds."""
    backoff_max_s: float = Field(default=2.0, gt=0)
    """Upper bound of one backoff, in seconds."""
    retry_budget_ratio: float = Field(default=0.2, ge=0, le=1)
    """Retries may add at most this share of the calls of the last ``retry_budget_window_s``."""
    retry_budget_min: int = Field(default=10, ge=0)
    """Retries always allowed per window."""
    retry_budget_window_s: float = Field(default=10.0, gt=0)
    """Sliding window of the retry budget, in seconds."""
    breaker_failures: int = Field(default=5, ge=1)
    """Consecutive failures of an agent that open its circuit breaker."""
    breaker_reset_s: float = Field(default=5.0, gt=0)
    """Seconds an open breaker refuses calls before letting one probe through."""
    heartbeat_ttl_factor: float = Field(default=3.0, gt=1)
    """Heartbeat intervals of silence after which an instance counts as gone."""
    task_deadline_s: float = Field(default=600.0, gt=0)
    """Deadline of one run of a durable task (planning and every step), in seconds."""

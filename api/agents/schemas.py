"""Bodies of the agent routes: ``GET /v1/agents/{name}``, ``POST /v1/agents/{name}``, ``POST /v1/select``.

Pure pydantic (shared with the SDK): importing this module does not import the web framework.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_AGENT_TIMEOUT_S = 600.0
"""Longest deadline a caller may ask for one agent call, in seconds."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    """Base of response bodies: unknown fields are ignored, so a newer server never breaks an older SDK."""

    model_config = ConfigDict(extra="ignore")


class AgentSpecOut(_Out):
    """An agent kind of the roster: what it does, what it takes and gives."""

    name: str
    team: str
    description: str
    capabilities: list[str]
    bridges: list[str]
    """Engines it reaches: ``ryot``, ``sigma``, ``vault``, ``collective`` (other agents)."""
    input_schema: dict[str, Any]
    """JSON Schema of its input object."""
    output_schema: dict[str, Any]
    """JSON Schema of its output (empty if undeclared)."""
    text_input: str | None
    """The input field a plain-text ``input`` fills (None: the agent needs an object)."""
    text_output: str | None
    """The output field holding its main text (None: no text output)."""
    max_input_bytes: int | None = None
    """Largest input it takes, in bytes of JSON (an input object as the service writes it: UTF-8, no
    spaces); a larger one is refused with 413 naming ``input`` and both sizes. None from older servers."""


class AgentCallRequest(_Body):
    """Body of ``POST /v1/agents/{name}``."""

    input: str | dict[str, Any]
    """The agent's input object, or a text that fills the agent's text field (see ``text_input``)."""
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_AGENT_TIMEOUT_S)
    """Deadline of the call in seconds (default: the orchestrator's)."""
    retries: int | None = Field(default=None, ge=0, le=10)
    """Extra attempts after retryable failures (default: the orchestrator's)."""
    fallback: bool = True
    """Whether another agent of the same capability may answer when this one is busy or down."""


class AgentCallResponse(_Out):
    """Result of ``POST /v1/agents/{name}``."""

    agent: str
    """The agent that answered (a fallback if the named one was busy or down)."""
    team: str
    output: dict[str, Any]
    attempts: int
    """Calls made (refusals, failovers and retries included)."""
    failovers: list[str]
    """Attempts that did not answer, as ``agent: code``."""


class SelectRequest(_Body):
    """Body of ``POST /v1/select``: give a goal, a capability, or both."""

    goal: str | None = Field(default=None, min_length=1, max_length=10_000)
    capability: str | None = Field(default=None, min_length=1, max_length=64)
    k: int = Field(default=5, ge=1, le=50)
    """Candidates listed in the explanation."""

    @model_validator(mode="after")
    def _something(self) -> SelectRequest:
        if self.goal is None and self.capability is None:
            raise ValueError("give a goal or a capability")
        return self


class CandidateOut(_Out):
    """An agent considered by selection."""

    agent: str
    score: float
    """0.5 · capability + 0.5 · max(semantic, 0)."""
    capability: float
    semantic: float
    """Cosine similarity of the goal to the agent's description."""
    load: float


class SelectResponse(_Out):
    """The chosen agent and why."""

    agent: str
    team: str
    method: Literal["name", "capability", "semantic", "lexical"]
    candidates: list[CandidateOut]

"""The collective: ``/v1/agents`` (list, describe, call, select).

The routes are in ``api.agents.routes`` (wired by ``api.app``); the package exports the wire models, so the
SDK can import them without Litestar.
"""

from api.agents.schemas import (
    MAX_AGENT_TIMEOUT_S,
    AgentCallRequest,
    AgentCallResponse,
    AgentSpecOut,
    CandidateOut,
    SelectRequest,
    SelectResponse,
)

__all__ = (
    "MAX_AGENT_TIMEOUT_S",
    "AgentCallRequest",
    "AgentCallResponse",
    "AgentSpecOut",
    "CandidateOut",
    "SelectRequest",
    "SelectResponse",
)

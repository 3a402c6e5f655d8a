"""The orchestrator: dispatches each step of a request to an agent over NATS and relays the stream."""

from orchestrator._dispatch import CallContext, call_agent
from orchestrator._observe import CallObserver
from orchestrator._orchestrator import AgentInfo, Orchestrator, TextDelta
from orchestrator.config import OrchestratorConfig

__all__ = (
    "AgentInfo",
    "CallContext",
    "CallObserver",
    "Orchestrator",
    "OrchestratorConfig",
    "TextDelta",
    "call_agent",
)

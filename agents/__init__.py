"""The collective: agents as actors on NATS, the wire protocol, and the one NATS module.

Subjects are ``neurectomy.agent.<team>.<agent>``; replicas of an agent share the queue group
``<agent>``. See :mod:`agents.protocol` for the message flow.

The names below load on first use (as pydantic's do), so importing one leaf module of the package
(as the SDK does) loads nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from agents._compiled import install

install()  # the call path's compiled modules, when built and current (agents._compiled)

if TYPE_CHECKING:
    from agents.actor import Agent, AgentRunner, Call, RunnerStats
    from agents.errors import (
        AgentBusyError,
        AgentError,
        AgentFailedError,
        BadInputError,
        CancelledByCallerError,
        ContextLengthExceededError,
        DeadlineExceededError,
        ForbiddenError,
        InstanceLostError,
        NoRespondersError,
        NotFoundError,
        StreamBrokenError,
        TooLargeError,
        error_from_wire,
    )
    from agents.inference import GeneratorAgent
    from agents.messaging import Bus, Message, NatsAuth

__all__ = (
    "Agent",
    "AgentBusyError",
    "AgentError",
    "AgentFailedError",
    "AgentRunner",
    "BadInputError",
    "Bus",
    "Call",
    "CancelledByCallerError",
    "ContextLengthExceededError",
    "DeadlineExceededError",
    "ForbiddenError",
    "GeneratorAgent",
    "InstanceLostError",
    "Message",
    "NatsAuth",
    "NoRespondersError",
    "NotFoundError",
    "RunnerStats",
    "StreamBrokenError",
    "TooLargeError",
    "error_from_wire",
)

_MODULE_OF = {
    "Agent": "agents.actor",
    "AgentRunner": "agents.actor",
    "Call": "agents.actor",
    "RunnerStats": "agents.actor",
    "AgentBusyError": "agents.errors",
    "AgentError": "agents.errors",
    "AgentFailedError": "agents.errors",
    "BadInputError": "agents.errors",
    "CancelledByCallerError": "agents.errors",
    "ContextLengthExceededError": "agents.errors",
    "DeadlineExceededError": "agents.errors",
    "ForbiddenError": "agents.errors",
    "InstanceLostError": "agents.errors",
    "NoRespondersError": "agents.errors",
    "NotFoundError": "agents.errors",
    "StreamBrokenError": "agents.errors",
    "TooLargeError": "agents.errors",
    "error_from_wire": "agents.errors",
    "GeneratorAgent": "agents.inference",
    "Bus": "agents.messaging",
    "Message": "agents.messaging",
    "NatsAuth": "agents.messaging",
}


def __getattr__(name: str) -> object:
    """Load a public name from its module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, with the public ones not loaded yet."""
    return [*globals(), *__all__]

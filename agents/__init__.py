"""The collective: agents as actors on NATS, the wire protocol, and the one NATS module.

Subjects are ``neurectomy.agent.<team>.<agent>``; replicas of an agent share the queue group
``<agent>``. See :mod:`agents.protocol` for the message flow.
"""

from agents.actor import Agent, AgentRunner, Call, RunnerStats
from agents.errors import (
    AgentBusyError,
    AgentError,
    AgentFailedError,
    BadInputError,
    CancelledByCallerError,
    DeadlineExceededError,
    InstanceLostError,
    NoRespondersError,
    NotFoundError,
    StreamBrokenError,
    TooLargeError,
    error_from_wire,
)
from agents.inference import GeneratorAgent
from agents.messaging import Bus, Message

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
    "DeadlineExceededError",
    "GeneratorAgent",
    "InstanceLostError",
    "Message",
    "NoRespondersError",
    "NotFoundError",
    "RunnerStats",
    "StreamBrokenError",
    "TooLargeError",
    "error_from_wire",
)

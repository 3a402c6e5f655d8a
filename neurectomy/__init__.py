"""Neurectomy: actor-based agent orchestration over NATS, with a CPU-native LLM (Ryot).

The Python SDK::

    from neurectomy import Client, AsyncClient
"""

from api.schemas import AgentOut, ChatMessage, GenerateResponse, Health, TokenEvent, Usage
from api.schemas_agents import AgentCallResponse, AgentSpecOut, SelectResponse
from api.schemas_keys import KeyCreated, KeyOut
from api.schemas_tasks import TaskCreated, TaskRecord
from neurectomy.client import AsyncClient, Client, StreamEvent
from neurectomy.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BusyError,
    DeadlineError,
    ForbiddenError,
    NeurectomyError,
    NotFoundError,
    StreamError,
    TooLargeError,
    UnavailableError,
)

__version__ = "0.1.0"

__all__ = (
    "APIError",
    "AgentCallResponse",
    "AgentOut",
    "AgentSpecOut",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "BusyError",
    "ChatMessage",
    "Client",
    "DeadlineError",
    "ForbiddenError",
    "GenerateResponse",
    "Health",
    "KeyCreated",
    "KeyOut",
    "NeurectomyError",
    "NotFoundError",
    "SelectResponse",
    "StreamError",
    "StreamEvent",
    "TaskCreated",
    "TaskRecord",
    "TokenEvent",
    "TooLargeError",
    "UnavailableError",
    "Usage",
    "__version__",
)

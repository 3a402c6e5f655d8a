"""Neurectomy: actor-based agent orchestration over NATS, with a CPU-native LLM (Ryot).

The Python SDK::

    from neurectomy import Client, AsyncClient
"""

from api.schemas import AgentOut, ChatMessage, GenerateResponse, Health, TokenEvent, Usage
from neurectomy.client import AsyncClient, Client, StreamEvent
from neurectomy.errors import (
    APIError,
    BadRequestError,
    BusyError,
    DeadlineError,
    NeurectomyError,
    NotFoundError,
    StreamError,
    TooLargeError,
    UnavailableError,
)

__version__ = "0.1.0"

__all__ = (
    "APIError",
    "AgentOut",
    "AsyncClient",
    "BadRequestError",
    "BusyError",
    "ChatMessage",
    "Client",
    "DeadlineError",
    "GenerateResponse",
    "Health",
    "NeurectomyError",
    "NotFoundError",
    "StreamError",
    "StreamEvent",
    "TokenEvent",
    "TooLargeError",
    "UnavailableError",
    "Usage",
    "__version__",
)

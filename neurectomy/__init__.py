"""Neurectomy: actor-based agent orchestration over NATS, with a CPU-native LLM (Ryot).

The Python SDK::

    from neurectomy import Client, AsyncClient

The names below load on first use (as pydantic's do), so ``import neurectomy`` and the SDK load none of the
service: no Litestar, no engines, nothing of ``neurectomy.server`` or ``neurectomy.cli``. The packages:
``neurectomy.sdk`` (clients, resources, errors), ``neurectomy.cli`` (the ``neurectomy`` command),
``neurectomy.server`` (runtime, team wiring, nats-server, keys, logs), ``neurectomy.settings`` and
``neurectomy.testing`` (starting ``neurectomy serve`` in tests and benchmarks).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.agents.schemas import AgentCallResponse, AgentSpecOut, SelectResponse
    from api.generate.schemas import AgentOut, ChatMessage, GenerateResponse, Health, TokenEvent, Usage
    from api.keys.schemas import KeyCreated, KeyOut
    from api.tasks.schemas import TaskCreated, TaskRecord
    from neurectomy.sdk.client import AsyncClient, Client, StreamEvent
    from neurectomy.sdk.errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
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
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
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

_MODULE_OF = {
    "AgentCallResponse": "api.agents.schemas",
    "AgentSpecOut": "api.agents.schemas",
    "SelectResponse": "api.agents.schemas",
    "AgentOut": "api.generate.schemas",
    "ChatMessage": "api.generate.schemas",
    "GenerateResponse": "api.generate.schemas",
    "Health": "api.generate.schemas",
    "TokenEvent": "api.generate.schemas",
    "Usage": "api.generate.schemas",
    "KeyCreated": "api.keys.schemas",
    "KeyOut": "api.keys.schemas",
    "TaskCreated": "api.tasks.schemas",
    "TaskRecord": "api.tasks.schemas",
    "AsyncClient": "neurectomy.sdk.client",
    "Client": "neurectomy.sdk.client",
    "StreamEvent": "neurectomy.sdk.client",
    "APIConnectionError": "neurectomy.sdk.errors",
    "APIError": "neurectomy.sdk.errors",
    "APITimeoutError": "neurectomy.sdk.errors",
    "AuthenticationError": "neurectomy.sdk.errors",
    "BadRequestError": "neurectomy.sdk.errors",
    "BusyError": "neurectomy.sdk.errors",
    "DeadlineError": "neurectomy.sdk.errors",
    "ForbiddenError": "neurectomy.sdk.errors",
    "NeurectomyError": "neurectomy.sdk.errors",
    "NotFoundError": "neurectomy.sdk.errors",
    "StreamError": "neurectomy.sdk.errors",
    "TooLargeError": "neurectomy.sdk.errors",
    "UnavailableError": "neurectomy.sdk.errors",
}


def __getattr__(name: str) -> object:
    """Load a public name from its module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'neurectomy' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, with the public ones not loaded yet."""
    return [*globals(), *__all__]

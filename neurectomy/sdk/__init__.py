"""The Python SDK: typed sync and async clients of the HTTP API, their resources and errors.

It imports nothing of the service (``neurectomy.server``, ``neurectomy.cli``, the engines); an
import-linter contract in ``pyproject.toml`` keeps it so.
"""

from neurectomy.sdk._collective import (
    AgentsResource,
    AsyncAgentsResource,
    AsyncKeysResource,
    AsyncTasksResource,
    KeysResource,
    TasksResource,
)
from neurectomy.sdk._send import AsyncOpenEvents, AsyncSend, OpenEvents, Send
from neurectomy.sdk._sigma import AsyncSigmaResource, CompressResult, DecompressResult, SigmaResource
from neurectomy.sdk._vault import AsyncVaultResource, VaultResource
from neurectomy.sdk.client import DEFAULT_URL, AsyncClient, Client, StreamEvent
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

__all__ = (
    "APIConnectionError",
    "APITimeoutError",
    "DEFAULT_URL",
    "APIError",
    "AgentsResource",
    "AsyncAgentsResource",
    "AsyncClient",
    "AsyncKeysResource",
    "AsyncOpenEvents",
    "AsyncSend",
    "AsyncSigmaResource",
    "AsyncTasksResource",
    "AsyncVaultResource",
    "AuthenticationError",
    "BadRequestError",
    "BusyError",
    "Client",
    "CompressResult",
    "DeadlineError",
    "DecompressResult",
    "ForbiddenError",
    "KeysResource",
    "NeurectomyError",
    "NotFoundError",
    "OpenEvents",
    "Send",
    "SigmaResource",
    "StreamError",
    "StreamEvent",
    "TasksResource",
    "TooLargeError",
    "UnavailableError",
    "VaultResource",
)

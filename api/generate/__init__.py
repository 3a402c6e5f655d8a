"""Generation: ``POST /v1/generate`` (JSON or SSE) and the shared request/response models.

The routes are in ``api.generate.routes`` (wired by ``api.app``); the package exports the wire models, so the
SDK can import them without Litestar.
"""

from api.generate.schemas import (
    MAX_PROMPT_CHARS,
    AgentOut,
    ChatMessage,
    ErrorBody,
    ErrorDetail,
    GenerateRequest,
    GenerateResponse,
    Health,
    Timings,
    TokenEvent,
    Usage,
)

__all__ = (
    "MAX_PROMPT_CHARS",
    "AgentOut",
    "ChatMessage",
    "ErrorBody",
    "ErrorDetail",
    "GenerateRequest",
    "GenerateResponse",
    "Health",
    "Timings",
    "TokenEvent",
    "Usage",
)

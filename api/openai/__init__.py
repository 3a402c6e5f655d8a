"""The OpenAI-compatible surface: ``/v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings``, ...

The routes are in ``api.openai.routes`` (wired by ``api.app``); the package exports the wire models, so the
SDK can import them without Litestar.
"""

from api.openai.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    ContentPart,
    EmbeddingRequest,
    JsonObjectFormat,
    JsonSchemaFormat,
    JsonSchemaSpec,
    ModelList,
    ModelObject,
    OpenAIChatMessage,
    OpenAIError,
    OpenAIErrorBody,
    OpenAIUsage,
    PromptTokensDetails,
    ResponseFormat,
    StreamOptions,
    TextFormat,
)

__all__ = (
    "ChatCompletionRequest",
    "CompletionRequest",
    "ContentPart",
    "EmbeddingRequest",
    "JsonObjectFormat",
    "JsonSchemaFormat",
    "JsonSchemaSpec",
    "ModelList",
    "ModelObject",
    "OpenAIChatMessage",
    "OpenAIError",
    "OpenAIErrorBody",
    "OpenAIUsage",
    "PromptTokensDetails",
    "ResponseFormat",
    "StreamOptions",
    "TextFormat",
)

"""Request and response bodies of the OpenAI-compatible routes (``/v1/chat/completions`` and friends).

Field names, shapes and defaults follow OpenAI's API reference (https://platform.openai.com/docs/api-reference)
so that unmodified OpenAI clients and IDE plugins work. Extensions: ``top_k``, ``min_p`` and
``repeat_penalty`` (llama.cpp sampling). Unknown fields are refused with 400 naming them, except the
commonly sent harmless ones listed on each model.

Pure pydantic: importing this module does not import the web framework.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.generate.schemas import MAX_PROMPT_CHARS

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

_Text = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]

MAX_STOP = 8
"""Most stop sequences in one request (OpenAI allows 4)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContentPart(_Body):
    """A text part of a message's content (images and audio are not served)."""

    type: Literal["text"]
    text: str = Field(max_length=MAX_PROMPT_CHARS)


class OpenAIChatMessage(_Body):
    """One message. ``developer`` is treated as ``system``; tool messages are not served."""

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] | list[ContentPart]
    name: str | None = None
    """Accepted and ignored."""

    def text(self) -> str:
        """The content as one string (text parts joined)."""
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(_Body):
    """``stream_options``."""

    include_usage: bool = False
    """Send one more chunk before ``[DONE]`` with empty ``choices`` and the request's ``usage``."""


class TextFormat(_Body):
    """``response_format`` ``{"type": "text"}``: unconstrained (the default)."""

    type: Literal["text"]


class JsonObjectFormat(_Body):
    """``response_format`` ``{"type": "json_object"}``: any JSON object (grammar-constrained)."""

    type: Literal["json_object"]


class JsonSchemaSpec(_Body):
    """The ``json_schema`` member of a JSON-schema response format."""

    name: str = Field(default="response", max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=lambda: {"type": "object"}, alias="schema")
    """The JSON Schema the output must satisfy (converted to a GBNF grammar)."""
    strict: bool | None = None
    """Accepted; the output always follows the schema (grammar-constrained decoding)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JsonSchemaFormat(_Body):
    """``response_format`` ``{"type": "json_schema", "json_schema": {"schema": ...}}``."""

    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


class _Sampling(_Body):
    """Fields shared by chat completions and completions."""

    model: str = Field(min_length=1, max_length=256)
    """A configured model's name (``GET /v1/models``) selects it; any other name (``default``, ``local``,
    ``gpt-4o``, ...) gets the default model, so that IDE plugins with a fixed name keep working. The
    response names the model that served it."""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0, le=1000)
    """Extension: keep the k most likely tokens; 0 disables."""
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    """Extension: drop tokens below min_p × the top probability."""
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=10.0)
    """Extension: llama.cpp's repetition penalty; 1 disables."""
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    stop: str | list[str] | None = None
    """Up to 8 strings that end the completion (not included in the text)."""
    n: int = Field(default=1, ge=1, le=128)
    """Choices to generate; only 1 is served (others are refused with 400)."""
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    """Accepted and ignored."""
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    """Only 0 is served."""
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    """Only 0 is served."""
    logprobs: bool | int | None = None
    """Only absent/false is served."""


class ChatCompletionRequest(_Sampling):
    """Body of ``POST /v1/chat/completions``."""

    messages: list[OpenAIChatMessage] = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    """Upper bound on completion tokens (256 when neither this nor ``max_completion_tokens`` is given)."""
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    """Newer name of ``max_tokens``; wins when both are given."""
    top_logprobs: int | None = None
    """Only absent is served."""


class CompletionRequest(_Sampling):
    """Body of ``POST /v1/completions`` (legacy text completion)."""

    prompt: _Text | list[_Text]
    """Text to continue; a list must hold exactly one string."""
    max_tokens: int = Field(default=16, ge=1, le=32768)
    """Upper bound on completion tokens (OpenAI's default: 16)."""
    echo: bool = False
    """Only false is served."""
    suffix: str | None = None
    """Only absent is served."""


class EmbeddingRequest(_Body):
    """Body of ``POST /v1/embeddings``."""

    model: str = Field(min_length=1, max_length=256)
    """Any name is accepted; the response names the model that served it (all-MiniLM-L6-v2)."""
    input: _Text | list[_Text]
    """A string or up to 256 strings (token arrays are not served)."""
    encoding_format: Literal["float", "base64"] = "float"
    """``base64``: little-endian float32 bytes, base64-encoded (what the openai package asks for)."""
    dimensions: int | None = Field(default=None, ge=1)
    """Only the model's own dimension (384) is served."""
    user: str | None = None
    """Accepted and ignored."""


class PromptTokensDetails(_Body):
    """Breakdown of the prompt tokens."""

    cached_tokens: int
    """Prompt tokens whose KV cache entries were reused from an earlier request."""


class OpenAIUsage(_Body):
    """Token counts, from the model's own tokenizer."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class OpenAIError(_Body):
    """What went wrong, in OpenAI's shape."""

    message: str
    type: str
    """``invalid_request_error``, ``rate_limit_error``, ``service_unavailable_error``, ``timeout_error``,
    ``server_error``."""
    param: str | None = None
    """The request field at fault."""
    code: str | None = None
    """Our error code (``bad_request``, ``busy``, ``no_responders``, ``timeout``, ...)."""


class OpenAIErrorBody(_Body):
    """Body of every error response of the OpenAI-compatible routes (and of an error event in a stream)."""

    error: OpenAIError


class ModelObject(BaseModel):
    """One entry of ``GET /v1/models``.

    OpenAI's model object (``id``, ``object``, ``created``, ``owned_by``) and the served model's status
    (OpenAI clients ignore the extra fields).
    """

    id: str = Field(description="The name requests pass as ``model``.")
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str
    kind: Literal["generation", "embedding"] = Field(description="A Ryot model, or the embedding model.")
    status: str = Field(description="``loaded``, ``loading``, ``unloaded`` or ``failed`` (see ``error``).")
    loaded: bool
    default: bool = Field(description="Requests that name no configured model get this one.")
    n_ctx: int | None = Field(description="Context window of one request, in tokens.")
    parallel: int | None = Field(description="Requests decoded together per replica.")
    memory_bytes: int | None = Field(
        description="Approximate bytes of the loaded copies: GGUF + KV cache + prefix cache in use."
    )
    active: int = Field(description="Requests being decoded now, over all replicas.")
    queue_depth: int = Field(description="Requests waiting for a free sequence, over all replicas.")
    loaded_at: float | None = Field(description="When a loaded copy finished loading (Unix seconds).")
    last_used_at: float | None = Field(description="Latest use by any replica (Unix seconds).")
    idle_unload_s: float | None = Field(description="Idle seconds after which a copy is freed (null: never).")
    replicas: int = Field(description="Processes that serve the model.")
    loaded_replicas: int = Field(description="Of those, the ones that have it loaded now.")
    error: str | None = Field(description="Why the last load failed (status ``failed``).")


class ModelList(BaseModel):
    """The body of ``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelObject]

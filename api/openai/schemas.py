"""Request and response bodies of the OpenAI-compatible routes (``/v1/chat/completions`` and friends).

Field names, shapes and defaults follow OpenAI's API reference (https://platform.openai.com/docs/api-reference)
so that unmodified OpenAI clients and IDE plugins work. Every field the reference documents is accepted
(``null`` meaning "not given"); those that only matter to OpenAI's platform (``user``, ``metadata``,
``store``, ``service_tier``, ``safety_identifier``, ``prompt_cache_key``, ``reasoning_effort``,
``verbosity``, ``prediction``, ``stream_options.include_obfuscation``, ...) are accepted and ignored; those
asking for something not served (audio, images, web search) are refused with 400 naming them. Unknown
fields are refused with 400 naming them, as OpenAI does. Extensions: ``top_k``, ``min_p`` and
``repeat_penalty`` (llama.cpp sampling).

Pure pydantic: importing this module does not import the web framework.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.generate.schemas import MAX_PROMPT_CHARS, TOP_K_MAX

__all__ = (
    "MAX_CHOICES",
    "AllowedTools",
    "AllowedToolsChoice",
    "AssistantMessage",
    "ChatCompletionRequest",
    "CompletionRequest",
    "ContentPart",
    "EmbeddingRequest",
    "FunctionCall",
    "FunctionDefinition",
    "FunctionMessage",
    "FunctionTool",
    "JsonObjectFormat",
    "JsonSchemaFormat",
    "JsonSchemaSpec",
    "ModelList",
    "ModelObject",
    "NamedToolChoice",
    "OpenAIChatMessage",
    "OpenAIError",
    "OpenAIErrorBody",
    "OpenAIUsage",
    "PromptTokensDetails",
    "ResponseFormat",
    "StreamOptions",
    "SystemMessage",
    "TextFormat",
    "ToolCall",
    "ToolMessage",
    "UserMessage",
)

_Text = Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]
_TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=MAX_PROMPT_CHARS)]

MAX_STOP = 8
"""Most stop sequences in one request (OpenAI allows 4)."""
MAX_CHOICES = 16
"""Largest ``n`` (choices per prompt) served."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContentPart(BaseModel):
    """A part of a message's content: ``text`` (served), ``refusal`` (assistant history), or another kind.

    Kinds not served (``image_url``, ``input_audio``, ``file``) are refused with 400 naming the part.
    """

    model_config = ConfigDict(extra="allow")

    type: str
    text: _Text | None = None
    refusal: _Text | None = None

    def as_text(self) -> str | None:
        """The part's text (a refusal counts as text); ``None`` for a part that is not text."""
        if self.type == "text":
            return self.text or ""
        if self.type == "refusal":
            return self.refusal or ""
        return None


_Content = _Text | list[ContentPart]


class _Message(_Body):
    name: str | None = None
    """Accepted and ignored."""

    def text(self) -> str:
        """The content as one string (text parts joined)."""
        content = getattr(self, "content", None)
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        return "".join(p.as_text() or "" for p in content)


class SystemMessage(_Message):
    """A ``system`` or ``developer`` message (``developer`` is treated as ``system``)."""

    role: Literal["system", "developer"]
    content: _Content


class UserMessage(_Message):
    """A ``user`` message (text parts only)."""

    role: Literal["user"]
    content: _Content


class FunctionCall(_Body):
    """The ``function`` of a tool call: its name and its arguments as a JSON text."""

    name: str = Field(min_length=1, max_length=256)
    arguments: str = Field(max_length=MAX_PROMPT_CHARS)


class ToolCall(_Body):
    """A call the assistant made (in a previous turn)."""

    id: str = Field(max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(_Message):
    """An ``assistant`` message of the history: text, or ``content: null`` with ``tool_calls``."""

    role: Literal["assistant"]
    content: _Content | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    """Deprecated form of one tool call."""
    audio: dict[str, Any] | None = None
    """Accepted and ignored (a reference to an earlier audio answer)."""


class ToolMessage(_Message):
    """A ``tool`` message: the result of the assistant's call ``tool_call_id``."""

    role: Literal["tool"]
    content: _Content
    tool_call_id: str = Field(max_length=256)


class FunctionMessage(_Message):
    """Deprecated ``function`` message: the result of the function ``name``."""

    role: Literal["function"]
    content: _Text | None = None


OpenAIChatMessage = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(_Body):
    """A function the model may call."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_.\-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    """JSON Schema of the arguments (an object); none: no arguments. The call is grammar-constrained to it."""
    strict: bool | None = None
    """Accepted; calls always follow the schema (grammar-constrained decoding)."""


class FunctionTool(_Body):
    """An entry of ``tools``. Only ``function`` tools are served (``custom`` ones are refused)."""

    type: Literal["function"]
    function: FunctionDefinition


class _ToolName(_Body):
    name: str


class NamedToolChoice(_Body):
    """``tool_choice`` ``{"type": "function", "function": {"name": ...}}``: call that tool."""

    type: Literal["function"]
    function: _ToolName


class AllowedTools(_Body):
    """The ``allowed_tools`` member: a subset of ``tools`` and whether a call is required."""

    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]] = Field(min_length=1)


class AllowedToolsChoice(_Body):
    """``tool_choice`` ``{"type": "allowed_tools", "allowed_tools": {...}}``."""

    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice | AllowedToolsChoice


class StreamOptions(_Body):
    """``stream_options``."""

    include_usage: bool | None = None
    """Send one more chunk before ``[DONE]`` with empty ``choices`` and the request's ``usage``."""
    include_obfuscation: bool | None = None
    """Accepted and ignored (OpenAI pads chunks against side channels; a local server does not)."""


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
    top_k: int | None = Field(default=None, ge=0, le=TOP_K_MAX)
    """Extension: keep the k most likely tokens; 0 disables."""
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    """Extension: drop tokens below min_p × the top probability."""
    repeat_penalty: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    """Extension: llama.cpp's repetition penalty; 1 disables."""
    seed: int | None = Field(default=None, ge=-(2**63), le=2**64 - 1)
    """Sampling seed (taken modulo 2**32); with ``n > 1`` choice ``i`` uses ``seed + i``."""
    stop: str | list[str] | None = None
    """Up to 8 strings that end the completion (not included in the text)."""
    n: int | None = Field(default=None, ge=1)
    """Choices to generate per prompt (at most 16), decoded side by side in the engine's batch."""
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = None
    """Accepted and ignored."""
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    """Subtracted once from the logit of each token already sampled."""
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    """Subtracted from a token's logit once per time it was sampled."""
    logit_bias: dict[str, float] | None = None
    """Token id (of the served model's own vocabulary, see ``POST /tokenize``) → bias in -100..100."""


class ChatCompletionRequest(_Sampling):
    """Body of ``POST /v1/chat/completions``."""

    messages: list[OpenAIChatMessage] = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    """Upper bound on completion tokens (256 when neither this nor ``max_completion_tokens`` is given)."""
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    """Newer name of ``max_tokens``; wins when both are given."""
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    """Return each output token's log probability (natural log, from the model's raw logits)."""
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    """With ``logprobs``: also the most likely tokens at each position."""
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    """``none``, ``auto`` (default when tools are given), ``required``, a named function, or
    ``allowed_tools``. See the module :mod:`api.openai.tools` for how the model decides."""
    parallel_tool_calls: bool | None = None
    """Accepted; at most one call is made per answer (which the reference allows)."""
    functions: list[FunctionDefinition] | None = Field(default=None, max_length=128)
    """Deprecated form of ``tools``."""
    function_call: Literal["none", "auto"] | _ToolName | None = None
    """Deprecated form of ``tool_choice``."""
    metadata: dict[str, str] | None = None
    """Accepted and ignored (as ``store``, ``service_tier``, ...)."""
    store: bool | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    prediction: dict[str, Any] | None = None
    """Accepted and ignored (a latency hint)."""
    modalities: list[Literal["text", "audio"]] | None = None
    """Only ``["text"]`` is served."""
    audio: dict[str, Any] | None = None
    """Not served: refused with 400 when given."""
    web_search_options: dict[str, Any] | None = None
    """Not served: refused with 400 when given."""


Prompt = _Text | list[_Text] | _TokenIds | list[_TokenIds]


class CompletionRequest(_Sampling):
    """Body of ``POST /v1/completions`` (legacy text completion)."""

    prompt: Prompt
    """Text, a list of texts, token ids, or a list of token-id lists (one completion per prompt, choices
    numbered prompt by prompt). Token ids are the served model's own (see ``POST /tokenize``)."""
    max_tokens: int | None = Field(default=16, ge=1, le=32768)
    """Upper bound on completion tokens (OpenAI's default: 16)."""
    echo: bool | None = None
    """Put the prompt before the completion in ``text`` (text prompts)."""
    suffix: str | None = None
    """Only absent is served."""
    best_of: int | None = Field(default=None, ge=1)
    """Only ``best_of`` equal to ``n`` (or absent) is served."""
    logprobs: int | None = Field(default=None, ge=0, le=5)
    """Log probabilities of each output token and of the ``logprobs`` most likely tokens."""


_EmbeddingInput = Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]


class EmbeddingRequest(_Body):
    """Body of ``POST /v1/embeddings``."""

    model: str = Field(min_length=1, max_length=256)
    """Any name is accepted; the response names the model that served it (all-MiniLM-L6-v2)."""
    input: _EmbeddingInput | list[_EmbeddingInput] | _TokenIds | list[_TokenIds]
    """A string, up to 256 strings, token ids or lists of token ids (of the embedding model's own
    WordPiece vocabulary). An input over the model's 256-token window is refused with 400."""
    encoding_format: Literal["float", "base64"] | None = None
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
    """The request field at fault, in OpenAI's notation (``messages[2].content``)."""
    code: str | None = None
    """Our error code (``bad_request``, ``context_length_exceeded``, ``busy``, ``no_responders``, ...)."""


class OpenAIErrorBody(_Body):
    """Body of every error response of the OpenAI-compatible routes (and of an error event in a stream)."""

    error: OpenAIError


class ModelObject(BaseModel):
    """One entry of ``GET /v1/models``.

    OpenAI's model object (``id``, ``object``, ``created``, ``owned_by``), the served model's status and
    what its file says about it (OpenAI clients ignore the extra fields).
    """

    id: str = Field(description="The name requests pass as ``model``.")
    object: Literal["model"] = "model"
    created: int = Field(
        0,
        description="When the model's file was last modified (Unix seconds); 0 while the file is not known "
        "(a packaged model that no replica has loaded yet).",
    )
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
    architecture: str | None = Field(None, description="``gemma3``, ``llama``, ``bitnet``; MiniLM: ``bert``.")
    parameter_count: int | None = Field(None, description="The model's parameters (null: not known yet).")
    quantization: str | None = Field(None, description="The weights' type: ``Q4_K_M``, ``F16``, ``F32``.")
    context_length_trained: int | None = Field(
        None, description="The context the model was trained with, in tokens (``n_ctx`` is what is served)."
    )
    embedding_length: int | None = Field(None, description="The width of the model's hidden state.")
    file_size: int | None = Field(None, description="Bytes of the model's file.")


class ModelList(BaseModel):
    """The body of ``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelObject]

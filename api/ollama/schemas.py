"""Request bodies of the Ollama-compatible routes (https://github.com/ollama/ollama/blob/main/docs/api.md).

Like Ollama (whose Go decoder ignores unknown JSON fields), unknown fields are ignored; fields that
only matter to Ollama's own runtime (``keep_alive``, ``template``, ``context``, ``think``, most of
``options``) are accepted and have no effect. Pure pydantic: no web framework imported.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api._sampling import LenientSampling
from api.generate.schemas import MAX_PROMPT_CHARS

__all__ = (
    "OllamaChatRequest",
    "OllamaEmbedRequest",
    "OllamaEmbeddingsRequest",
    "OllamaGenerateRequest",
    "OllamaMessage",
    "OllamaModelRequest",
    "OllamaOptions",
    "OllamaToolCall",
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OllamaOptions(_Body, LenientSampling):
    """``options``: the sampling ones are served, the runtime ones (``num_ctx``, ``num_gpu``, ...) ignored.

    Out-of-range sampling values are taken as Ollama takes them rather than refused (see
    :mod:`api._sampling`: ``temperature`` below 0 is greedy, above 2 used as given, ``top_p`` and
    ``min_p`` clamped into [0, 1], ``top_k`` ≤ 0 off, ``repeat_penalty`` ≤ 0 off, any ``top_k``,
    ``repeat_penalty`` and presence/frequency penalty used as given). Only non-finite numbers are refused,
    with the field's name.
    """

    num_predict: int | None = None
    """Most tokens to generate; absent or negative (Ollama's "until done"): 256."""
    seed: int | None = None
    stop: list[str] | str | None = None


class OllamaFunctionCall(_Body):
    """``function`` of an Ollama tool call: arguments as an object (not a JSON text, unlike OpenAI)."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class OllamaToolCall(_Body):
    """A tool call of an assistant message."""

    function: OllamaFunctionCall
    id: str | None = None


class OllamaMessage(_Body):
    """A chat message; ``images`` are refused (text-only model)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    images: list[str] | None = None
    tool_calls: list[OllamaToolCall] | None = None
    tool_name: str | None = None
    """For ``tool`` messages: the tool that produced the result."""
    thinking: str | None = None


Format = Literal["", "json"] | dict[str, Any] | None


class _Generation(_Body):
    model: str = Field(min_length=1, max_length=256)
    """A configured model's name; any other name gets the default model (as on the OpenAI routes)."""
    stream: bool = True
    """NDJSON chunks (Ollama's default); false: one JSON object."""
    format: Format = None
    """``json`` (any JSON object) or a JSON Schema: grammar-constrained output."""
    options: OllamaOptions | None = None
    keep_alive: str | int | float | None = None
    think: bool | str | None = None


class OllamaChatRequest(_Generation):
    """Body of ``POST /api/chat``."""

    messages: list[OllamaMessage] = Field(default_factory=list, max_length=256)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    """OpenAI-style function tools; the model may answer with ``message.tool_calls``."""


class OllamaGenerateRequest(_Generation):
    """Body of ``POST /api/generate``."""

    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    """Empty: only load the model (answered with ``done_reason: "load"``)."""
    system: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    suffix: str | None = None
    raw: bool = False
    """No template: the prompt is continued as given (the default renders it as a user chat turn)."""
    template: str | None = None
    context: list[int] | None = None
    images: list[str] | None = None


class OllamaEmbedRequest(_Body):
    """Body of ``POST /api/embed``."""

    model: str = Field(min_length=1, max_length=256)
    input: str | list[str]
    truncate: bool = True
    """False: an input over the model's window is an error instead of being cut."""
    dimensions: int | None = None
    options: dict[str, Any] | None = None
    keep_alive: str | int | float | None = None


class OllamaEmbeddingsRequest(_Body):
    """Body of the legacy ``POST /api/embeddings``."""

    model: str = Field(min_length=1, max_length=256)
    prompt: str


class OllamaModelRequest(_Body):
    """Body of ``POST /api/show`` (``model``, or the older ``name``)."""

    model: str | None = None
    name: str | None = None
    verbose: bool | None = None

    @model_validator(mode="after")
    def _named(self) -> OllamaModelRequest:
        if not (self.model or self.name):
            raise ValueError("give model")
        return self

    @property
    def model_name(self) -> str:
        """The model asked about."""
        return str(self.model or self.name)

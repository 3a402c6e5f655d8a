"""Request and response bodies of the HTTP API, shared with the Python SDK.

Pure pydantic: importing this module does not import the web framework.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.protocol import TOP_K_MAX as TOP_K_MAX  # for the SDK-shared bodies (the wire's bound)
from agents.protocol import Sampling

MAX_PROMPT_CHARS = 200_000
"""Longest accepted prompt (or message content), in characters; longer input is refused with 400."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    """Base of response bodies: unknown fields are ignored, so a newer server never breaks an older SDK."""

    model_config = ConfigDict(extra="ignore")


class ChatMessage(_Body):
    """One message of a conversation."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_PROMPT_CHARS)


class GenerateRequest(_Body, Sampling):
    """Body of ``POST /v1/generate``: give ``prompt`` or ``messages`` (chat), not both.

    The sampling fields (``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``min_p``,
    ``repeat_penalty``, ``seed``, ``stop``), their defaults and ranges are the wire's
    (:class:`agents.protocol.Sampling`).
    """

    prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS)
    """Text to continue."""
    messages: list[ChatMessage] | None = Field(default=None, min_length=1, max_length=256)
    """Conversation, rendered with the model's chat template."""
    json_schema: dict[str, Any] | None = None
    """Constrain the completion to JSON valid for this JSON Schema (grammar-constrained decoding)."""
    grammar: str | None = Field(default=None, max_length=100_000)
    """Constrain the completion to a GBNF grammar (llama.cpp's format, rule ``root``)."""
    speculative: bool = False
    """Speculative decoding by prompt lookup (greedy only): faster when the output repeats the input;
    in a near tie the text can differ from the one without it (batched verification rounds differently)."""
    model: str | None = Field(default=None, min_length=1, max_length=256)
    """A configured model's name (``GET /v1/models``); none: the default model. Unknown names: 404."""
    stream: bool = False
    """Answer with Server-Sent Events: ``token`` events, then one ``done`` (or ``error``) event."""
    timeout_s: float | None = Field(default=None, gt=0.0, le=3600.0)
    """Deadline of the request in seconds (default from settings); past it the answer is 504."""


class Usage(_Out):
    """Exact token counts, from the model's own tokenizer."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    """Prompt tokens whose KV cache entries were reused from an earlier request."""
    total_tokens: int


class Timings(_Out):
    """Engine-side timings in seconds."""

    queue_s: float
    ttft_s: float
    """Time to first token once the engine picked the request (prefill included)."""
    decode_s: float
    decode_tokens_per_s: float | None


class GenerateResponse(_Out):
    """Body of a non-streamed ``POST /v1/generate``, and data of the final ``done`` SSE event."""

    id: str
    model: str
    text: str
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: Usage
    timings: Timings


class TokenEvent(_Out):
    """Data of a ``token`` SSE event."""

    text: str


class ErrorDetail(_Out):
    """What went wrong."""

    code: str
    """``bad_request``, ``busy``, ``no_responders``, ``timeout``, ``cancelled``, ``internal``, ..."""
    message: str
    field: str | None = None
    """The request field at fault, for ``bad_request``."""


class ErrorBody(_Out):
    """Body of every error response, and data of an ``error`` SSE event."""

    error: ErrorDetail
    request_id: str | None = None


class AgentOut(_Out):
    """An agent of the collective as seen on NATS right now."""

    name: str
    team: str
    description: str
    subject: str
    capabilities: list[str]
    replicas: int
    in_flight: int
    mailbox_depth: int
    requests: int
    metadata: dict[str, str]
    health: Literal["up", "down", "circuit_open"] = "up"
    """``up`` (heartbeats arrive), ``down`` (no instance runs) or ``circuit_open`` (failing calls)."""
    load: float = 0.0
    """Calls in flight and waiting per worker, summed over the healthy replicas."""


class Health(_Out):
    """Body of ``GET /health``."""

    status: Literal["ok", "degraded"]
    nats_connected: bool
    model_loaded: bool
    model: str | None
    generator_replicas: int

"""Frames of the WebSocket chat (``GET /v1/ws``), shared with clients.

Pure pydantic: importing this module does not import the web framework. Every frame is one JSON object
in one WebSocket text message (a binary message holding UTF-8 JSON is accepted too), told apart by
``type``.

Client → server:

- ``chat``: ``{"type": "chat", "id", "messages": [...], "max_tokens", "temperature", ...}``
- ``generate``: ``{"type": "generate", "id", "prompt", "max_tokens", ...}``
- ``cancel``: ``{"type": "cancel", "id"}`` stops the generation ``id``.
- ``ping``: ``{"type": "ping"}`` is answered with a ``pong``.

Server → client:

- ``token``: ``{"type": "token", "id", "text"}``, zero or more per generation.
- ``done``: ``{"type": "done", "id", "text", "finish_reason", "usage", "timings", ...}``, or
- ``error``: ``{"type": "error", "id", "code", "message", "field"}``.
- ``pong``.

Each generation ends with exactly one ``done`` or ``error`` frame (code ``cancelled`` after a
``cancel``). Frames of one generation arrive in order; frames of concurrent generations interleave.
A frame the server cannot use is answered with an ``error`` frame naming the field (``id`` is echoed
when it could be read) and the socket stays open.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from api.generate.schemas import MAX_PROMPT_CHARS, ChatMessage, GenerateRequest, Timings, Usage

__all__ = (
    "MAX_FRAME_ID_CHARS",
    "CancelFrame",
    "ChatFrame",
    "ClientFrame",
    "DoneFrame",
    "ErrorFrame",
    "GenerateFrame",
    "PingFrame",
    "PongFrame",
    "TokenFrame",
    "client_frame_adapter",
)

MAX_FRAME_ID_CHARS = 128
"""Longest accepted generation id, in characters."""

FrameId = Annotated[str, Field(min_length=1, max_length=MAX_FRAME_ID_CHARS)]
"""The client's name for one generation, unique among the generations running on its socket."""


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatFrame(GenerateRequest):
    """Start a chat completion: ``messages`` rendered with the model's chat template.

    Sampling fields (``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``min_p``,
    ``repeat_penalty``, ``seed``, ``stop``, ``json_schema``, ``grammar``, ``timeout_s``) are those of
    ``POST /v1/generate``, with the same limits.
    """

    type: Literal["chat"]
    id: FrameId
    """Name of this generation; its ``token``/``done``/``error`` frames carry it."""
    prompt: None = None
    """Not used by ``chat`` (see ``generate``)."""
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    """Conversation, rendered with the model's chat template."""
    stream: Literal[True] = True
    """Always streamed on the WebSocket."""


class GenerateFrame(GenerateRequest):
    """Start a plain completion of ``prompt``; sampling fields as in :class:`ChatFrame`."""

    type: Literal["generate"]
    id: FrameId
    """Name of this generation; its ``token``/``done``/``error`` frames carry it."""
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    """Text to continue."""
    messages: None = None
    """Not used by ``generate`` (see ``chat``)."""
    stream: Literal[True] = True
    """Always streamed on the WebSocket."""


class CancelFrame(_Frame):
    """Stop the generation ``id``: its agent stops within one decode step and frees its model slot."""

    type: Literal["cancel"]
    id: FrameId


class PingFrame(_Frame):
    """Ask for a ``pong`` (keep-alive, or a round-trip check)."""

    type: Literal["ping"]
    id: FrameId | None = None
    """Echoed in the ``pong``."""


ClientFrame = Annotated[ChatFrame | GenerateFrame | CancelFrame | PingFrame, Field(discriminator="type")]
"""Any frame a client may send."""

client_frame_adapter: TypeAdapter[ChatFrame | GenerateFrame | CancelFrame | PingFrame] = TypeAdapter(
    ClientFrame
)
"""Validates a decoded client frame (``validate_python``) into its frame class."""


class TokenFrame(_Frame):
    """Streamed text of the generation ``id``."""

    type: Literal["token"] = "token"
    id: str
    text: str


class DoneFrame(_Frame):
    """The generation ``id`` finished; its last frame."""

    type: Literal["done"] = "done"
    id: str
    request_id: str
    """Request id of the generation on the server (in every log line of every hop)."""
    model: str
    text: str
    """The whole completion (the ``token`` texts joined)."""
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: Usage
    timings: Timings


class ErrorFrame(_Frame):
    """A refused frame, or a generation that failed (then its last frame)."""

    type: Literal["error"] = "error"
    id: str | None = None
    """The generation (or frame) at fault, when known."""
    code: str
    """``bad_request``, ``not_found``, ``busy``, ``no_responders``, ``timeout``, ``cancelled``, ..."""
    message: str
    field: str | None = None
    """The frame field at fault, dotted for nested fields (``messages.0.role``)."""
    request_id: str | None = None
    """Request id of the generation on the server, once it was started."""


class PongFrame(_Frame):
    """Answer to a ``ping``."""

    type: Literal["pong"] = "pong"
    id: str | None = None

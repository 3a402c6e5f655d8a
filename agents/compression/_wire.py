"""Inputs of the compression agents, their size limits, and the base64 convention for binary data.

Binary payloads (messages, frames, dictionary samples) travel as standard base64 (RFC 4648 §4, with
padding) in the JSON of the wire protocol; the ``compressor`` and ``decompressor`` also take their
messages or frames raw, as a binary attachment after the JSON (`agents.protocol.Attached`, laid out
by `agents.compression.wire.pack_parts`), and then answer the same way. A NATS message may carry at
most ``NATS_MAX_PAYLOAD_BYTES`` (the embedded server's ``max_payload``), so binary data is limited to
``MAX_DATA_BYTES`` (either way: one limit): its base64 text plus the JSON envelope and report must fit
in one message, both in the request and in the reply.
"""

from __future__ import annotations

import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from agents.compression.wire import MAX_BATCH_ITEMS
from agents.errors import TooLargeError
from agents.limits import ENVELOPE_RESERVE_BYTES, NATS_MAX_PAYLOAD_BYTES

__all__ = (
    "ENVELOPE_RESERVE_BYTES",
    "MAX_BATCH_ITEMS",
    "MAX_DATA_BYTES",
    "MAX_QUERY_CHARS",
    "MAX_TEXT_CHARS",
    "NATS_MAX_PAYLOAD_BYTES",
    "Base64Data",
    "CompressInput",
    "DecompressInput",
    "DedupInput",
    "FrameInput",
    "OptimizeInput",
    "RSUInput",
    "TrainInput",
    "check_size",
)

MAX_DATA_BYTES = (NATS_MAX_PAYLOAD_BYTES - ENVELOPE_RESERVE_BYTES) // 4 * 3
"""Largest binary payload (a message, a frame, a decoded frame, a batch), bytes: 6,242,304."""
MAX_TEXT_CHARS = 256 * 1024
"""Longest text the context optimiser accepts, characters (exact token counting of the whole text
takes about 1 s at this size)."""
MAX_QUERY_CHARS = 10_000
"""Longest query of a context optimisation, characters."""


def _decode_base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")  # pydantic turns ValueError into a field error
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64: {exc}") from None


Base64Data = Annotated[bytes, BeforeValidator(_decode_base64)]
"""Bytes carried as a standard base64 string; anything else fails validation naming the field."""

StreamId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
"""A conversation id."""

RSUIdHex = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{32}$")]
"""An RSU id (16 bytes) as 32 hex digits."""


def check_size(field: str, size: int, limit: int = MAX_DATA_BYTES, *, unit: str = "bytes") -> None:
    """Refuse ``size`` above ``limit``.

    Raises:
        TooLargeError: Naming ``field``, the size and the limit.
    """
    if size > limit:
        raise TooLargeError(
            f"{size} {unit}; the limit is {limit} {unit} (NATS max payload "
            f"{NATS_MAX_PAYLOAD_BYTES // (1024 * 1024)} MiB, binary data travels as base64)",
            field=field,
        )


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CompressInput(_Input):
    """Input of ``compressor``: one message (``data``) or a batch of one stream's turns (``messages``)."""

    data: Base64Data | None = None
    """The message, base64."""
    messages: list[Base64Data] | None = Field(default=None, min_length=1, max_length=MAX_BATCH_ITEMS)
    """A batch, base64 each, compressed in order (each may use the previous one of the stream)."""
    level: int | None = Field(default=None, ge=-7, le=22)
    """zstd level; default from the codec configuration."""
    dedup: bool = True
    """Reference RSUs the shared store holds and add new ones (False: a self-contained frame)."""
    stream: str | None = Field(default=None, min_length=1, max_length=256)
    """Conversation the message belongs to (its previous message is the first part of the context)."""
    streams: list[StreamId | None] | None = Field(default=None, min_length=1, max_length=MAX_BATCH_ITEMS)
    """With ``messages``, instead of ``stream``: each message's conversation (None: none), in order (a
    batch may gather the turns of many conversations)."""


class DecompressInput(_Input):
    """Input of ``decompressor``: one frame (``frame``) or a batch (``frames``)."""

    frame: Base64Data | None = None
    """A ΣLANG frame, base64."""
    frames: list[Base64Data] | None = Field(default=None, min_length=1, max_length=MAX_BATCH_ITEMS)
    """A batch of frames, base64 each."""


class FrameInput(_Input):
    """Input of ``glyph-encoder`` and ``codec-inspector``."""

    frame: Base64Data
    """A ΣLANG frame, base64."""


class DedupInput(_Input):
    """Input of ``deduplicator``."""

    messages: list[Base64Data] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    """The batch, base64 each, in order."""
    commit: bool = False
    """Add the batch's new chunks to the store (collectable until a frame references them)."""


class OptimizeInput(_Input):
    """Input of ``context-optimizer``."""

    text: str
    """The context to shrink (at most `MAX_TEXT_CHARS` characters)."""
    budget_tokens: int = Field(ge=0, le=10_000_000)
    """Most tokens the result may have."""
    query: str = Field(default="", max_length=MAX_QUERY_CHARS)
    """What the context is for; units relevant to it are kept first."""
    protected: list[tuple[int, int]] = Field(default_factory=list, max_length=1024)
    """``[start, end)`` character offsets that must be kept verbatim."""
    by_paragraph: bool = False
    """Select whole paragraphs instead of sentences."""


class TrainInput(_Input):
    """Input of ``dictionary-trainer``: binary samples, text samples, or both."""

    samples: list[Base64Data] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)
    """Typical messages, base64 each."""
    texts: list[str] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)
    """Typical messages as text (UTF-8 encoded for training)."""
    activate: bool = True
    """Use the new dictionary for new frames."""


class RSUInput(_Input):
    """Input of ``rsu-manager``.

    Actions: ``stats``; ``pin`` (``data`` to store and pin, or ``rsu_ids``); ``unpin`` (``rsu_ids``);
    ``release`` (``frame``: drop the references of a deleted frame); ``gc``.
    """

    action: Literal["stats", "pin", "unpin", "release", "gc"]
    rsu_ids: list[RSUIdHex] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)
    """RSU ids, 32 hex digits each."""
    data: Base64Data | None = None
    """Content to store as RSUs and pin, base64 (``pin``)."""
    frame: Base64Data | None = None
    """The frame whose references to drop, base64 (``release``)."""

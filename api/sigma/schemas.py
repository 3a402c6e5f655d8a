"""Request and response bodies of the ΣLANG endpoints (``/v1/sigma/*``), shared with the Python SDK.

Pure pydantic: importing this module does not import the web framework. Binary data in JSON bodies is
standard base64 (RFC 4648 §4, padded); ``/v1/sigma/compress`` and ``/v1/sigma/decompress`` also take
raw ``application/octet-stream`` bodies and then answer with raw bytes and the report, as JSON, in the
``X-Sigma-Report`` header. ``/v1/sigma/compress/batch`` takes and (on ``Accept:
application/octet-stream``) answers length-prefixed binary bodies (`pack_parts`).
"""

from __future__ import annotations

import binascii
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agents.compression.wire import (
    BATCH_REPORTS_PART,
    MAX_BATCH_ITEMS,
    SigmaCompressionReport,
    SigmaShares,
    TokenCounter,
    pack_parts,
    unpack_parts,
)

__all__ = (
    "BATCH_REPORTS_PART",
    "MAX_BATCH_MESSAGES",
    "REPORT_HEADER",
    "SigmaCompressBatchRequest",
    "SigmaCompressBatchResponse",
    "SigmaCompressRequest",
    "SigmaCompressResponse",
    "SigmaCompressionReport",
    "SigmaDecompressBatchRequest",
    "SigmaDecompressBatchResponse",
    "SigmaDecompressReport",
    "SigmaDecompressRequest",
    "SigmaDecompressResponse",
    "SigmaOptimizeRequest",
    "SigmaOptimizeResponse",
    "SigmaShares",
    "SigmaStats",
    "SigmaTrainRequest",
    "SigmaTrainResponse",
    "base64_decoded_size",
    "pack_parts",
    "unpack_parts",
)

REPORT_HEADER = "x-sigma-report"
"""Response header carrying the report (JSON) of a binary compress or decompress."""


def base64_decoded_size(text: str) -> int:
    """Bytes that a padded base64 string decodes to, without decoding it."""
    n = len(text)
    return n // 4 * 3 - (text.endswith("==") + text.endswith("=")) if n else 0


MAX_BATCH_MESSAGES = MAX_BATCH_ITEMS
"""Most messages (or frames) in one batch request."""


def _check_base64(value: str) -> str:
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64: {exc}") from None
    return value


Base64Text = Annotated[str, AfterValidator(_check_base64)]
"""Binary data as a standard, padded base64 string."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # newer servers may add fields


class SigmaCompressRequest(_Request):
    """JSON body of ``POST /v1/sigma/compress``."""

    data: Base64Text
    """The message, base64."""
    level: int | None = Field(default=None, ge=-7, le=22)
    """zstd level; default from the server's ΣLANG settings."""
    dedup: bool = True
    """Reference RSUs the server's store holds, and add new ones; False makes a self-contained frame
    (decodable by any ΣLANG decoder with the same dictionary)."""
    stream: str | None = Field(default=None, min_length=1, max_length=256)
    """Conversation id: the previous message of the same stream is offered to zstd as context."""
    timeout_s: float | None = Field(default=None, gt=0.0, le=3600.0)
    """Deadline of the request in seconds (default from settings)."""


class SigmaCompressResponse(_Response):
    """JSON answer of ``POST /v1/sigma/compress``."""

    frame: str
    """The ΣLANG frame, base64."""
    report: SigmaCompressionReport


class SigmaCompressBatchRequest(_Request):
    """JSON body of ``POST /v1/sigma/compress/batch``: many messages of one stream in one request."""

    messages: list[Base64Text] = Field(min_length=1, max_length=MAX_BATCH_MESSAGES)
    """The messages, base64 each, compressed in order (each may use the previous one as context)."""
    level: int | None = Field(default=None, ge=-7, le=22)
    """zstd level; default from the server's ΣLANG settings."""
    dedup: bool = True
    """Store-backed frames of the caller's tenant (False: self-contained frames)."""
    stream: str | None = Field(default=None, min_length=1, max_length=256)
    """Conversation id of the messages."""
    streams: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        default=None, min_length=1, max_length=MAX_BATCH_MESSAGES
    )
    """Instead of ``stream``: each message's conversation id, in order (one per message), so one
    request can carry the turns of many conversations."""
    timeout_s: float | None = Field(default=None, gt=0.0, le=3600.0)
    """Deadline of the request in seconds (default from settings)."""


class SigmaCompressBatchResponse(_Response):
    """JSON answer of ``POST /v1/sigma/compress/batch``: one frame and report per message, in order."""

    results: list[SigmaCompressResponse]


class SigmaDecompressBatchRequest(_Request):
    """JSON body of ``POST /v1/sigma/decompress/batch``."""

    frames: list[Base64Text] = Field(min_length=1, max_length=MAX_BATCH_MESSAGES)
    """Frames of the caller's tenant, base64 each."""
    timeout_s: float | None = Field(default=None, gt=0.0, le=3600.0)
    """Deadline of the request in seconds (default from settings)."""


class SigmaDecompressBatchResponse(_Response):
    """JSON answer of ``POST /v1/sigma/decompress/batch``: the original bytes of each frame, in order."""

    datas: list[str]
    """Base64 each."""


class SigmaDecompressRequest(_Request):
    """JSON body of ``POST /v1/sigma/decompress``."""

    frame: Base64Text
    """A ΣLANG frame, base64."""
    timeout_s: float | None = Field(default=None, gt=0.0, le=3600.0)
    """Deadline of the request in seconds (default from settings)."""


class SigmaDecompressReport(_Response):
    """What a decoded frame held."""

    bytes_in: int
    """Frame length, bytes."""
    bytes_out: int
    """Decoded length, bytes."""
    ratio: float
    """``bytes_out / bytes_in``: the frame's compression ratio."""
    tokens_out: int
    """Tokens of the decoded content (decoded as UTF-8), by ``token_counter``."""
    token_counter: TokenCounter
    glyphs: int
    """RSU references resolved from the store."""
    referenced_bytes: int
    """Bytes that came from the store."""
    literal_bytes: int
    """Bytes that came from the frame's payload."""
    dict_id: int | None
    """Trained dictionary the frame used, or None."""


class SigmaDecompressResponse(_Response):
    """JSON answer of ``POST /v1/sigma/decompress``."""

    data: str
    """The original bytes, base64."""
    report: SigmaDecompressReport


class SigmaOptimizeRequest(_Request):
    """Body of ``POST /v1/sigma/optimize`` (lossy: opt in by calling it)."""

    text: str
    """The context to fit (at most 262,144 characters; more is 413)."""
    budget_tokens: int = Field(ge=0, le=10_000_000)
    """Most tokens the result may have, counted with the served model's tokenizer."""
    query: str = Field(default="", max_length=10_000)
    """What the context is for; the units most relevant to it (BM25) are kept first."""
    protected: list[tuple[int, int]] = Field(default_factory=list, max_length=1024)
    """``[start, end)`` character offsets that must be kept verbatim."""
    by_paragraph: bool = False
    """Select whole paragraphs instead of sentences."""
    timeout_s: float | None = Field(default=None, gt=0.0, le=3600.0)
    """Deadline of the request in seconds (default from settings)."""


class SigmaOptimizeResponse(_Response):
    """Answer of ``POST /v1/sigma/optimize``: code blocks, JSON and numbers are never altered."""

    text: str
    """The kept units in their original order."""
    tokens_in: int
    tokens_out: int
    """Tokens of ``text`` (never above ``budget_tokens``)."""
    budget_tokens: int
    token_ratio: float | None
    """``tokens_in / tokens_out``."""
    token_counter: TokenCounter
    units_total: int
    """Sentences (or paragraphs) the input was split into."""
    units_kept: int
    code_blocks_dropped: int
    """Fenced code blocks left out (each kept whole or dropped whole)."""
    json_values_dropped: int
    """Stand-alone JSON values left out (likewise)."""


class SigmaTrainRequest(_Request):
    """Body of ``POST /v1/sigma/dictionaries``: binary samples, text samples, or both."""

    samples: list[Base64Text] = Field(default_factory=list, max_length=4096)
    """Typical messages, base64 each."""
    texts: list[str] = Field(default_factory=list, max_length=4096)
    """Typical messages as text."""
    activate: bool = True
    """Use the new dictionary for new frames."""
    timeout_s: float | None = Field(default=None, gt=0.0, le=3600.0)
    """Deadline of the request in seconds (default from settings)."""


class SigmaTrainResponse(_Response):
    """Answer of ``POST /v1/sigma/dictionaries``."""

    trained: bool
    """False when there were too few samples (``reason`` says why); compression goes on without."""
    dict_id: int | None
    size_bytes: int
    samples: int
    """Non-empty samples used."""
    sample_bytes: int
    min_samples: int
    """Samples needed for a dictionary."""
    active: bool
    """Whether new frames use it."""
    reason: str | None


class SigmaStats(_Response):
    """Answer of ``GET /v1/sigma/stats``: the caller's tenant's part of the RSU store."""

    rsus: int
    """RSUs in the store."""
    bytes: int
    """Their content, bytes."""
    referenced: int
    """RSUs some frame references."""
    pinned: int
    evicted: int = 0
    """RSUs of the caller's tenant evicted by retention (bytes or age) since the store opened."""
    dictionaries: int
    """Trained dictionaries registered."""
    active_dict_id: int | None
    token_counter: TokenCounter
    metrics: dict[str, float]
    """Counters of the compression bridge that answered (compressions, bytes_in, failures, ...)."""

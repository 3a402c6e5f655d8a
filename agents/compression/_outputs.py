"""Outputs of the compression agents (their published output schemas) and the compression report.

The compression report's one wire shape is `agents.compression.wire.SigmaCompressionReport`
(`CompressionReportOut` here); `report_out` builds it from a :class:`sigmalang.CompressionReport`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from agents.compression.wire import SigmaCompressionReport, SigmaShares, TokenCounter
from sigmalang import CompressionReport

__all__ = (
    "CodecInspectOutput",
    "CompressOutput",
    "CompressionReportOut",
    "ContextOptimizeOutput",
    "DecompressOutput",
    "DecompressReportOut",
    "DedupMessageOut",
    "DedupOutput",
    "FrameOut",
    "GlyphOutput",
    "RSUManagerOutput",
    "SharesOut",
    "StoreSummaryOut",
    "TrainOutput",
    "report_out",
)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


SharesOut = SigmaShares
"""Fractions of the gross saving (the wire model, `agents.compression.wire`)."""
CompressionReportOut = SigmaCompressionReport
"""What one compression achieved (the wire model, `agents.compression.wire`)."""


def _ratio(numerator: int | None, denominator: int | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def report_out(report: CompressionReport, token_counter: TokenCounter) -> CompressionReportOut:
    """The wire report of a compression (``ratio`` and ``token_ratio`` None when undefined)."""
    shares = report.shares
    return CompressionReportOut(
        bytes_in=report.bytes_in,
        bytes_out=report.bytes_out,
        ratio=_ratio(report.bytes_in, report.bytes_out),
        tokens_in=report.tokens_in,
        tokens_out=report.tokens_out,
        token_ratio=_ratio(report.tokens_in, report.tokens_out),
        token_counter=token_counter,
        referenced_bytes=report.referenced_bytes,
        literal_bytes=report.literal_bytes,
        glyphs=report.glyphs,
        new_rsus=report.new_rsus,
        dedup_saved=report.dedup_saved,
        dictionary_saved=report.dictionary_saved,
        entropy_saved=report.entropy_saved,
        framing=report.framing,
        dict_id=report.dict_id,
        level=report.level,
        shares=SharesOut(dedup=shares.dedup, dictionary=shares.dictionary, entropy=shares.entropy),
    )


class FrameOut(_Out):
    """One compressed message of a batch."""

    frame: str
    """The ΣLANG frame, base64."""
    report: CompressionReportOut


class CompressOutput(_Out):
    """Output of ``compressor``: ``frame`` and ``report`` for one message, ``results`` for a batch.

    For messages sent as a binary attachment: ``count`` alone, and the reports (a JSON array) and the
    frames in the answer's attachment (`agents.compression.wire.pack_parts`).
    """

    frame: str | None = None
    report: CompressionReportOut | None = None
    results: list[FrameOut] | None = None
    count: int | None = None
    """Frames in the answer's attachment (after the reports)."""


class DecompressReportOut(_Out):
    """What a decoded frame held."""

    bytes_in: int
    bytes_out: int
    ratio: float
    tokens_out: int
    token_counter: TokenCounter
    glyphs: int
    """Context RSUs resolved from the tenant's store."""
    referenced_bytes: int
    literal_bytes: int
    dict_id: int | None


class DecompressOutput(_Out):
    """Output of ``decompressor``: ``data`` and ``report`` for one frame, ``datas`` for a batch."""

    data: str | None = None
    """The original bytes, base64."""
    report: DecompressReportOut | None = None
    datas: list[str] | None = None
    """The original bytes of each frame of a batch, base64."""
    count: int | None = None
    """For frames sent as a binary attachment: the original bytes of each are in the answer's
    attachment (`agents.compression.wire.pack_parts`), this many."""


class GlyphOut(_Out):
    """One part of a frame."""

    kind: Literal["glyph", "payload"]
    seq: int | None
    size: int | None
    in_store: bool | None


class GlyphOutput(_Out):
    """Output of ``glyph-encoder``."""

    content_size: int
    glyphs: int
    distinct_rsus: int
    missing_rsus: list[int]
    """Sequence numbers of context RSUs the tenant's store no longer holds."""
    recipe: list[GlyphOut]
    recipe_steps: int
    truncated: bool


class CodecInspectOutput(_Out):
    """Output of ``codec-inspector``: the verified header."""

    version: int
    flags: list[str]
    content_size: int
    frame_size: int
    payload_size: int
    dict_id: int | None
    rsus: int
    glyphs: int
    literal_bytes: int
    referenced_bytes: int
    missing_rsus: list[int]
    dictionary_available: bool
    decodable: bool


class DedupMessageOut(_Out):
    """How much of one message the tenant's store (or the batch) already holds, bytes."""

    bytes: int
    chunks: int
    known_chunks: int
    known_bytes: int
    repeated_chunks: int
    repeated_bytes: int
    new_bytes: int


class DedupOutput(_Out):
    """Output of ``deduplicator``."""

    messages: list[DedupMessageOut]
    total_bytes: int
    known_bytes: int
    repeated_bytes: int
    new_bytes: int
    dedup_ratio: float | None
    committed: bool


class StoreSummaryOut(_Out):
    """The caller's tenant's part of the RSU store, the dictionaries and the bridge counters."""

    rsus: int
    bytes: int
    referenced: int
    pinned: int
    evicted: int
    dictionaries: int
    active_dict_id: int | None
    token_counter: TokenCounter
    metrics: dict[str, float]


class RSUManagerOutput(_Out):
    """Output of ``rsu-manager``."""

    action: str
    rsu_ids: list[str] | None = None
    released_rsus: int | None = None
    removed: int | None = None
    bytes_freed: int | None = None
    store: StoreSummaryOut


class TrainOutput(_Out):
    """Output of ``dictionary-trainer``."""

    trained: bool
    dict_id: int | None
    size_bytes: int
    samples: int
    sample_bytes: int
    min_samples: int
    active: bool
    reason: str | None


class ContextOptimizeOutput(_Out):
    """Output of ``context-optimizer`` (lossy: ``lossless`` is always false)."""

    text: str
    tokens_in: int
    tokens_out: int
    budget_tokens: int
    token_ratio: float | None
    token_counter: TokenCounter
    tokens_saved: int
    """``tokens_in - tokens_out``, in ``token_counter`` tokens: the lossy saving."""
    lossless: Literal[False]
    """Always false: dropped units are gone; use ``compressor`` for a lossless frame."""
    units_total: int
    units_kept: int
    code_blocks_dropped: int
    json_values_dropped: int

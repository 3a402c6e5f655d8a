"""The compression report as it travels (agents' outputs, API answers, SDK results): its one definition.

Pure pydantic, importing nothing of the project, so the SDK can load it without the service (the
package root loads its other names on first use). Built from a :class:`sigmalang.CompressionReport`
by :func:`agents.compression._outputs.report_out`; the attribution is explained in `sigmalang.report`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ("SigmaCompressionReport", "SigmaShares", "TokenCounter")

TokenCounter = Literal["ryot", "approx"]
"""Which tokenizer counted: ``ryot`` (the served model's) or ``approx`` (ceil(characters / 4))."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # newer servers may add fields


class SigmaShares(_Wire):
    """Fractions of the gross saving (0-1, summing to 1 when anything was saved)."""

    dedup: float
    """From RSU references (content the store already held, incl. near-duplicates)."""
    dictionary: float
    """From the trained zstd dictionary."""
    entropy: float
    """From zstd entropy coding of the literals alone."""


class SigmaCompressionReport(_Wire):
    """What one compression achieved: bytes, tokens and where the saving came from.

    ``bytes_in - bytes_out = dedup_saved + dictionary_saved + entropy_saved - framing`` exactly.
    """

    bytes_in: int
    """Input length, bytes."""
    bytes_out: int
    """Frame length, bytes."""
    ratio: float | None
    """``bytes_in / bytes_out``."""
    tokens_in: int | None
    """Tokens of the input (decoded as UTF-8), by ``token_counter``."""
    tokens_out: int | None
    """Tokens of the literal text plus one per glyph: the cost to a reader that holds the RSUs."""
    token_ratio: float | None
    """``tokens_in / tokens_out`` (None when ``tokens_out`` is 0)."""
    token_counter: TokenCounter
    """``ryot``: the served model's tokenizer; ``approx``: ceil(characters / 4) (no tokenizer, or an
    input above the exact-counting limit)."""
    referenced_bytes: int
    """Input bytes replaced by glyphs."""
    literal_bytes: int
    """Input bytes carried in the frame's payload."""
    glyphs: int
    """RSU references in the frame."""
    new_rsus: int
    """RSUs this input added to the store."""
    dedup_saved: int
    """Bytes saved by RSU references and RSU-context compression."""
    dictionary_saved: int
    """Bytes saved by the trained dictionary."""
    entropy_saved: int
    """Bytes saved by zstd on the literals alone."""
    framing: int
    """Bytes of frame overhead (header, checksum)."""
    dict_id: int | None
    """Trained dictionary the frame needs, or None."""
    level: int
    """zstd level used."""
    shares: SigmaShares

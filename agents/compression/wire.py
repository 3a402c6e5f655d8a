"""What ΣLANG data looks like on the wire (agents' outputs, API answers, SDK results): its one definition.

The compression report, and the length-prefixed layout of binary batches (`pack_parts`): the body of a
binary ``POST /v1/sigma/compress/batch`` and of its binary answer, and the binary attachment
(`agents.protocol.Attached`) that carries messages to the ``compressor`` and frames to the
``decompressor``, and their results back, without base64.

Pure pydantic, importing nothing of the project, so the SDK can load it without the service (the
package root loads its other names on first use). Built from a :class:`sigmalang.CompressionReport`
by :func:`agents.compression._outputs.report_out`; the attribution is explained in `sigmalang.report`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = (
    "BATCH_REPORTS_PART",
    "MAX_BATCH_ITEMS",
    "SigmaCompressionReport",
    "SigmaShares",
    "TokenCounter",
    "pack_parts",
    "unpack_parts",
)

MAX_BATCH_ITEMS = 4096
"""Most messages (or frames) in one batch: a compress or decompress batch, a deduplication batch or a
dictionary training set."""

BATCH_REPORTS_PART = 0
"""In a binary compress answer, the index of the part holding the reports (a JSON array of
`SigmaCompressionReport`); the frames follow, one per message, in order."""


def pack_parts(parts: Iterable[bytes | bytearray | memoryview]) -> bytes:
    """Length-prefix framing of binary batches: each part as a u32 little-endian length, then its bytes.

    The body of a binary ``POST /v1/sigma/compress/batch`` (the messages) and of its binary answer
    (``Accept: application/octet-stream``: the reports as one JSON array, then one frame per message);
    also the attachment of a binary ``compressor`` or ``decompressor`` call and of its answer.
    """
    out = bytearray()
    for p in parts:
        out += len(p).to_bytes(4, "little")
        out += p
    return bytes(out)


def unpack_parts(body: bytes | memoryview, max_parts: int) -> list[bytes]:
    """Split a `pack_parts` body, in time linear in its length.

    Raises:
        ValueError: More than ``max_parts`` parts, or a length prefix truncated or running past the end
            (the message names the part's index).
    """
    view = memoryview(body)
    end = len(view)
    out: list[bytes] = []
    pos = 0
    while pos < end:
        if len(out) == max_parts:
            raise ValueError(f"more than {max_parts} messages in one batch")
        if pos + 4 > end:
            raise ValueError(f"message {len(out)}: truncated length prefix")
        size = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4
        if pos + size > end:
            raise ValueError(f"message {len(out)}: length {size} runs past the end of the body")
        out.append(bytes(view[pos : pos + size]))
        pos += size
    return out


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

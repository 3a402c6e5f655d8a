"""The Compression team: eight agents doing ΣLANG work through one shared `bridges.sigma.SigmaBridge`.

=================== ==========================================================================
agent               work
=================== ==========================================================================
compressor          message → frame (RSU glyphs + zstd) and a report (bytes, tokens, shares)
decompressor        frame → the exact bytes
deduplicator        batch of messages → how much the RSU store (or the batch) already holds
glyph-encoder       frame → its glyphs (RSU references) and literal runs
context-optimizer   text + query + token budget → the most relevant units that fit (lossy)
dictionary-trainer  sample messages → a trained, registered, active zstd dictionary
rsu-manager         store statistics, pin/unpin, release a frame's references, garbage collection
codec-inspector     frame → verified header, without decoding
=================== ==========================================================================

Binary data travels as base64 (`agents.compression._wire`); errors map to wire codes in
:func:`sigma_error`.
"""

from agents.compression._base import CompressionAgent, compression_report, sigma_error
from agents.compression._codec_agents import (
    CodecInspectorAgent,
    CompressorAgent,
    DecompressorAgent,
    GlyphEncoderAgent,
)
from agents.compression._store_agents import (
    ContextOptimizerAgent,
    DeduplicatorAgent,
    DictionaryTrainerAgent,
    RSUManagerAgent,
)
from agents.compression._wire import MAX_DATA_BYTES, MAX_TEXT_CHARS, NATS_MAX_PAYLOAD_BYTES

COMPRESSION_AGENTS: tuple[type[CompressionAgent], ...] = (
    CompressorAgent,
    DecompressorAgent,
    DeduplicatorAgent,
    GlyphEncoderAgent,
    ContextOptimizerAgent,
    DictionaryTrainerAgent,
    RSUManagerAgent,
    CodecInspectorAgent,
)
"""Every agent of the team, in roster order."""

__all__ = (
    "COMPRESSION_AGENTS",
    "MAX_DATA_BYTES",
    "MAX_TEXT_CHARS",
    "NATS_MAX_PAYLOAD_BYTES",
    "CodecInspectorAgent",
    "CompressionAgent",
    "CompressorAgent",
    "ContextOptimizerAgent",
    "DecompressorAgent",
    "DeduplicatorAgent",
    "DictionaryTrainerAgent",
    "GlyphEncoderAgent",
    "RSUManagerAgent",
    "compression_report",
    "sigma_error",
)

"""The Compression team: eight agents doing ΣLANG work through one shared `bridges.sigma.SigmaBridge`.

=================== ==========================================================================
agent               work
=================== ==========================================================================
compressor          message (or a batch) → frame (zstd against the tenant's stored context) + report
decompressor        frame (or a batch) → the exact bytes
deduplicator        batch of messages → how much the RSU store (or the batch) already holds
glyph-encoder       frame → its glyphs (RSU references) and literal runs
context-optimizer   text + query + token budget → the most relevant units that fit (lossy)
dictionary-trainer  sample messages → a trained, registered, active zstd dictionary
rsu-manager         store statistics, pin/unpin, release a frame's references, garbage collection
codec-inspector     frame → verified header, without decoding
=================== ==========================================================================

Every operation works on the caller's tenant only (its store, stream contexts, MAC key). Binary data
travels as base64 (`agents.compression._wire`); outputs are the models of
`agents.compression._outputs`; errors map to wire codes in :func:`sigma_error`, once, in
:class:`CompressionAgent`.
"""

from agents.compression._base import CompressionAgent, sigma_error
from agents.compression._codec_agents import (
    CodecInspectorAgent,
    CompressorAgent,
    DecompressorAgent,
    GlyphEncoderAgent,
)
from agents.compression._outputs import CompressionReportOut, report_out
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
    "CompressionReportOut",
    "CompressorAgent",
    "ContextOptimizerAgent",
    "DecompressorAgent",
    "DeduplicatorAgent",
    "DictionaryTrainerAgent",
    "GlyphEncoderAgent",
    "RSUManagerAgent",
    "report_out",
    "sigma_error",
)

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
`agents.compression._outputs` (the report's one wire shape is `agents.compression.wire`); errors map
to wire codes in :func:`sigma_error`, once, in :class:`CompressionAgent`.

The names below load on first use, so importing :mod:`agents.compression.wire` (as the API's ΣLANG
schemas and the SDK do) loads neither the bridge nor the codec.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from agents.compression._team import COMPRESSION_AGENTS
    from agents.compression._wire import MAX_DATA_BYTES, MAX_TEXT_CHARS, NATS_MAX_PAYLOAD_BYTES

__all__ = (
    "COMPRESSION_AGENTS",
    "CodecInspectorAgent",
    "CompressionAgent",
    "CompressionReportOut",
    "CompressorAgent",
    "ContextOptimizerAgent",
    "DecompressorAgent",
    "DeduplicatorAgent",
    "DictionaryTrainerAgent",
    "GlyphEncoderAgent",
    "MAX_DATA_BYTES",
    "MAX_TEXT_CHARS",
    "NATS_MAX_PAYLOAD_BYTES",
    "RSUManagerAgent",
    "report_out",
    "sigma_error",
)

_MODULE_OF = {
    "COMPRESSION_AGENTS": "agents.compression._team",
    "MAX_DATA_BYTES": "agents.compression._wire",
    "MAX_TEXT_CHARS": "agents.compression._wire",
    "NATS_MAX_PAYLOAD_BYTES": "agents.compression._wire",
    "CodecInspectorAgent": "agents.compression._codec_agents",
    "CompressionAgent": "agents.compression._base",
    "CompressionReportOut": "agents.compression._outputs",
    "CompressorAgent": "agents.compression._codec_agents",
    "ContextOptimizerAgent": "agents.compression._store_agents",
    "DecompressorAgent": "agents.compression._codec_agents",
    "DeduplicatorAgent": "agents.compression._store_agents",
    "DictionaryTrainerAgent": "agents.compression._store_agents",
    "GlyphEncoderAgent": "agents.compression._codec_agents",
    "RSUManagerAgent": "agents.compression._store_agents",
    "report_out": "agents.compression._outputs",
    "sigma_error": "agents.compression._base",
}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'agents.compression' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*globals(), *__all__]

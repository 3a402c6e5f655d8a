"""`COMPRESSION_AGENTS`: every agent class of the Compression team, in roster order."""

from __future__ import annotations

from agents.compression._base import CompressionAgent
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

__all__ = ("COMPRESSION_AGENTS",)

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

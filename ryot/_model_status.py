"""What a model pool reports about each model: its state, its settings, and its approximate memory.

Part of :mod:`ryot.pool` (which re-exports the public names): :class:`ModelStatus` is one model as
:meth:`ryot.pool.ModelPool.status` sees it, and the memory of a loaded model is its GGUF file size
plus the KV cache of its sequences (:func:`kv_cache_bytes`) plus what its host prefix cache holds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ryot._gguf import GGUFHeader

if TYPE_CHECKING:
    from ryot._engine import RyotEngine

_NOT_REPORTED = frozenset({"tokenizer.chat_template"})
"""Metadata keys left out of :attr:`ModelStatus.metadata` (a chat template can be kilobytes, and every
``$SRV.STATS`` answer carries the status)."""

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
        architecture: ``general.architecture`` of the GGUF (``gemma3``, ``llama``, ``bitnet``).
        parameter_count: The model's parameters (elements of all its tensors).
        quantization: The GGUF's file type by name (``Q4_K_M``, ``F16``, ``TQ1_0``).
        context_length_trained: The context the model was trained with, in tokens (``n_ctx`` may be less).
        embedding_length: The width of the model's hidden state.
        file_size: The GGUF file's size, in bytes.
        file_mtime: The GGUF file's modification time (Unix time, seconds).
        metadata: The GGUF's key/value metadata, typed, arrays of more than 5 items empty and without
            ``tokenizer.chat_template`` (see :class:`ryot._gguf.GGUFHeader`).
        file_sha256: The SHA-256 of the GGUF file (64 hex digits: what Ollama names the model's blob
            by), computed in the background once the file is known; ``None`` until then.

        The GGUF facts (``architecture`` to ``metadata``) come from the file's header
        (:func:`ryot._gguf.read_gguf_header`): for a model configured by path they are known before it
        loads; a packaged model's file is found when it first loads. ``None`` (``{}``) until then.
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
    architecture: str | None = None
    parameter_count: int | None = None
    quantization: str | None = None
    context_length_trained: int | None = None
    embedding_length: int | None = None
    file_size: int | None = None
    file_mtime: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    file_sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The status as a JSON-ready dict (for ``$SRV.STATS`` data)."""
        return asdict(self)


def header_facts(header: GGUFHeader | None) -> dict[str, Any]:
    """The :class:`ModelStatus` fields a GGUF header gives (none for ``None``)."""
    if header is None:
        return {}
    return {
        "architecture": header.architecture,
        "parameter_count": header.parameter_count,
        "quantization": header.quantization,
        "context_length_trained": header.context_length,
        "embedding_length": header.embedding_length,
        "file_size": header.size_bytes,
        "file_mtime": header.mtime,
        "metadata": {k: v for k, v in header.metadata.items() if k not in _NOT_REPORTED},
    }


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

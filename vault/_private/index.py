"""FAISS index of one tenant: ``IndexIDMap2`` over exact flat inner product, HNSW past a threshold.

Vectors are L2-normalised, so inner product is cosine similarity. FAISS labels are int64 assigned by the
tenant; deletes are tombstones kept by the tenant and filtered at search time until compaction rebuilds
the index (HNSW cannot remove vectors). On a machine where ``faiss.get_num_gpus() > 0`` the index is
copied to GPU 0 with ``index_cpu_to_gpu`` and kept on CPU if that fails (HNSW has no GPU version).

HNSW: Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using Hierarchical
Navigable Small World graphs" (2016); FAISS ``IndexHNSWFlat``.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vault.config import IndexConfig

__all__ = ("VectorIndex", "faiss_version")


def _faiss() -> ModuleType:
    """The ``faiss`` module, imported on first use.

    Every process that imports ``vault`` (the roster does) need not pay its ~14 MB resident when it
    never builds an index.
    """
    import faiss  # noqa: PLC0415

    return faiss


_log = logging.getLogger("vault.index")


def faiss_version() -> str:
    """Version of the FAISS library in use."""
    return str(_faiss().__version__)


class VectorIndex:
    """A tenant's vectors: add, search, reconstruct, serialise. Callers hold the vault's lock.

    Args:
        dim: Vector dimension (384 for all-MiniLM-L6-v2).
        config: Index settings.
        kind: ``"flat"`` or ``"hnsw"``.
        cpu_index: An existing CPU ``IndexIDMap2`` (after deserialisation), else a new empty one is built.
    """

    def __init__(self, dim: int, config: IndexConfig, kind: str = "flat", cpu_index: Any = None) -> None:
        self.dim = dim
        self.kind = kind
        self._config = config
        self._gpu_resources: Any = None
        if cpu_index is None:
            base: Any
            if kind == "hnsw":
                base = _faiss().IndexHNSWFlat(dim, config.hnsw_m, _faiss().METRIC_INNER_PRODUCT)
                base.hnsw.efConstruction = config.hnsw_ef_construction
            else:
                base = _faiss().IndexFlatIP(dim)
            cpu_index = _faiss().IndexIDMap2(base)
        self._index: Any = cpu_index
        self.on_gpu = False
        if config.use_gpu:
            self._to_gpu()

    def _to_gpu(self) -> None:
        """Move the index to GPU 0 when FAISS reports a GPU; stay on CPU on any failure."""
        try:
            if _faiss().get_num_gpus() <= 0:
                return
            resources = _faiss().StandardGpuResources()
            self._index = _faiss().index_cpu_to_gpu(resources, 0, self._index)
            self._gpu_resources = resources
            self.on_gpu = True
        except Exception as exc:  # any FAISS/GPU failure: keep serving from CPU
            _log.warning("FAISS GPU placement failed, staying on CPU: %s", exc)
            self.on_gpu = False

    @property
    def ntotal(self) -> int:
        """Vectors in the index, tombstoned ones included (count)."""
        return int(self._index.ntotal)

    def add(self, labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add vectors.

        Args:
            labels: ``(n,)`` int64 FAISS labels, unique.
            vectors: ``(n, dim)`` float32, L2-normalised.
        """
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), labels.astype(np.int64))

    def search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-``k`` by inner product.

        Args:
            query: ``(dim,)`` float32, L2-normalised.
            k: Candidates wanted (count), at most ``ntotal``.

        Returns:
            ``(scores, labels)``, each ``(k,)``, best first; label -1 pads missing results.
        """
        if self.kind == "hnsw" and not self.on_gpu:
            hnsw: Any = _faiss().downcast_index(self._index.index)
            hnsw.hnsw.efSearch = max(self._config.hnsw_ef_search, k)
        scores, labels = self._index.search(query.reshape(1, -1).astype(np.float32), k)
        return scores[0], labels[0]

    def reconstruct(self, labels: NDArray[np.int64]) -> NDArray[np.float32]:
        """Stored vectors of ``labels``: ``(n, dim)`` float32.

        A flat CPU index is read in one vectorised pass over its storage (no call per label).
        """
        if labels.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        cpu = self.to_cpu()
        if self.kind == "flat" and not self.on_gpu:
            faiss = _faiss()
            stored = faiss.vector_to_array(faiss.downcast_index(cpu.index).codes).view(np.float32)
            ids = faiss.vector_to_array(cpu.id_map)
            order = np.argsort(ids, kind="stable")
            rows = order[np.searchsorted(ids, labels, sorter=order)]
            if not np.array_equal(ids[rows], labels):
                raise KeyError("label not in the index")
            found: NDArray[np.float32] = stored.reshape(-1, self.dim)[rows].astype(np.float32)
            return found
        return np.vstack([cpu.reconstruct(int(label)) for label in labels]).astype(np.float32)

    def to_cpu(self) -> Any:
        """The index as a CPU FAISS object (a copy when it lives on a GPU)."""
        return _faiss().index_gpu_to_cpu(self._index) if self.on_gpu else self._index

    def serialize(self) -> bytes:
        """The CPU index in FAISS's own serial format."""
        return bytes(_faiss().serialize_index(self.to_cpu()))

    @classmethod
    def deserialize(cls, data: bytes | bytearray, dim: int, config: IndexConfig, kind: str) -> VectorIndex:
        """Rebuild an index from :meth:`serialize` output.

        Raises:
            ValueError: The bytes are not a FAISS index of this dimension.
        """
        try:
            cpu = _faiss().deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise ValueError(f"not a FAISS index: {exc}") from None
        if int(cpu.d) != dim:
            raise ValueError(f"index dimension {cpu.d} != {dim}")
        return cls(dim, config, kind, cpu_index=cpu)

    @classmethod
    def build(
        cls, dim: int, config: IndexConfig, labels: NDArray[np.int64], vectors: NDArray[np.float32]
    ) -> VectorIndex:
        """A fresh index holding exactly these vectors, flat or HNSW by ``config.hnsw_threshold``."""
        kind = "hnsw" if len(labels) >= config.hnsw_threshold else "flat"
        index = cls(dim, config, kind)
        if len(labels):
            index.add(labels, vectors)
        return index

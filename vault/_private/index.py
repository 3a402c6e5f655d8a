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
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vault.config import IndexConfig

__all__ = ("VectorIndex", "faiss_version", "one_thread")


def _faiss() -> ModuleType:
    """The ``faiss`` module, imported on first use.

    Every process that imports ``vault`` (the roster does) need not pay its ~14 MB resident when it
    never builds an index.
    """
    import faiss  # noqa: PLC0415

    return faiss


_log = logging.getLogger("vault.index")
_IO_BLOCK = 1 << 20
"""Largest piece FAISS hands to (or asks of) a streaming writer or reader (bytes)."""


@contextmanager
def one_thread() -> Iterator[None]:
    """Run FAISS on one OpenMP thread in this block (the setting is the calling thread's own).

    For one query, or a few dozen vectors added, an OpenMP team gains nothing (FAISS splits such work by
    query), and on a busy machine its barrier costs 10-25 ms (measured: HNSW top-10 at 5,000 vectors,
    0.39 ms on one thread against 25 ms on two, load average 5 on 2 cores).
    """
    faiss = _faiss()
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


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
        self._mutex = threading.Lock()
        """Serialises adds with searches and reads: the vault adds waiting vectors outside its own lock."""
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
        with self._mutex:
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), labels.astype(np.int64))

    def search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-``k`` by inner product.

        Args:
            query: ``(dim,)`` float32, L2-normalised.
            k: Candidates wanted (count), at most ``ntotal``.

        Returns:
            ``(scores, labels)``, each ``(k,)``, best first; label -1 pads missing results.
        """
        faiss = _faiss()
        if self.kind == "hnsw" and not self.on_gpu:
            hnsw: Any = faiss.downcast_index(self._index.index)
            hnsw.hnsw.efSearch = max(self._config.hnsw_ef_search, k)
        with one_thread(), self._mutex:
            scores, labels = self._index.search(query.reshape(1, -1).astype(np.float32), k)
        return scores[0], labels[0]

    def reconstruct(self, labels: NDArray[np.int64]) -> NDArray[np.float32]:
        """Stored vectors of ``labels``: ``(n, dim)`` float32.

        A flat CPU index is read in one vectorised pass over its storage (no call per label).
        """
        if labels.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._mutex:
            return self._reconstruct(labels)

    def _reconstruct(self, labels: NDArray[np.int64]) -> NDArray[np.float32]:
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

    def write_to(self, sink: Callable[[bytes], object]) -> None:
        """Stream the CPU index in FAISS's own serial format to ``sink``, in pieces of at most 1 MiB.

        No serialised copy of the index is held in memory. An exception raised by ``sink`` (e.g. a full
        disk) is re-raised as it was.
        """
        failure: list[BaseException] = []

        def write(piece: bytes) -> int:
            try:
                sink(piece)
            except BaseException as exc:
                failure.append(exc)
                raise
            return len(piece)

        try:
            _faiss().write_index(self.to_cpu(), _faiss().PyCallbackIOWriter(write, _IO_BLOCK))
        except RuntimeError:
            if failure:
                raise failure[0] from None
            raise

    def serialized_size(self) -> int:
        """Bytes :meth:`write_to` produces (one streaming pass that only counts)."""
        total = 0

        def count(piece: bytes) -> None:
            nonlocal total
            total += len(piece)

        self.write_to(count)
        return total

    def serialize(self) -> bytes:
        """The CPU index in FAISS's own serial format, as one bytes object."""
        pieces: list[bytes] = []
        self.write_to(pieces.append)
        return b"".join(pieces)

    @classmethod
    def read_from(
        cls, source: Callable[[int], bytes], dim: int, config: IndexConfig, kind: str
    ) -> VectorIndex:
        """Rebuild an index from :meth:`write_to` output read through ``source(n) -> at most n bytes``.

        FAISS reads straight into the index's own arrays, so no serialised copy is held in memory. An
        exception raised by ``source`` (e.g. a failed decryption) is re-raised as it was.

        Raises:
            ValueError: The bytes are not a FAISS index of this dimension.
        """
        failure: list[BaseException] = []

        def read(n: int) -> bytes:
            try:
                return source(n)
            except BaseException as exc:
                failure.append(exc)
                raise

        try:
            cpu = _faiss().read_index(_faiss().PyCallbackIOReader(read, _IO_BLOCK))
        except RuntimeError as exc:
            if failure:
                raise failure[0] from None
            raise ValueError(f"not a FAISS index: {exc}") from None
        if int(cpu.d) != dim:
            raise ValueError(f"index dimension {cpu.d} != {dim}")
        return cls(dim, config, kind, cpu_index=cpu)

    @classmethod
    def deserialize(cls, data: bytes | bytearray, dim: int, config: IndexConfig, kind: str) -> VectorIndex:
        """Rebuild an index from :meth:`serialize` output (see :meth:`read_from`).

        Raises:
            ValueError: The bytes are not a FAISS index of this dimension.
        """
        view = memoryview(data)
        at = 0

        def source(n: int) -> bytes:
            nonlocal at
            piece = bytes(view[at : at + n])
            at += len(piece)
            return piece

        return cls.read_from(source, dim, config, kind)

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

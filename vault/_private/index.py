"""Index of one tenant: exact inner product in blocks (:mod:`~vault._private.flat`), HNSW past a threshold.

The HNSW index (and a flat index on a GPU) is FAISS's ``IndexIDMap2`` (:class:`VectorIndex`);
:func:`new_index`, :func:`build_index` and :func:`read_index` choose between it and :class:`FlatIndex`.

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
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from vault._private.faisslib import faiss_module, faiss_version, one_thread
from vault._private.flat import FLAT_MAGIC, FlatIndex
from vault.config import IndexConfig

__all__ = (
    "SearchIndex",
    "VectorIndex",
    "build_index",
    "faiss_version",
    "new_index",
    "one_thread",
    "read_index",
)


_faiss = faiss_module
_log = logging.getLogger("vault.index")
_IO_BLOCK = 1 << 20
"""Largest piece FAISS hands to (or asks of) a streaming writer or reader (bytes)."""


class SearchIndex(Protocol):
    """What a tenant needs of its index: FAISS's :class:`VectorIndex` or the block-wise :class:`FlatIndex`."""

    @property
    def dim(self) -> int:
        """Vector dimension."""

    @property
    def kind(self) -> str:
        """``"flat"`` or ``"hnsw"``."""

    @property
    def on_gpu(self) -> bool:
        """Whether the index lives on a GPU."""

    @property
    def ntotal(self) -> int:
        """Vectors in the index, tombstoned ones included (count)."""

    def add(self, labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add ``(n,)`` int64 labels with their ``(n, dim)`` float32 vectors."""

    def search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-``k`` ``(scores, labels)`` by inner product, best first."""

    def reconstruct(self, labels: NDArray[np.int64]) -> NDArray[np.float32]:
        """Stored ``(n, dim)`` float32 vectors of ``labels``."""

    def serialized_size(self) -> int:
        """Bytes :meth:`write_to` produces."""

    def write_to(self, sink: Callable[[bytes | memoryview], object]) -> None:
        """Stream the serial form to ``sink``."""


def _gpu_wanted(config: IndexConfig) -> bool:
    return config.use_gpu and _faiss().get_num_gpus() > 0


def new_index(dim: int, config: IndexConfig, kind: str = "flat") -> SearchIndex:
    """An empty index: a block-wise :class:`FlatIndex` for ``"flat"`` on CPU, else a FAISS index.

    With a GPU (``faiss.get_num_gpus() > 0`` and ``config.use_gpu``) a flat index is FAISS's, moved to
    the GPU; HNSW is always FAISS's ``IndexHNSWFlat``.
    """
    if kind == "flat" and not _gpu_wanted(config):
        return FlatIndex(dim)
    return VectorIndex(dim, config, kind)


def build_index(
    dim: int, config: IndexConfig, labels: NDArray[np.int64], vectors: NDArray[np.float32]
) -> SearchIndex:
    """A fresh index holding exactly these vectors, flat or HNSW by ``config.hnsw_threshold``."""
    index = new_index(dim, config, "hnsw" if len(labels) >= config.hnsw_threshold else "flat")
    if len(labels):
        index.add(labels, vectors)
    return index


def read_index(source: Callable[[int], bytes], dim: int, config: IndexConfig, kind: str) -> SearchIndex:
    """Rebuild an index from its serial form read through ``source(n) -> at most n bytes``.

    A flat index in :class:`FlatIndex`'s form loads into blocks; one in FAISS's form (written by a GPU
    vault or an earlier version) loads into FAISS and, on CPU, is converted to blocks.

    Raises:
        ValueError: The bytes are not an index of this dimension.
    """
    head = b""
    if kind == "flat":
        while len(head) < len(FLAT_MAGIC):
            piece = source(len(FLAT_MAGIC) - len(head))
            if not piece:
                raise ValueError("index file is empty")
            head += piece
        if head == FLAT_MAGIC:
            return FlatIndex.read_from(source, dim, head)
    peeked = memoryview(head)

    def rest(n: int) -> bytes:  # FAISS reads the bytes peeked at first, then the stream
        nonlocal peeked
        if peeked:
            piece, peeked = bytes(peeked[:n]), peeked[n:]
            return piece
        return source(n)

    index = VectorIndex.read_from(rest, dim, config, kind)
    if kind == "flat" and not index.on_gpu:
        return FlatIndex.from_faiss(index.to_cpu(), dim)
    return index


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

"""Exact inner-product index in fixed-size blocks: a tenant's index below the HNSW threshold (on CPU).

FAISS's ``IndexFlatIP`` keeps its vectors in one growing array, so an add that passes its capacity copies
all of them: measured 157 ms inside one ``put_many`` as a flat index grew toward 100,000 x 384 float32
(``benchmarks/vault_write_breakdown.py``), and opening a snapshot briefly held two copies. Here the vectors
live in blocks of ``BLOCK_ROWS`` rows allocated as the index grows: an add copies only its own rows, a
search runs FAISS's exact kernel (``faiss.knn``) over each block and merges the top-``k``, and a snapshot
streams the blocks (and an open fills them) without a contiguous copy.

Rows below :attr:`FlatIndex.ntotal` never change once written, so :meth:`FlatIndex.view` (for a snapshot
or an HNSW build outside the vault's lock) shares the blocks instead of copying them.

Serial form (little-endian): ``b"SVFLAT01" | dim u32 | rows u64 | labels (rows x i64) | vectors (rows x
dim x f32)``. A snapshot written before this format (a FAISS ``IndexIDMap2(IndexFlatIP)``) is read by
:func:`vault._private.index.read_index` and converted.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vault._private.faisslib import faiss_module, one_thread

__all__ = ("BLOCK_ROWS", "FLAT_MAGIC", "FlatIndex", "Parts", "read_trailing_rows", "rows_size", "write_rows")

BLOCK_ROWS = 8192
"""Rows per block (count): 12 MiB at 384-d, allocated when the previous block is full."""
FLAT_MAGIC = b"SVFLAT01"
_HEAD = struct.Struct("<8sIQ")
_PIECE = 1 << 20
"""Largest piece handed to a snapshot writer (bytes)."""


class _Block:
    __slots__ = ("labels", "vectors")

    def __init__(self, dim: int) -> None:
        self.labels = np.empty(BLOCK_ROWS, dtype=np.int64)
        self.vectors = np.empty((BLOCK_ROWS, dim), dtype=np.float32)


class FlatIndex:
    """Exact top-``k`` by inner product over vectors in fixed-size blocks (same interface as FAISS's).

    Thread-safe: adds and searches may run on different threads (a search reads the rows written before
    it began). Vectors are L2-normalised by the caller, so inner product is cosine similarity.

    Args:
        dim: Vector dimension.
    """

    kind = "flat"
    on_gpu = False

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._blocks: list[_Block] = []
        self._count = 0
        self._ascending = True
        """Whether labels were added in ascending order (then looked up by bisection)."""
        self._mutex = threading.Lock()
        """Held to add rows or to take a view of the rows written (never during a search's arithmetic)."""

    @property
    def ntotal(self) -> int:
        """Vectors in the index, tombstoned ones included (count)."""
        return self._count

    def add(self, labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add ``(n,)`` int64 labels (unique) with their ``(n, dim)`` float32 vectors (copied)."""
        n = len(labels)
        if n == 0:
            return
        labels = np.asarray(labels, dtype=np.int64)
        with self._mutex:
            last = int(self._blocks[-1].labels[(self._count - 1) % BLOCK_ROWS]) if self._count else None
            if last is not None and int(labels[0]) <= last or np.any(np.diff(labels) <= 0):
                self._ascending = False
            done, row = 0, self._count
            while done < n:
                at = row % BLOCK_ROWS
                if at == 0 and row // BLOCK_ROWS == len(self._blocks):
                    self._blocks.append(_Block(self.dim))
                block = self._blocks[row // BLOCK_ROWS]
                step = min(n - done, BLOCK_ROWS - at)
                block.labels[at : at + step] = labels[done : done + step]
                block.vectors[at : at + step] = vectors[done : done + step]
                done += step
                row += step
            self._count = row  # published last: a view taken meanwhile reads only the rows before

    def parts(self) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        """``((m,) labels, (m, dim) vectors)`` per block, in insertion order: views, not copies."""
        with self._mutex:
            blocks, count = list(self._blocks), self._count
        for i, block in enumerate(blocks):
            rows = min(BLOCK_ROWS, count - i * BLOCK_ROWS)
            if rows <= 0:
                break
            yield block.labels[:rows], block.vectors[:rows]

    def view(self) -> FlatIndex:
        """A read-only index of the rows written so far, sharing their blocks (later adds are not in it)."""
        out = FlatIndex(self.dim)
        with self._mutex:
            out._blocks, out._count, out._ascending = list(self._blocks), self._count, self._ascending
        return out

    def search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-``k`` by inner product.

        Args:
            query: ``(dim,)`` float32, L2-normalised.
            k: Candidates wanted (count).

        Returns:
            ``(scores, labels)``, each ``(min(k, ntotal),)``, best first.
        """
        faiss = faiss_module()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        scores: list[NDArray[np.float32]] = []
        labels: list[NDArray[np.int64]] = []
        with one_thread():
            for block_labels, block_vectors in self.parts():
                top, rows = faiss.knn(
                    q, block_vectors, min(k, len(block_labels)), metric=faiss.METRIC_INNER_PRODUCT
                )
                scores.append(top[0])
                labels.append(block_labels[rows[0]])
        if not scores:
            return np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)
        all_scores, all_labels = np.concatenate(scores), np.concatenate(labels)
        best = np.argsort(-all_scores, kind="stable")[:k]
        return all_scores[best], all_labels[best]

    def reconstruct(self, labels: NDArray[np.int64]) -> NDArray[np.float32]:
        """Stored vectors of ``labels``: ``(n, dim)`` float32.

        Raises:
            KeyError: A label is not in the index.
        """
        out = np.empty((len(labels), self.dim), dtype=np.float32)
        if len(labels) == 0:
            return out
        parts = list(self.parts())
        stored = np.concatenate([part_labels for part_labels, _ in parts])
        wanted = np.asarray(labels, dtype=np.int64)
        if self._ascending:
            rows = np.minimum(np.searchsorted(stored, wanted), len(stored) - 1)
        else:
            order = np.argsort(stored, kind="stable")
            rows = order[np.minimum(np.searchsorted(stored, wanted, sorter=order), len(stored) - 1)]
        if not np.array_equal(stored[rows], wanted):
            raise KeyError("label not in the index")
        for i, (_, vectors) in enumerate(parts):
            here = rows // BLOCK_ROWS == i
            if here.any():
                out[here] = vectors[rows[here] - i * BLOCK_ROWS]
        return out

    # ----------------------------------------------------------------- serial form
    def serialized_size(self) -> int:
        """Bytes :meth:`write_to` produces."""
        return rows_size(self._count, self.dim)

    def write_to(self, sink: Callable[[bytes | memoryview], object]) -> None:
        """Stream the serial form (see the module docstring) to ``sink``, in pieces of at most 1 MiB.

        Writes the rows present when it starts (call it on a :meth:`view` while adds go on).
        """
        write_rows(list(self.parts()), self.dim, sink)

    @classmethod
    def read_from(cls, source: Callable[[int], bytes], dim: int, head: bytes = b"") -> FlatIndex:
        """An index from :meth:`write_to` output read through ``source(n) -> at most n bytes``.

        Args:
            source: The serial form (after ``head``).
            dim: Expected dimension.
            head: Bytes of the serial form already read from ``source`` (its first bytes).

        Raises:
            ValueError: Not this format, another dimension, or cut short.
        """
        header = _read_exactly(source, _HEAD.size - len(head), head)
        magic, file_dim, rows = _HEAD.unpack(header)
        if magic != FLAT_MAGIC:
            raise ValueError("not a flat index")
        if file_dim != dim:
            raise ValueError(f"index dimension {file_dim} != {dim}")
        index = cls(dim)
        blocks = [_Block(dim) for _ in range(-(-rows // BLOCK_ROWS))]
        for column in ("labels", "vectors"):
            for i, block in enumerate(blocks):
                take = min(BLOCK_ROWS, rows - i * BLOCK_ROWS)
                target = memoryview(getattr(block, column)[:take]).cast("B")
                _read_into(source, target)
        index._blocks, index._count = blocks, rows
        stored = [b.labels[: min(BLOCK_ROWS, rows - i * BLOCK_ROWS)] for i, b in enumerate(blocks)]
        index._ascending = bool(np.all(np.diff(np.concatenate(stored)) > 0)) if rows else True
        return index

    @classmethod
    def from_faiss(cls, cpu_index: Any, dim: int) -> FlatIndex:
        """The vectors of a FAISS ``IndexIDMap2(IndexFlatIP)`` (a snapshot of an earlier version)."""
        faiss = faiss_module()
        flat = faiss.downcast_index(cpu_index.index)
        index = cls(dim)
        index.add(
            faiss.vector_to_array(cpu_index.id_map).astype(np.int64),
            faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, dim),
        )
        return index


Parts = list[tuple[NDArray[np.int64], NDArray[np.float32]]]
"""``((m,) labels, (m, dim) vectors)`` pieces of a set of rows."""


def rows_size(rows: int, dim: int) -> int:
    """Bytes of the serial form of ``rows`` rows of dimension ``dim``."""
    return _HEAD.size + rows * (8 + 4 * dim)


def write_rows(parts: Parts, dim: int, sink: Callable[[bytes | memoryview], object]) -> None:
    """Stream rows in the serial form (see the module docstring), in pieces of at most 1 MiB."""
    sink(_HEAD.pack(FLAT_MAGIC, dim, sum(len(labels) for labels, _ in parts)))
    columns: list[NDArray[Any]] = [labels for labels, _ in parts] + [vectors for _, vectors in parts]
    for array in columns:  # row slices of a block: contiguous
        data = np.ascontiguousarray(array).data.cast("B")
        for at in range(0, len(data), _PIECE):
            sink(data[at : at + _PIECE])


def read_trailing_rows(source: Callable[[int], bytes], dim: int) -> FlatIndex | None:
    """Rows in the serial form that follow an index in the same stream, or ``None`` at its end.

    Raises:
        ValueError: Something else follows, or the rows are cut short.
    """
    head = source(_HEAD.size)
    return None if not head else FlatIndex.read_from(source, dim, head)


def _read_exactly(source: Callable[[int], bytes], n: int, head: bytes = b"") -> bytes:
    buffer = bytearray(head)
    while n > 0:
        piece = source(n)
        if not piece:
            raise ValueError("flat index cut short")
        buffer += piece
        n -= len(piece)
    return bytes(buffer)


def _read_into(source: Callable[[int], bytes], target: memoryview) -> None:
    while target:
        piece = source(min(len(target), _PIECE))
        if not piece:
            raise ValueError("flat index cut short")
        target[: len(piece)] = piece
        target = target[len(piece) :]

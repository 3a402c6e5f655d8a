"""Vectors stored but not yet in a tenant's FAISS index, searched exactly until they are moved in.

A tenant's index is frozen while a background snapshot serialises it, and an HNSW index built in the
background lands with the records written during its build still to add. Those vectors wait here, in one
contiguous ``(n, dim)`` float32 buffer (doubling as it grows), are searched by brute-force inner product
next to the index, and are moved into the index a chunk at a time by the vault's background worker, so no
single call holds the vault's lock for the whole backlog.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ("PendingVectors",)

_MIN_ROWS = 256


class PendingVectors:
    """A FIFO of ``(label, vector)`` rows waiting to be added to an index. Callers hold the vault's lock.

    Args:
        dim: Vector dimension.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._labels = np.empty(0, dtype=np.int64)
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def labels(self) -> NDArray[np.int64]:
        """Labels waiting, oldest first: ``(n,)`` int64 (a view)."""
        return self._labels[self._start : self._end]

    def add(self, labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Queue ``(n,)`` labels with their ``(n, dim)`` float32 vectors."""
        n = len(labels)
        if self._end + n > len(self._labels):
            live = len(self)
            rows = max(_MIN_ROWS, 2 * (live + n))
            new_labels = np.empty(rows, dtype=np.int64)
            new_vectors = np.empty((rows, self.dim), dtype=np.float32)
            new_labels[:live] = self.labels
            new_vectors[:live] = self._vectors[self._start : self._end]
            self._labels, self._vectors = new_labels, new_vectors
            self._start, self._end = 0, live
        self._labels[self._end : self._end + n] = labels
        self._vectors[self._end : self._end + n] = vectors
        self._end += n

    def peek(self, limit: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Copies of up to ``limit`` of the oldest rows: ``((m,) labels, (m, dim) vectors)``."""
        stop = min(self._end, self._start + limit)
        return self._labels[self._start : stop].copy(), self._vectors[self._start : stop].copy()

    def drop(self, count: int) -> None:
        """Remove the ``count`` oldest rows."""
        self._start = min(self._end, self._start + count)
        if self._start == self._end:  # empty: give the buffer back
            self.__init__(self.dim)  # type: ignore[misc]

    def take(self, limit: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Remove and return up to ``limit`` of the oldest rows (:meth:`peek`, then :meth:`drop`)."""
        taken = self.peek(limit)
        self.drop(len(taken[0]))
        return taken

    def vectors_of(self, labels: NDArray[np.int64]) -> NDArray[np.float32] | None:
        """The ``(n, dim)`` vectors of ``labels`` if every one of them is waiting here, else ``None``."""
        mine = self.labels
        order = np.argsort(mine, kind="stable")
        rows = np.searchsorted(mine, labels, sorter=order)
        if len(mine) == 0 or np.any(rows >= len(mine)):
            return None
        rows = order[rows]
        if not np.array_equal(mine[rows], labels):
            return None
        return self._vectors[self._start : self._end][rows].copy()

    def search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Exact top-``k`` by inner product: ``(scores, labels)``, each ``(min(k, n),)``, best first."""
        n = len(self)
        if n == 0 or k <= 0:
            return np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)
        scores = self._vectors[self._start : self._end] @ query.astype(np.float32).reshape(-1)
        k = min(k, n)
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top], self.labels[top].copy()

"""Vectors stored but not yet in a tenant's FAISS index, searched exactly until they are moved in.

A tenant's index is frozen while a background snapshot serialises it, writes into an HNSW index do not add
to it themselves (about 1 ms per vector), and an HNSW index built in the background lands with the records
written during its build still to add. Those vectors wait here, are searched by brute-force inner product
next to the index, and are moved into the index a slice at a time (by the vault's background worker, or by
a writer that finds the backlog full), so no single call holds a lock for the whole backlog.

The rows live in fixed-size chunks of ``_CHUNK_ROWS`` rows (3 MiB at 384-d), allocated as the queue grows
and freed as it drains: adding never copies what is already queued (a buffer that doubled instead copied
~100 MB at 64k vectors, for ~190 ms, inside a write).
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray

__all__ = ("PendingVectors",)

_CHUNK_ROWS = 2048
"""Rows per chunk (count): the unit in which waiting vectors are allocated and freed."""


class _Chunk:
    """``_CHUNK_ROWS`` rows of labels and vectors, filled from the front."""

    __slots__ = ("labels", "vectors")

    def __init__(self, dim: int) -> None:
        self.labels = np.empty(_CHUNK_ROWS, dtype=np.int64)
        self.vectors = np.empty((_CHUNK_ROWS, dim), dtype=np.float32)


class PendingVectors:
    """A FIFO of ``(label, vector)`` rows waiting to be added to an index. Callers hold the vault's lock.

    Args:
        dim: Vector dimension.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._chunks: deque[_Chunk] = deque()
        self._start = 0
        """First live row of the first chunk."""
        self._end = 0
        """Rows filled in the last chunk."""
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _spans(self, limit: int | None = None) -> list[tuple[_Chunk, int, int]]:
        """``(chunk, first row, stop row)`` of the live rows in FIFO order, at most ``limit`` rows."""
        left = self._count if limit is None else min(limit, self._count)
        spans: list[tuple[_Chunk, int, int]] = []
        for i, chunk in enumerate(self._chunks):
            if left <= 0:
                break
            first = self._start if i == 0 else 0
            stop = min(self._end if i == len(self._chunks) - 1 else _CHUNK_ROWS, first + left)
            spans.append((chunk, first, stop))
            left -= stop - first
        return spans

    def parts(self) -> list[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        """``((m,) labels, (m, dim) vectors)`` of the rows waiting now, oldest first: views, not copies.

        Rows are never rewritten in place (adds fill new rows, drops only move the start), so the views
        keep their content while rows are added and dropped (a snapshot writes them outside the lock).
        """
        return [(chunk.labels[a:b], chunk.vectors[a:b]) for chunk, a, b in self._spans()]

    @property
    def labels(self) -> NDArray[np.int64]:
        """Labels waiting, oldest first: ``(n,)`` int64 (a copy)."""
        parts = [chunk.labels[a:b] for chunk, a, b in self._spans()]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def add(self, labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Queue ``(n,)`` labels with their ``(n, dim)`` float32 vectors (copied; nothing queued moves)."""
        done, n = 0, len(labels)
        while done < n:
            if not self._chunks or self._end == _CHUNK_ROWS:
                self._chunks.append(_Chunk(self.dim))
                self._end = 0
                if len(self._chunks) == 1:
                    self._start = 0
            chunk = self._chunks[-1]
            step = min(n - done, _CHUNK_ROWS - self._end)
            chunk.labels[self._end : self._end + step] = labels[done : done + step]
            chunk.vectors[self._end : self._end + step] = vectors[done : done + step]
            self._end += step
            done += step
        self._count += n

    def peek(self, limit: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Copies of up to ``limit`` of the oldest rows: ``((m,) labels, (m, dim) vectors)``."""
        spans = self._spans(limit)
        if not spans:
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32)
        return (
            np.concatenate([chunk.labels[a:b] for chunk, a, b in spans]),
            np.concatenate([chunk.vectors[a:b] for chunk, a, b in spans]),
        )

    def drop(self, count: int) -> None:
        """Remove the ``count`` oldest rows (chunks left empty are freed)."""
        left = min(count, self._count)
        self._count -= left
        while left > 0:
            stop = self._end if len(self._chunks) == 1 else _CHUNK_ROWS
            step = min(left, stop - self._start)
            self._start += step
            left -= step
            if self._start == stop and len(self._chunks) > 1:
                self._chunks.popleft()
                self._start = 0
        if self._count == 0:  # empty: give the memory back
            self._chunks.clear()
            self._start = self._end = 0

    def take(self, limit: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Remove and return up to ``limit`` of the oldest rows (:meth:`peek`, then :meth:`drop`)."""
        taken = self.peek(limit)
        self.drop(len(taken[0]))
        return taken

    def vectors_of(self, labels: NDArray[np.int64]) -> NDArray[np.float32] | None:
        """The ``(n, dim)`` vectors of ``labels`` if every one of them is waiting here, else ``None``."""
        mine = self.labels
        if len(mine) == 0:
            return None
        order = np.argsort(mine, kind="stable")
        rows = np.searchsorted(mine, labels, sorter=order)
        if np.any(rows >= len(mine)):
            return None
        rows = order[rows]
        if not np.array_equal(mine[rows], labels):
            return None
        out = np.empty((len(labels), self.dim), dtype=np.float32)
        at = 0
        for chunk, a, b in self._spans():  # row r of the queue is row a + r - at of this chunk
            here = (rows >= at) & (rows < at + b - a)
            out[here] = chunk.vectors[a + rows[here] - at]
            at += b - a
        return out

    def search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Exact top-``k`` by inner product: ``(scores, labels)``, each ``(min(k, n),)``, best first."""
        n = len(self)
        if n == 0 or k <= 0:
            return np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)
        q = query.astype(np.float32).reshape(-1)
        spans = self._spans()
        scores = np.concatenate([chunk.vectors[a:b] @ q for chunk, a, b in spans])
        k = min(k, n)
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top], self.labels[top]

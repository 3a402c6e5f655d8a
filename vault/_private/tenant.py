"""State of one tenant: its FAISS index, id <-> label maps, tombstones and sealed segment file.

The segment file ``records.<n>.seg`` is tier 2 of the cache: sealed records appended back to back, read
with ``pread``. It is not fsynced per write (the WAL is); a snapshot fsyncs it and records its valid
length, and recovery truncates it to that length before replaying the WAL. Compaction copies live sealed
records to segment ``n + 1`` (no re-encryption: a sealed record does not depend on its offset) and
rebuilds the index from the vectors it already holds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vault._private.files import storage_error
from vault._private.flat import FlatIndex, Parts, rows_size, write_rows
from vault._private.index import SearchIndex, build_index, new_index, one_thread
from vault._private.pending import PendingVectors
from vault._private.segment import SegmentFile, Slot
from vault.config import IndexConfig

__all__ = ("Captured", "Slot", "TenantState", "tenant_dir_name")

_JSON_SLICE = 2048
"""List items per ``json.dumps`` call when a snapshot encodes a tenant's state (bounds a GIL hold)."""


def tenant_dir_name(tenant: str) -> str:
    """Directory name of a tenant: a hash, so that no tenant name appears in paths."""
    return "t_" + hashlib.sha256(tenant.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Captured:
    """What a snapshot writes for one tenant, copied at one instant (the index itself is not copied).

    A flat ``index`` is a view of the rows written so far (adds go on); a FAISS (HNSW) index stays frozen
    while a background snapshot writes it (new vectors wait in the tenant's
    :class:`~vault._private.pending.PendingVectors`), and the vectors that were waiting already when it
    began are ``waiting``, written after the index instead of being added to it under the vault's lock.
    """

    index: SearchIndex
    segment_no: int
    segment_len: int
    next_label: int
    slots: dict[str, Slot]
    tombstones: list[int]
    done: list[tuple[str, Any]]
    waiting: Parts = field(default_factory=list)

    def index_size(self) -> int:
        """Bytes :meth:`write_index` produces."""
        rows = sum(len(labels) for labels, _ in self.waiting)
        return self.index.serialized_size() + (rows_size(rows, self.index.dim) if rows else 0)

    def write_index(self, sink: Callable[[bytes | memoryview], object]) -> None:
        """Stream the index, then the waiting vectors (if any) in :mod:`~vault._private.flat`'s form."""
        self.index.write_to(sink)
        if any(len(labels) for labels, _ in self.waiting):
            write_rows(self.waiting, self.index.dim, sink)

    def to_json(self) -> bytes:
        """The state as JSON (sealed by the snapshot writer; holds record ids, never text).

        Long lists are encoded a slice at a time: one ``json.dumps`` call holds the GIL throughout, and
        a background snapshot must not stall the threads that serve writes and searches.
        """
        head = json.dumps(
            {
                "segment_no": self.segment_no,
                "segment_len": self.segment_len,
                "next_label": self.next_label,
                "kind": self.index.kind,
            }
        )
        slots = _json_list([[rid, *slot] for rid, slot in self.slots.items()])
        done = _json_list([[key, result] for key, result in self.done])
        tombstones = _json_list(self.tombstones)
        return f'{head[:-1]}, "slots": {slots}, "tombstones": {tombstones}, "done": {done}}}'.encode()


def _json_list(items: list[Any]) -> str:
    """``json.dumps(items)``, encoded ``_JSON_SLICE`` items per call."""
    parts = (json.dumps(items[i : i + _JSON_SLICE])[1:-1] for i in range(0, len(items), _JSON_SLICE))
    return "[" + ",".join(part for part in parts if part) + "]"


class TenantState(SegmentFile):
    """Index and storage of one tenant. Callers hold the vault's lock.

    Args:
        tenant: Tenant name.
        directory: The tenant's directory (created with mode 0700).
        dim: Vector dimension.
        config: Index settings.
    """

    def __init__(self, tenant: str, directory: Path, dim: int, config: IndexConfig) -> None:
        self.tenant = tenant
        self.dir = directory
        self.dim = dim
        self._config = config
        self.index = new_index(dim, config)
        self.slots: dict[str, Slot] = {}
        self.labels: dict[int, str] = {}
        self.tombstones: set[int] = set()
        self.next_label = 0
        self.segment_no = 1
        self.segment_len = 0
        self.staged_end = 0
        self.index_version = 0
        """Bumped whenever ``index`` is replaced (a background build made for an older one is dropped)."""
        self.pending = PendingVectors(dim)
        """Vectors stored but not in ``index`` yet (searched exactly; moved in by :meth:`drain`)."""
        self.frozen = False
        """Set while a background snapshot serialises ``index``: new vectors then wait in ``pending``."""
        self.done: OrderedDict[str, Any] = OrderedDict()
        """Idempotency key → result of the call that used it (oldest first)."""
        self._fd: int | None = None
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, directory) from exc

    # ----------------------------------------------------------------- records
    @property
    def live(self) -> int:
        """Live records (count)."""
        return len(self.slots)

    def put(self, record_id: str, blob: bytes, vector: NDArray[np.float32]) -> None:
        """Store a sealed record and its ``(dim,)`` vector, replacing any record with the same id."""
        self.put_many([(record_id, blob, vector)])

    def put_many(
        self, items: list[tuple[str, bytes, NDArray[np.float32]]], *, staged_at: int | None = None
    ) -> None:
        """Store ``(record_id, sealed blob, (dim,) vector)`` items: one segment write, one index add.

        Args:
            items: The records.
            staged_at: Offset where :meth:`stage` already wrote the joined blobs (skip writing them).
        """
        if staged_at is None:
            offset = self._write(b"".join(blob for _, blob, _ in items))
        else:
            offset = staged_at
            self.segment_len = staged_at + sum(len(blob) for _, blob, _ in items)
            self.staged_end = max(self.staged_end, self.segment_len)
        labels = np.arange(self.next_label, self.next_label + len(items), dtype=np.int64)
        self.next_label += len(items)
        for (record_id, blob, _), label in zip(items, labels.tolist(), strict=True):
            self.delete(record_id)
            self.slots[record_id] = (label, offset, len(blob))
            self.labels[label] = record_id
            offset += len(blob)
        vectors = np.vstack([vector.reshape(1, -1) for _, _, vector in items])
        if self.frozen or len(self.pending) or self.index.kind == "hnsw":  # HNSW adds cost ~1 ms each
            self.pending.add(labels, vectors)
        else:
            self.index.add(labels, vectors)

    @property
    def total(self) -> int:
        """Vectors stored, tombstoned ones included: in the index and waiting to enter it (count)."""
        return self.index.ntotal + len(self.pending)

    def drain(self, limit: int) -> int:
        """Move up to ``limit`` waiting vectors into the index (not while frozen); returns how many wait."""
        if not self.frozen and len(self.pending):
            labels, vectors = self.pending.take(limit)
            with one_thread():
                self.index.add(labels, vectors)
        return len(self.pending)

    def flush_pending(self) -> None:
        """Move every waiting vector into the index now (before the index is rebuilt or captured)."""
        self.frozen = False
        self.drain(len(self.pending))

    def vectors(self, labels: NDArray[np.int64]) -> NDArray[np.float32]:
        """Stored vectors of ``labels`` (from the index or from ``pending``): ``(n, dim)`` float32."""
        if not len(self.pending):
            return self.index.reconstruct(labels)
        waiting = np.isin(labels, self.pending.labels)
        out = np.empty((len(labels), self.dim), dtype=np.float32)
        out[~waiting] = self.index.reconstruct(labels[~waiting])
        found = self.pending.vectors_of(labels[waiting])
        if found is not None:
            out[waiting] = found
        return out

    @property
    def wants_hnsw(self) -> bool:
        """Whether the flat index has grown past ``hnsw_threshold`` (the vault then builds HNSW aside)."""
        return self.index.kind == "flat" and self.live >= self._config.hnsw_threshold

    def build_input(self) -> tuple[list[tuple[NDArray[np.int64], NDArray[np.float32]]], int, int]:
        """What a background index build starts from: ``(parts, next_label, version)``.

        ``parts`` are ``((m,) labels, (m, dim) vectors)`` of the live records. From a :class:`FlatIndex`
        they are views of its blocks (rows written never change), so the caller holds the lock only for
        this call, not for a copy of every vector.
        """
        self.flush_pending()
        if isinstance(self.index, FlatIndex):
            parts = list(self.index.parts())
            if self.tombstones:
                dead = np.fromiter(self.tombstones, dtype=np.int64, count=len(self.tombstones))
                parts = [
                    (labels[keep], vectors[keep])
                    for labels, vectors in parts
                    for keep in [~np.isin(labels, dead)]
                ]
        else:
            labels = np.array(sorted(self.labels), dtype=np.int64)
            parts = [(labels, self.index.reconstruct(labels))]
        return parts, self.next_label, self.index_version

    def added_since(
        self, next_label: int, *, limit: int | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32], int]:
        """Live records stored since ``next_label`` was current, the oldest ``limit`` labels of them.

        Labels grow with every write, so only the labels from ``next_label`` on are looked at.

        Returns:
            ``((n,) labels, (n, dim) vectors, the label to continue from)``.
        """
        stop = self.next_label if limit is None else min(self.next_label, next_label + limit)
        newer = np.array([label for label in range(next_label, stop) if label in self.labels], dtype=np.int64)
        return newer, self.vectors(newer), stop

    def swap_index(self, built: SearchIndex, labels: NDArray[np.int64], next_label: int) -> None:
        """Replace the index with ``built`` (holding ``labels``); records stored since wait in ``pending``.

        Records deleted since the build started become its tombstones; older tombstones are gone. The
        caller drains ``pending`` afterwards, a chunk at a time.
        """
        newer, vectors, _ = self.added_since(next_label)
        self.pending = PendingVectors(self.dim)
        self.pending.add(newer, vectors)
        self.tombstones = set(labels.tolist()) - set(self.labels)
        self.index = built
        self.index_version += 1

    def remember(self, key: str, result: Any, limit: int) -> None:
        """Record the result of the call with idempotency ``key``, forgetting the oldest past ``limit``."""
        if limit <= 0:
            return
        self.done[key] = result
        self.done.move_to_end(key)
        while len(self.done) > limit:
            self.done.popitem(last=False)

    def delete(self, record_id: str) -> bool:
        """Tombstone a record; returns whether it existed."""
        slot = self.slots.pop(record_id, None)
        if slot is None:
            return False
        del self.labels[slot[0]]
        self.tombstones.add(slot[0])
        return True

    def candidates(self, query: NDArray[np.float32], fetch: int) -> Iterator[tuple[float, str]]:
        """Up to ``fetch`` live ``(score, record_id)`` pairs, best first (tombstones over-fetched)."""
        want = min(fetch + len(self.tombstones), self.total)
        if want <= 0:
            return
        scores, labels = self.index.search(query, min(want, self.index.ntotal))
        if len(self.pending):
            more_scores, more_labels = self.pending.search(query, want)
            fresh = ~np.isin(more_labels, labels)  # a chunk being drained is briefly in both
            scores = np.concatenate([scores, more_scores[fresh]])
            labels = np.concatenate([labels, more_labels[fresh]])
            best = np.argsort(-scores, kind="stable")[:want]
            scores, labels = scores[best], labels[best]
        for score, label in zip(scores.tolist(), labels.tolist(), strict=True):
            record_id = self.labels.get(int(label))
            if record_id is not None:
                yield float(score), record_id

    # ----------------------------------------------------------------- maintenance
    def rebuild_index(self) -> None:
        """Rebuild the index from live vectors only (flat or HNSW by size); clears tombstones."""
        self.flush_pending()
        labels = np.array(sorted(self.labels), dtype=np.int64)
        vectors = self.index.reconstruct(labels)
        self.index = build_index(self.dim, self._config, labels, vectors)
        self.tombstones.clear()
        self.index_version += 1

    def compact(self) -> Path:
        """Copy live sealed records to a new segment (fsynced) and rebuild the index.

        Returns:
            The old segment file, to delete once a snapshot references the new one.
        """
        old_path, old_fd = self.segment_path, self._fd
        ordered = sorted(self.slots.items(), key=lambda item: item[1][1])  # by offset
        blobs = [(rid, self.read_blob(slot), slot[0]) for rid, slot in ordered]
        self._fd = None
        self.segment_no += 1
        self.segment_path.unlink(missing_ok=True)
        self.open_segment(0)
        for rid, blob, label in blobs:
            self.slots[rid] = (label, self._write(blob), len(blob))
        self.sync()
        if old_fd is not None:
            os.close(old_fd)
        self.rebuild_index()
        return old_path

    # ----------------------------------------------------------------- snapshot form
    def capture(self, *, freeze: bool = False) -> Captured:
        """Copy what a snapshot writes (waiting vectors are moved into the index first).

        Args:
            freeze: Keep the index unchanged until :meth:`unfreeze` (for a snapshot written outside the
                vault's lock); vectors stored meanwhile wait in ``pending``.
        """
        index: SearchIndex
        waiting: Parts = []
        if isinstance(self.index, FlatIndex):
            # Blocks whose written rows never change: the snapshot writes a view while adds go on.
            self.flush_pending()  # copies rows into blocks: cheap
            index = self.index.view()
            self.frozen = False
        else:  # FAISS (HNSW, 1-3 ms per vector added) cannot be read while added to: frozen
            index, waiting = self.index, self.pending.parts()
            self.frozen = freeze
        return Captured(
            index,
            self.segment_no,
            self.segment_len,
            self.next_label,
            dict(self.slots),
            sorted(self.tombstones),
            list(self.done.items()),
            waiting,
        )

    def unfreeze(self) -> None:
        """End a freeze begun by :meth:`capture`; the vectors that waited are drained by the caller."""
        self.frozen = False

    def to_state(self) -> dict[str, Any]:
        """The state as :meth:`from_state` takes it (holds record ids, never text)."""
        state: dict[str, Any] = json.loads(self.capture().to_json())
        return state

    @classmethod
    def from_state(
        cls,
        tenant: str,
        directory: Path,
        dim: int,
        config: IndexConfig,
        state: dict[str, Any],
        index: SearchIndex,
        waiting: FlatIndex | None = None,
    ) -> TenantState:
        """Rebuild a tenant from :meth:`to_state` output and its index.

        Raises:
            ValueError: The state and the index are inconsistent.
        """
        self = cls(tenant, directory, dim, config)
        self.index = index
        self.segment_no = int(state["segment_no"])
        self.next_label = int(state["next_label"])
        for rid, label, offset, length in state["slots"]:
            self.slots[str(rid)] = (int(label), int(offset), int(length))
            self.labels[int(label)] = str(rid)
        self.tombstones = {int(t) for t in state["tombstones"]}
        self.done = OrderedDict((str(key), result) for key, result in state.get("done", []))
        if waiting is not None:
            for labels, vectors in waiting.parts():
                self.pending.add(labels, vectors)
        if self.total != len(self.slots) + len(self.tombstones):
            raise ValueError("index size does not match the record map")
        self.open_segment(int(state["segment_len"]))
        return self

    def referenced_files(self) -> set[str]:
        """Names of the files in the tenant directory that the current state uses."""
        return {self.segment_path.name}

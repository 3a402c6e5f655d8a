"""`MemoryRSUStore`: the RSU store in a dict, for one process (see `sigmalang.store` for the rules)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType

from sigmalang.errors import MissingRSUError, RSUStoreError
from sigmalang.frame import RSU_ID_BYTES
from sigmalang.store import GCResult, StoreStats

__all__ = ("MemoryRSUStore",)


@dataclass(slots=True)
class _Entry:
    data: bytes
    refcount: int = 0
    pinned: bool = False


class MemoryRSUStore:
    """An in-memory, thread-safe `RSUStore`. Content is lost when the object goes away."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, _Entry] = {}
        self._bytes = 0
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise RSUStoreError("store is closed")

    def _entry(self, rsu_id: bytes) -> _Entry:
        try:
            return self._entries[rsu_id]
        except KeyError:
            raise MissingRSUError(rsu_id) from None

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> int:
        """See `RSUStore.put_many`."""
        added = 0
        with self._lock:
            self._check_open()
            for rsu_id, data in items:
                if len(rsu_id) != RSU_ID_BYTES:
                    raise ValueError(f"RSU ids are {RSU_ID_BYTES} bytes, got {len(rsu_id)}")
                if rsu_id not in self._entries:
                    self._entries[rsu_id] = _Entry(bytes(data))
                    self._bytes += len(data)
                    added += 1
        return added

    def get_many(self, rsu_ids: Iterable[bytes]) -> Mapping[bytes, bytes]:
        """See `RSUStore.get_many`."""
        with self._lock:
            self._check_open()
            return {rsu_id: self._entry(rsu_id).data for rsu_id in rsu_ids}

    def __contains__(self, rsu_id: object) -> bool:
        with self._lock:
            self._check_open()
            return rsu_id in self._entries

    def acquire(self, rsu_ids: Iterable[bytes]) -> frozenset[bytes]:
        """See `RSUStore.acquire`."""
        with self._lock:
            self._check_open()
            present = frozenset(i for i in set(rsu_ids) if i in self._entries)
            for rsu_id in present:
                self._entries[rsu_id].refcount += 1
            return present

    def release(self, rsu_ids: Iterable[bytes]) -> None:
        """See `RSUStore.release`."""
        with self._lock:
            self._check_open()
            entries = [(i, self._entry(i)) for i in set(rsu_ids)]
            for rsu_id, entry in entries:
                if entry.refcount <= 0:
                    raise RSUStoreError(f"release of RSU {rsu_id.hex()} whose reference count is 0")
            for _, entry in entries:
                entry.refcount -= 1

    def refcount(self, rsu_id: bytes) -> int:
        """See `RSUStore.refcount`."""
        with self._lock:
            self._check_open()
            return self._entry(rsu_id).refcount

    def pin(self, rsu_id: bytes, pinned: bool = True) -> None:
        """See `RSUStore.pin`."""
        with self._lock:
            self._check_open()
            self._entry(rsu_id).pinned = pinned

    def is_pinned(self, rsu_id: bytes) -> bool:
        """See `RSUStore.is_pinned`."""
        with self._lock:
            self._check_open()
            return self._entry(rsu_id).pinned

    def collect_garbage(self) -> GCResult:
        """See `RSUStore.collect_garbage`."""
        with self._lock:
            self._check_open()
            dead = [i for i, e in self._entries.items() if e.refcount == 0 and not e.pinned]
            freed = 0
            for rsu_id in dead:
                freed += len(self._entries.pop(rsu_id).data)
            self._bytes -= freed
            return GCResult(removed=len(dead), bytes_freed=freed)

    def stats(self) -> StoreStats:
        """See `RSUStore.stats`."""
        with self._lock:
            self._check_open()
            return StoreStats(
                rsus=len(self._entries),
                bytes=self._bytes,
                referenced=sum(1 for e in self._entries.values() if e.refcount > 0),
                pinned=sum(1 for e in self._entries.values() if e.pinned),
            )

    def close(self) -> None:
        """See `RSUStore.close`."""
        with self._lock:
            self._closed = True
            self._entries.clear()
            self._bytes = 0

    def __enter__(self) -> MemoryRSUStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

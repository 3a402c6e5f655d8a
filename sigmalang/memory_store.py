"""`MemoryRSUStore`: the per-tenant RSU store in dicts, for one process (rules in `sigmalang.store`)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from types import TracebackType

from sigmalang.errors import MissingRSUError, RSUStoreError
from sigmalang.frame import RSU_ID_BYTES
from sigmalang.store import GCResult, Retention, StoreStats

__all__ = ("MemoryRSUStore",)


@dataclass(slots=True)
class _Entry:
    rsu_id: bytes
    data: bytes
    refcount: int = 0
    pinned: bool = False
    used: float = 0.0


@dataclass(slots=True)
class _Tenant:
    next_seq: int = 1
    by_id: dict[bytes, int] = field(default_factory=dict)
    entries: OrderedDict[int, _Entry] = field(default_factory=OrderedDict)  # least recently used first
    bytes: int = 0
    evicted: int = 0


class MemoryRSUStore:
    """A thread-safe, per-tenant, bounded `RSUStore` held in memory.

    Args:
        retention: Bytes and age kept per tenant; default `Retention()`.
        clock: Seconds since an arbitrary epoch (tests pass a fake one to age RSUs).
    """

    def __init__(self, *, retention: Retention | None = None, clock: Callable[[], float] = time.time) -> None:
        self.retention = retention or Retention()
        self._clock = clock
        self._lock = threading.Lock()
        self._tenants: dict[str, _Tenant] = {}
        self._closed = False

    def _tenant(self, tenant: str) -> _Tenant:
        if self._closed:
            raise RSUStoreError("store is closed")
        found = self._tenants.get(tenant)
        if found is None:
            found = self._tenants[tenant] = _Tenant()
        return found

    def _by_id(self, t: _Tenant, rsu_id: bytes) -> _Entry:
        seq = t.by_id.get(rsu_id)
        if seq is None:
            raise MissingRSUError(rsu_id)
        return t.entries[seq]

    def _remove(self, t: _Tenant, seq: int) -> int:
        entry = t.entries.pop(seq)
        del t.by_id[entry.rsu_id]
        t.bytes -= len(entry.data)
        return len(entry.data)

    def _retain(self, t: _Tenant, keep: set[int]) -> None:
        now = self._clock()
        max_age = self.retention.max_age_s
        victims: list[int] = []
        if max_age is not None:
            for seq, e in t.entries.items():  # least recently used first: stop at the first fresh one
                if now - e.used <= max_age:
                    break
                if not e.pinned and seq not in keep:
                    victims.append(seq)
        for seq in victims:
            self._remove(t, seq)
        t.evicted += len(victims)
        for referenced in (False, True):  # least recently used first, unreferenced before referenced
            if t.bytes <= self.retention.max_bytes:
                return
            chosen: list[int] = []
            excess = t.bytes - self.retention.max_bytes
            for seq, e in t.entries.items():
                if excess <= 0:
                    break
                if (e.refcount > 0) == referenced and not e.pinned and seq not in keep:
                    chosen.append(seq)
                    excess -= len(e.data)
            for seq in chosen:
                self._remove(t, seq)
            t.evicted += len(chosen)

    def transaction(self) -> AbstractContextManager[None]:
        """See `RSUStore.transaction` (a no-op here: every call is atomic under the store's lock)."""
        return nullcontext()

    def put_many(
        self, tenant: str, items: Sequence[tuple[bytes, bytes | memoryview]]
    ) -> list[tuple[int, bool]]:
        """See `RSUStore.put_many`."""
        out: list[tuple[int, bool]] = []
        with self._lock:
            t = self._tenant(tenant)
            now = self._clock()
            by_id, entries = t.by_id, t.entries
            for rsu_id, data in items:
                if len(rsu_id) != RSU_ID_BYTES:
                    raise ValueError(f"RSU ids are {RSU_ID_BYTES} bytes, got {len(rsu_id)}")
                seq = by_id.get(rsu_id)
                if seq is None:
                    seq = t.next_seq
                    t.next_seq += 1
                    by_id[rsu_id] = seq
                    entries[seq] = _Entry(rsu_id, bytes(data), used=now)
                    t.bytes += len(data)
                    out.append((seq, True))
                else:
                    entries[seq].used = now
                    entries.move_to_end(seq)
                    out.append((seq, False))
            self._retain(t, {s for s, _ in out})
        return out

    def seqs(self, tenant: str, rsu_ids: Iterable[bytes]) -> dict[bytes, int]:
        """See `RSUStore.seqs`."""
        with self._lock:
            t = self._tenant(tenant)
            return {i: t.by_id[i] for i in rsu_ids if i in t.by_id}

    def get_many(self, tenant: str, seqs: Sequence[int]) -> list[bytes]:
        """See `RSUStore.get_many`."""
        with self._lock:
            t = self._tenant(tenant)
            now = self._clock()
            out: list[bytes] = []
            get, touch, append = t.entries.get, t.entries.move_to_end, out.append  # (per RSU: bound once)
            for seq in seqs:
                entry = get(seq)
                if entry is None:
                    raise MissingRSUError(seq=seq)
                entry.used = now
                touch(seq)
                append(entry.data)
            return out

    def acquire(self, tenant: str, seqs: Iterable[int]) -> frozenset[int]:
        """See `RSUStore.acquire`."""
        with self._lock:
            t = self._tenant(tenant)
            present = frozenset(s for s in set(seqs) if s in t.entries)
            for seq in present:
                t.entries[seq].refcount += 1
            return present

    def release(self, tenant: str, seqs: Iterable[int]) -> None:
        """See `RSUStore.release`."""
        with self._lock:
            t = self._tenant(tenant)
            held = [t.entries[s] for s in set(seqs) if s in t.entries]
            for entry in held:
                if entry.refcount <= 0:
                    raise RSUStoreError(f"release of RSU {entry.rsu_id.hex()} whose reference count is 0")
            for entry in held:
                entry.refcount -= 1

    def refcount(self, tenant: str, rsu_id: bytes) -> int:
        """See `RSUStore.refcount`."""
        with self._lock:
            return self._by_id(self._tenant(tenant), rsu_id).refcount

    def pin(self, tenant: str, rsu_id: bytes, pinned: bool = True) -> None:
        """See `RSUStore.pin`."""
        with self._lock:
            self._by_id(self._tenant(tenant), rsu_id).pinned = pinned

    def is_pinned(self, tenant: str, rsu_id: bytes) -> bool:
        """See `RSUStore.is_pinned`."""
        with self._lock:
            return self._by_id(self._tenant(tenant), rsu_id).pinned

    def collect_garbage(self, tenant: str) -> GCResult:
        """See `RSUStore.collect_garbage`."""
        with self._lock:
            t = self._tenant(tenant)
            dead = [s for s, e in t.entries.items() if e.refcount == 0 and not e.pinned]
            freed = sum(self._remove(t, s) for s in dead)
            return GCResult(removed=len(dead), bytes_freed=freed)

    def stats(self, tenant: str) -> StoreStats:
        """See `RSUStore.stats`."""
        with self._lock:
            t = self._tenant(tenant)
            return StoreStats(
                rsus=len(t.entries),
                bytes=t.bytes,
                referenced=sum(1 for e in t.entries.values() if e.refcount > 0),
                pinned=sum(1 for e in t.entries.values() if e.pinned),
                evicted=t.evicted,
            )

    def drop_tenant(self, tenant: str) -> GCResult:
        """See `RSUStore.drop_tenant`."""
        with self._lock:
            t = self._tenant(tenant)
            result = GCResult(removed=len(t.entries), bytes_freed=t.bytes)
            self._tenants[tenant] = _Tenant(next_seq=t.next_seq)  # sequence numbers are never reused
            return result

    def close(self) -> None:
        """See `RSUStore.close`."""
        with self._lock:
            self._closed = True
            self._tenants.clear()

    def __enter__(self) -> MemoryRSUStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

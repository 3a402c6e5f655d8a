"""The KV records behind `agents.compression.rsu_store.JetStreamRSUStore`: one tenant's RSUs as keys.

The asynchronous half of the store: the key layout (see the store's module docstring), compare-and-set
of counters and metas, claimed evictions, retention, and the process-local caches (RSU bytes, last uses).
Everything here runs on the event loop that owns the NATS connection; sealing, opening and hash checks
happen in the store's synchronous methods, in the caller's thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import anyio
from cachetools import LRUCache

from agents.jetstream import KeyValueBucket, KvEntry, kv_get_or_none, kv_purge_all, kv_values
from sigmalang import MissingRSUError, Retention, RSUStoreError
from sigmalang.store import GCResult

__all__ = ("CACHE_BYTES", "Resealing", "RsuRecords")

CACHE_BYTES = 64 * 1024 * 1024
"""RSU bytes kept in this process for reads."""
_CONCURRENCY = 32
_T = TypeVar("_T")


async def _all(calls: Sequence[Callable[[], Awaitable[_T]]]) -> list[_T]:
    """Run ``calls`` concurrently (at most :data:`_CONCURRENCY` at once); results in order."""
    results: list[Any] = [None] * len(calls)
    limiter = anyio.CapacityLimiter(_CONCURRENCY)

    async def one(i: int) -> None:
        async with limiter:
            results[i] = await calls[i]()

    try:
        async with anyio.create_task_group() as tg:
            for i in range(len(calls)):
                tg.start_soon(one, i)
    except BaseExceptionGroup as group:  # the first failure, as the caller would see it unbatched
        raise _first(group) from None
    return results


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    exc = group.exceptions[0]
    return _first(exc) if isinstance(exc, BaseExceptionGroup) else exc


class Resealing(Exception):  # noqa: N818 - a retry signal, not an error
    """An RSU to store was not sealed (it was held when sealing ran): seal and try again."""


def _up(meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "r": meta["r"] + 1}


def _down(meta: dict[str, Any]) -> dict[str, Any]:
    if meta["r"] <= 0:
        raise RSUStoreError(f"release of RSU {meta['i']} whose reference count is 0")
    return {**meta, "r": meta["r"] - 1}


class RsuRecords:
    """The RSUs of every tenant in one KV bucket, with this process's caches.

    Args:
        bucket: The open KV bucket.
        retention: Bytes and age kept per tenant.
        clock: Seconds since the Unix epoch.
    """

    def __init__(self, bucket: KeyValueBucket, retention: Retention, clock: Callable[[], float]) -> None:
        self._bucket = bucket
        self.retention = retention
        self._clock = clock
        self._lock = threading.Lock()  # guards the caches below (read from the store's threads too)
        self._cache: LRUCache[tuple[str, int], bytes] = LRUCache(CACHE_BYTES, getsizeof=len)
        self._used: dict[tuple[str, int], float] = {}  # last use this process wrote or read
        self._swept: dict[str, float] = {}
        self.evicted: dict[str, int] = {}
        """RSUs this process evicted, per tenant."""
        max_age = retention.max_age_s
        self._touch_s = 60.0 if max_age is None else min(60.0, max_age / 10)

    @property
    def bucket(self) -> KeyValueBucket:
        """The KV bucket."""
        return self._bucket

    def clear_cache(self) -> None:
        """Drop every cached RSU."""
        with self._lock:
            self._cache.clear()

    async def get_value(self, name: str) -> bytes | None:
        entry = await kv_get_or_none(self._bucket, name)
        return None if entry is None else entry.value

    @staticmethod
    def prefix(tenant: str) -> str:
        """The key prefix of ``tenant``'s records (``t.<tenant hex>.``)."""
        return f"t.{tenant.encode().hex() or '-'}."

    async def _meta(self, tenant: str, seq: int) -> tuple[dict[str, Any], int] | None:
        entry = await kv_get_or_none(self._bucket, f"{self.prefix(tenant)}m.{seq}")
        return None if entry is None else (json.loads(entry.value), entry.revision)

    async def _change_meta(
        self, tenant: str, seq: int, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Apply ``change`` to ``m.<seq>`` by compare-and-set (``change`` returning None: leave it).

        Returns the meta as written (or as found when left), ``None`` when the RSU is not held.
        """
        key = f"{self.prefix(tenant)}m.{seq}"
        while True:
            found = await self._meta(tenant, seq)
            if found is None:
                return None
            meta, revision = found
            new = change(dict(meta))
            if new is None:
                return meta
            if await self._bucket.update(key, json.dumps(new).encode(), revision=revision) is not None:
                return new

    async def _add_bytes(self, tenant: str, delta: int) -> int:
        key = f"{self.prefix(tenant)}b"
        while True:
            entry = await kv_get_or_none(self._bucket, key)
            total = (int(entry.value) if entry is not None else 0) + delta
            data = str(total).encode()
            done = (
                await self._bucket.create(key, data)
                if entry is None
                else await self._bucket.update(key, data, revision=entry.revision)
            )
            if done is not None:
                return total

    async def _next_seqs(self, tenant: str, count: int) -> int:
        """Reserve ``count`` sequence numbers; returns the first."""
        key = f"{self.prefix(tenant)}n"
        while True:
            entry = await kv_get_or_none(self._bucket, key)
            first = int(entry.value) if entry is not None else 1
            data = str(first + count).encode()
            done = (
                await self._bucket.create(key, data)
                if entry is None
                else await self._bucket.update(key, data, revision=entry.revision)
            )
            if done is not None:
                return first

    def cache_put(self, tenant: str, seq: int, data: bytes) -> None:
        """Keep an RSU's content for reads (least recently used out; content over the bound is not kept)."""
        if len(data) > self._cache.maxsize:
            return
        with self._lock:
            if (tenant, seq) not in self._cache:
                self._cache[(tenant, seq)] = data

    def _forget_local(self, tenant: str, seq: int) -> None:
        with self._lock:
            self._cache.pop((tenant, seq), None)
            self._used.pop((tenant, seq), None)

    async def _touch(self, tenant: str, seq: int, now: float) -> bool:
        """Mark ``seq`` used at ``now`` (rewritten only when older than the touch interval)."""
        if now - self._used.get((tenant, seq), float("-inf")) < self._touch_s:
            return True
        meta = await self._change_meta(
            tenant, seq, lambda m: {**m, "u": now} if now - m["u"] >= self._touch_s else None
        )
        if meta is None:
            return False
        self._used[(tenant, seq)] = meta["u"]
        return True

    async def put_many(
        self, tenant: str, items: list[tuple[bytes, bytes]], blobs: dict[bytes, bytes] | None
    ) -> list[tuple[int, bool]]:
        prefix, now = self.prefix(tenant), self._clock()
        unique = list(dict.fromkeys(i for i, _ in items))
        data_of = dict(items)
        found = await _all([partial(kv_get_or_none, self._bucket, f"{prefix}i.{i.hex()}") for i in unique])
        seq_of = {i: int(e.value) for i, e in zip(unique, found, strict=True) if e is not None}
        present = list(seq_of.items())
        held = await _all([partial(self._touch, tenant, s, now) for _, s in present])
        for (i, _), ok in zip(present, held, strict=True):
            if not ok:  # its index entry outlived an eviction in progress: store it again
                del seq_of[i]
        missing = [i for i in unique if i not in seq_of]
        if blobs is not None and any(i not in blobs for i in missing):
            raise Resealing
        stored_of = data_of if blobs is None else blobs
        fresh: set[bytes] = set()
        if missing:
            first = await self._next_seqs(tenant, len(missing))
            stored = await _all(
                [
                    partial(self._store_new, tenant, i, first + k, data_of[i], stored_of[i], now)
                    for k, i in enumerate(missing)
                ]
            )
            for i, (seq, new) in zip(missing, stored, strict=True):
                seq_of[i] = seq
                if new:
                    fresh.add(i)
        added = sum(len(stored_of[i]) for i in fresh)
        out: list[tuple[int, bool]] = []
        for i, _ in items:
            out.append((seq_of[i], i in fresh))
            fresh.discard(i)  # a repeated id is new only the first time
        total = await self._add_bytes(tenant, added) if added else None
        await self._retain(tenant, {s for s, _ in out}, total, now)
        return out

    async def _store_new(
        self, tenant: str, rsu_id: bytes, seq: int, data: bytes, stored: bytes, now: float
    ) -> tuple[int, bool]:
        """Store an RSU under ``seq`` unless another replica stored the same id first (its seq wins).

        ``stored`` is what goes to KV: ``data`` itself, or sealed.
        """
        prefix = self.prefix(tenant)
        meta = {"r": 0, "p": False, "u": now, "b": len(stored), "i": rsu_id.hex()}
        await _all(  # the index entry last: once it names seq, the RSU is complete
            [
                partial(self._bucket.create, f"{prefix}c.{seq}", rsu_id + stored),
                partial(self._bucket.create, f"{prefix}m.{seq}", json.dumps(meta).encode()),
            ]
        )
        if await self._bucket.create(f"{prefix}i.{rsu_id.hex()}", str(seq).encode()) is None:
            await _all(
                [
                    partial(self._bucket.delete, f"{prefix}m.{seq}"),
                    partial(self._bucket.delete, f"{prefix}c.{seq}"),
                ]
            )
            other = await kv_get_or_none(self._bucket, f"{prefix}i.{rsu_id.hex()}")
            if other is not None:
                return int(other.value), False
            return await self._store_new(tenant, rsu_id, await self._next_seqs(tenant, 1), data, stored, now)
        self.cache_put(tenant, seq, data)
        self._used[(tenant, seq)] = now
        return seq, True

    async def seqs(self, tenant: str, ids: list[bytes]) -> dict[bytes, int]:
        prefix = self.prefix(tenant)
        found = await _all([partial(kv_get_or_none, self._bucket, f"{prefix}i.{i.hex()}") for i in ids])
        return {i: int(e.value) for i, e in zip(ids, found, strict=True) if e is not None}

    async def get_many(self, tenant: str, seqs: list[int]) -> tuple[dict[int, bytes], dict[int, bytes]]:
        """``(cached content, stored values to open)`` of ``seqs``, each marked used."""
        now, prefix = self._clock(), self.prefix(tenant)
        unique = list(dict.fromkeys(seqs))
        with self._lock:
            cached = {s: self._cache[(tenant, s)] for s in unique if (tenant, s) in self._cache}
        todo = [s for s in unique if s not in cached]
        # The touches (which also tell whether each RSU is still held) and the content reads, at once.
        calls: list[Callable[[], Awaitable[object]]] = [partial(self._touch, tenant, s, now) for s in unique]
        calls += [partial(kv_get_or_none, self._bucket, f"{prefix}c.{s}") for s in todo]
        done = await _all(calls)
        for seq, ok in zip(unique, done[: len(unique)], strict=True):
            if not ok:
                self._forget_local(tenant, seq)
                raise MissingRSUError(seq=seq)
        raw: dict[int, bytes] = {}
        for seq, entry in zip(todo, done[len(unique) :], strict=True):
            if not isinstance(entry, KvEntry):
                raise MissingRSUError(seq=seq)
            raw[seq] = entry.value
        return cached, raw

    async def acquire(self, tenant: str, seqs: list[int]) -> frozenset[int]:
        metas = await _all([partial(self._change_meta, tenant, s, _up) for s in seqs])
        return frozenset(s for s, m in zip(seqs, metas, strict=True) if m is not None)

    async def release(self, tenant: str, seqs: list[int]) -> None:
        metas = await _all([partial(self._meta, tenant, s) for s in seqs])
        for found in metas:
            if found is not None and found[0]["r"] <= 0:
                raise RSUStoreError(f"release of RSU {found[0]['i']} whose reference count is 0")

        await _all(
            [partial(self._change_meta, tenant, s, _down) for s, f in zip(seqs, metas, strict=True) if f]
        )

    async def by_id(self, tenant: str, rsu_id: bytes) -> tuple[int, dict[str, Any]]:
        entry = await kv_get_or_none(self._bucket, f"{self.prefix(tenant)}i.{rsu_id.hex()}")
        found = None if entry is None else await self._meta(tenant, int(entry.value))
        if entry is None or found is None:
            raise MissingRSUError(rsu_id)
        return int(entry.value), found[0]

    async def pin(self, tenant: str, rsu_id: bytes, pinned: bool) -> None:
        seq, _ = await self.by_id(tenant, rsu_id)
        if await self._change_meta(tenant, seq, lambda m: {**m, "p": pinned}) is None:
            raise MissingRSUError(rsu_id)

    async def metas(self, tenant: str) -> list[tuple[int, dict[str, Any], int]]:
        """``(seq, meta, revision)`` of every RSU the tenant holds."""
        entries: list[KvEntry] = await kv_values(self._bucket, f"{self.prefix(tenant)}m.>")
        return [(int(e.key.rsplit(".", 1)[1]), json.loads(e.value), e.revision) for e in entries]

    async def _evict(self, tenant: str, seq: int, meta: dict[str, Any], revision: int) -> bool:
        """Remove an RSU if its meta is still at ``revision`` (the claim); returns whether it was."""
        prefix = self.prefix(tenant)
        if not await self._bucket.delete(f"{prefix}m.{seq}", revision=revision):
            return False
        await self._bucket.delete(f"{prefix}i.{meta['i']}")
        await self._bucket.delete(f"{prefix}c.{seq}")
        await self._add_bytes(tenant, -int(meta["b"]))
        self._forget_local(tenant, seq)
        return True

    async def _retain(self, tenant: str, keep: set[int], total: int | None, now: float) -> None:
        max_age, max_bytes = self.retention.max_age_s, self.retention.max_bytes
        sweep_age = max_age is not None and now - self._swept.get(tenant, float("-inf")) >= self._touch_s
        if not sweep_age and (total is None or total <= max_bytes):
            return
        self._swept[tenant] = now
        metas = sorted(await self.metas(tenant), key=lambda x: x[1]["u"])
        evictable = [(s, m, r) for s, m, r in metas if not m["p"] and s not in keep]
        chosen: list[tuple[int, dict[str, Any], int]] = []
        if max_age is not None:
            chosen = [x for x in evictable if now - x[1]["u"] > max_age]
        held = sum(int(m["b"]) for _, m, _ in metas) - sum(int(m["b"]) for _, m, _ in chosen)
        for referenced in (False, True):  # least recently used first, unreferenced before referenced
            for x in evictable:
                if held <= max_bytes:
                    break
                if x not in chosen and (x[1]["r"] > 0) == referenced:
                    chosen.append(x)
                    held -= int(x[1]["b"])
        done = await _all([partial(self._evict, tenant, *x) for x in chosen])
        self.evicted[tenant] = self.evicted.get(tenant, 0) + sum(done)

    async def collect(self, tenant: str) -> GCResult:
        dead = [(s, m, r) for s, m, r in await self.metas(tenant) if m["r"] == 0 and not m["p"]]
        done = await _all([partial(self._evict, tenant, *x) for x in dead])
        removed = [x for x, ok in zip(dead, done, strict=True) if ok]
        return GCResult(removed=len(removed), bytes_freed=sum(int(m["b"]) for _, m, _ in removed))

    async def drop(self, tenant: str) -> GCResult:
        metas = await self.metas(tenant)
        prefix = self.prefix(tenant)
        for part in ("m.", "i.", "c."):
            await kv_purge_all(self._bucket, prefix=f"{prefix}{part}")
        await self._bucket.delete(f"{prefix}b")
        await self._bucket.delete(f"{prefix}k")
        for seq, _, _ in metas:
            self._forget_local(tenant, seq)
        return GCResult(removed=len(metas), bytes_freed=sum(int(m["b"]) for _, m, _ in metas))

"""`JetStreamRSUStore`: the ΣLANG RSU store on JetStream KV, shared by every Compression replica.

Implements `sigmalang.store.RSUStore` unchanged (rules there: sequence numbers, reference counts,
retention), so a frame compressed by one replica decodes on any other. One KV bucket, :data:`BUCKET`
(replicas ``nats.stream_replicas``, no ``max_age``: retention is the store's), keys per tenant under
``t.<tenant hex>.``:

=================  =================================================================================
``n``              the tenant's next sequence number (compare-and-set; a number is never reused)
``i.<id hex>``     id → ``seq`` (``create``: two replicas storing the same content agree on one)
``c.<seq>``        the RSU: its 16-byte id, then its bytes (immutable; re-hashed when read)
``m.<seq>``        ``{"r": refcount, "p": pinned, "u": last use (s), "b": bytes, "i": id hex}``
``b``              the tenant's stored bytes (compare-and-set)
``k``              sealed stores only: the tenant's row-id key, sealed
=================  =================================================================================

Semantics, and how they differ from the single-process stores:

* Every change of a count, a pin or a use time is a compare-and-set on ``m.<seq>``'s revision, retried
  on conflict, so concurrent replicas never lose an ``acquire`` or ``release``. A call over several RSUs
  is not atomic as a whole (``release`` checks every count first, then decrements one by one);
  `transaction` is a no-op.
* Eviction claims an RSU by deleting ``m.<seq>`` at the revision it read: a concurrent ``acquire``
  either lands first (the RSU is kept) or finds it gone (not held), never both.
* Last use is rewritten only when older than ``min(60 s, max_age / 10)`` (as `DiskRSUStore` does), and
  the age sweep runs at most that often per tenant and process; the byte limit is checked after every
  `put_many` that added bytes, from ``b``.
* ``stats().evicted`` counts what this process evicted since it opened the store.
* Given a `sigmalang.sealing.ChunkSealer` (the Storage team in the same process), content is sealed
  with the tenant's key and ids are keyed per tenant exactly as in `DiskRSUStore` (``k`` holds the
  tenant's sealed row-id key; ``i.<row id>``; byte counts are of the sealed bytes); sealing and opening
  run in the caller's thread, never on the event loop. Without one, content is stored as it is and
  NATS permissions guard the bucket.

The store's methods are synchronous (the codec runs in worker threads); each runs its KV calls on the
event loop that owns the NATS connection through an anyio `BlockingPortal`, concurrently where they are
independent. They must not be called from that event loop's own thread. RSU bytes are cached in
process (:data:`CACHE_BYTES`, never stale: a sequence number always names the same bytes).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from agents.jetstream import JetStream, KeyValueBucket, KvEntry, kv_get_or_none, kv_purge_all, kv_values
from sigmalang import MissingRSUError, Retention, RSUStoreError
from sigmalang.chunking import rsu_id as compute_rsu_id
from sigmalang.sealing import ID_KEY_AAD, ChunkSealer, new_id_key, row_aad, row_id
from sigmalang.store import GCResult, StoreStats

__all__ = ("BUCKET", "CACHE_BYTES", "FRAME_SECRET_KEY", "JetStreamRSUStore", "shared_frame_secret")

BUCKET = "neurectomy_sigma_rsus"
"""The KV bucket of every tenant's RSUs."""
CACHE_BYTES = 64 * 1024 * 1024
"""RSU bytes kept in this process for reads."""
_ID_BYTES = 16
_MODE_KEY = "mode"
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


class _Resealing(Exception):  # noqa: N818 - a private retry signal, not an error
    """An RSU to store was not sealed (it was held when sealing ran): seal and try again."""


def _up(meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "r": meta["r"] + 1}


def _down(meta: dict[str, Any]) -> dict[str, Any]:
    if meta["r"] <= 0:
        raise RSUStoreError(f"release of RSU {meta['i']} whose reference count is 0")
    return {**meta, "r": meta["r"] - 1}


class JetStreamRSUStore:
    """The per-tenant, bounded RSU store on JetStream KV (see the module docstring).

    Create with :meth:`open` on the event loop of ``js``'s connection.

    Args:
        bucket: The open KV bucket.
        portal: A portal into the event loop that owns the bucket's connection.
        retention: Bytes and age kept per tenant; default `Retention()`.
        clock: Seconds since the Unix epoch (tests pass a fake one to age RSUs).
    """

    def __init__(
        self,
        bucket: KeyValueBucket,
        portal: BlockingPortal,
        *,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
        sealer: ChunkSealer | None = None,
    ) -> None:
        self._sealer = sealer
        self._bucket = bucket
        self._portal = portal
        self.retention = retention or Retention()
        self._clock = clock
        self._closed = False
        self._lock = threading.Lock()  # guards the caches below
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._cache_bytes = 0
        self._used: dict[tuple[str, int], float] = {}  # last use this process wrote or read
        self._swept: dict[str, float] = {}
        self._evicted: dict[str, int] = {}
        max_age = self.retention.max_age_s
        self._touch_s = 60.0 if max_age is None else min(60.0, max_age / 10)

    @classmethod
    async def open(
        cls,
        js: JetStream,
        portal: BlockingPortal,
        *,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
        bucket: str = BUCKET,
        sealer: ChunkSealer | None = None,
    ) -> JetStreamRSUStore:
        """Open (create if missing) ``bucket`` with ``js``'s replicas.

        A bucket is sealed or not for its whole life (recorded in it at first use, as `DiskRSUStore`
        records it in its file).

        Raises:
            RSUStoreError: The bucket was written sealed and ``sealer`` is None, or the other way round.
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        kv = await js.ensure_key_value(bucket, history=1)
        want = b"sealed" if sealer is not None else b"plain"
        await kv.create(_MODE_KEY, want)
        have = (await kv.get(_MODE_KEY)).value
        if have != want:
            raise RSUStoreError(
                f"the RSU bucket {bucket} is {have.decode()}; this store is {want.decode()} (start every "
                "Compression replica the same way: with or without the Storage team in process)"
            )
        return cls(kv, portal, retention=retention, clock=clock, sealer=sealer)

    # -- sealed stores: the tenant's row-id key ----------------------------------------------------

    def _row_ids(self, tenant: str, *, create: bool) -> Callable[[bytes], bytes] | None:
        """``content id -> row id`` for the tenant (identity when unsealed); None if it has no key."""
        if self._sealer is None:
            return bytes
        key = self._id_key(tenant, create=create)
        return None if key is None else partial(row_id, key)

    def _id_key(self, tenant: str, *, create: bool) -> bytes | None:
        """The tenant's row-id key, created if ``create``; None if it has none.

        Opening it also checks that the tenant's key still exists: if it was shredded, the tenant's
        RSUs are dropped first (and a new key is made only if ``create``).
        """
        assert self._sealer is not None  # noqa: S101 - only called when sealed
        name = f"{self._prefix(tenant)}k"
        blob = self._run(self._get_value, name)
        if blob is not None:
            try:
                return self._sealer.open(tenant, ID_KEY_AAD, blob)
            except LookupError:
                self._run(self._drop, tenant)
            except ValueError as exc:
                raise RSUStoreError(
                    f"row-id key of tenant {tenant!r} in {BUCKET} does not open: {exc}"
                ) from exc
        if not create:
            return None
        key = new_id_key()
        if self._run(self._bucket.create, name, self._sealer.seal(tenant, ID_KEY_AAD, key)) is not None:
            return key
        return self._id_key(tenant, create=False)  # another replica made it first: use theirs

    async def _get_value(self, name: str) -> bytes | None:
        entry = await kv_get_or_none(self._bucket, name)
        return None if entry is None else entry.value

    # -- plumbing ---------------------------------------------------------------------------------

    def _run(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        if self._closed:
            raise RSUStoreError("store is closed")
        return self._portal.call(fn, *args)

    @staticmethod
    def _prefix(tenant: str) -> str:
        return f"t.{tenant.encode().hex() or '-'}."

    async def _meta(self, tenant: str, seq: int) -> tuple[dict[str, Any], int] | None:
        entry = await kv_get_or_none(self._bucket, f"{self._prefix(tenant)}m.{seq}")
        return None if entry is None else (json.loads(entry.value), entry.revision)

    async def _change_meta(
        self, tenant: str, seq: int, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Apply ``change`` to ``m.<seq>`` by compare-and-set (``change`` returning None: leave it).

        Returns the meta as written (or as found when left), ``None`` when the RSU is not held.
        """
        key = f"{self._prefix(tenant)}m.{seq}"
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
        key = f"{self._prefix(tenant)}b"
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
        key = f"{self._prefix(tenant)}n"
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

    def _cache_put(self, tenant: str, seq: int, data: bytes) -> None:
        with self._lock:
            if (tenant, seq) in self._cache:
                return
            self._cache[(tenant, seq)] = data
            self._cache_bytes += len(data)
            while self._cache_bytes > CACHE_BYTES and self._cache:
                _, dropped = self._cache.popitem(last=False)
                self._cache_bytes -= len(dropped)

    def _forget_local(self, tenant: str, seq: int) -> None:
        with self._lock:
            data = self._cache.pop((tenant, seq), None)
            if data is not None:
                self._cache_bytes -= len(data)
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

    # -- RSUStore ---------------------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """See `RSUStore.transaction` (a no-op: each KV write stands alone)."""
        return nullcontext()

    def put_many(
        self, tenant: str, items: Sequence[tuple[bytes, bytes | memoryview]]
    ) -> list[tuple[int, bool]]:
        """See `RSUStore.put_many`."""
        for rsu_id, _ in items:
            if len(rsu_id) != _ID_BYTES:
                raise ValueError(f"RSU ids are {_ID_BYTES} bytes, got {len(rsu_id)}")
        if not items:
            return []
        ids = self._row_ids(tenant, create=True)
        assert ids is not None  # noqa: S101 - created
        rows = [(ids(i), bytes(d)) for i, d in items]
        while True:
            blobs: dict[bytes, bytes] | None = None
            if self._sealer is not None:  # seal (in this thread) what the tenant does not hold yet
                held = self._run(self._seqs, tenant, list(dict.fromkeys(r for r, _ in rows)))
                blobs = {r: self._sealer.seal(tenant, row_aad(r), d) for r, d in rows if r not in held}
            try:
                return self._run(self._put_many, tenant, rows, blobs)
            except _Resealing:  # an RSU held a moment ago was evicted meanwhile: seal it too
                continue

    async def _put_many(
        self, tenant: str, items: list[tuple[bytes, bytes]], blobs: dict[bytes, bytes] | None
    ) -> list[tuple[int, bool]]:
        prefix, now = self._prefix(tenant), self._clock()
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
            raise _Resealing
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
        prefix = self._prefix(tenant)
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
        self._cache_put(tenant, seq, data)
        self._used[(tenant, seq)] = now
        return seq, True

    def seqs(self, tenant: str, rsu_ids: Iterable[bytes]) -> dict[bytes, int]:
        """See `RSUStore.seqs`."""
        ids = self._row_ids(tenant, create=False)
        if ids is None:
            return {}
        content_of = {ids(i): i for i in dict.fromkeys(rsu_ids)}
        found = self._run(self._seqs, tenant, list(content_of))
        return {content_of[r]: seq for r, seq in found.items()}

    async def _seqs(self, tenant: str, ids: list[bytes]) -> dict[bytes, int]:
        prefix = self._prefix(tenant)
        found = await _all([partial(kv_get_or_none, self._bucket, f"{prefix}i.{i.hex()}") for i in ids])
        return {i: int(e.value) for i, e in zip(ids, found, strict=True) if e is not None}

    def get_many(self, tenant: str, seqs: Sequence[int]) -> list[bytes]:
        """See `RSUStore.get_many`."""
        key: bytes | None = None
        if self._sealer is not None:  # checks the tenant's key is alive before any cached content is used
            key = self._id_key(tenant, create=False)
            if key is None:
                raise MissingRSUError(seq=seqs[0] if seqs else None)
        found, raw = self._run(self._get_many, tenant, list(seqs))
        for seq, value in raw.items():
            rid, stored = value[:_ID_BYTES], value[_ID_BYTES:]
            plain = stored if self._sealer is None else self._open_row(tenant, rid, stored)
            expected = compute_rsu_id(plain) if key is None else row_id(key, compute_rsu_id(plain))
            if expected != rid:
                raise RSUStoreError(f"RSU #{seq} of tenant {tenant!r} fails its hash check in {BUCKET}")
            found[seq] = plain
            self._cache_put(tenant, seq, plain)
        return [found[s] for s in seqs]

    def _open_row(self, tenant: str, rid: bytes, blob: bytes) -> bytes:
        assert self._sealer is not None  # noqa: S101 - only called when sealed
        try:
            return self._sealer.open(tenant, row_aad(rid), blob)
        except (LookupError, ValueError) as exc:
            raise RSUStoreError(f"sealed RSU {rid.hex()} of tenant {tenant!r} does not open: {exc}") from exc

    async def _get_many(self, tenant: str, seqs: list[int]) -> tuple[dict[int, bytes], dict[int, bytes]]:
        """``(cached content, stored values to open)`` of ``seqs``, each marked used."""
        now, prefix = self._clock(), self._prefix(tenant)
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

    def acquire(self, tenant: str, seqs: Iterable[int]) -> frozenset[int]:
        """See `RSUStore.acquire`."""
        return self._run(self._acquire, tenant, sorted(set(seqs)))

    async def _acquire(self, tenant: str, seqs: list[int]) -> frozenset[int]:
        metas = await _all([partial(self._change_meta, tenant, s, _up) for s in seqs])
        return frozenset(s for s, m in zip(seqs, metas, strict=True) if m is not None)

    def release(self, tenant: str, seqs: Iterable[int]) -> None:
        """See `RSUStore.release` (counts are all checked first, then decremented one by one)."""
        self._run(self._release, tenant, sorted(set(seqs)))

    async def _release(self, tenant: str, seqs: list[int]) -> None:
        metas = await _all([partial(self._meta, tenant, s) for s in seqs])
        for found in metas:
            if found is not None and found[0]["r"] <= 0:
                raise RSUStoreError(f"release of RSU {found[0]['i']} whose reference count is 0")

        await _all(
            [partial(self._change_meta, tenant, s, _down) for s, f in zip(seqs, metas, strict=True) if f]
        )

    async def _by_id(self, tenant: str, rsu_id: bytes) -> tuple[int, dict[str, Any]]:
        entry = await kv_get_or_none(self._bucket, f"{self._prefix(tenant)}i.{rsu_id.hex()}")
        found = None if entry is None else await self._meta(tenant, int(entry.value))
        if entry is None or found is None:
            raise MissingRSUError(rsu_id)
        return int(entry.value), found[0]

    def _row(self, tenant: str, rsu_id: bytes) -> bytes:
        ids = self._row_ids(tenant, create=False)
        if ids is None:
            raise MissingRSUError(rsu_id)
        return ids(rsu_id)

    def refcount(self, tenant: str, rsu_id: bytes) -> int:
        """See `RSUStore.refcount`."""
        try:
            _, meta = self._run(self._by_id, tenant, self._row(tenant, rsu_id))
        except MissingRSUError:
            raise MissingRSUError(rsu_id) from None
        return int(meta["r"])

    def pin(self, tenant: str, rsu_id: bytes, pinned: bool = True) -> None:
        """See `RSUStore.pin`."""
        try:
            self._run(self._pin, tenant, self._row(tenant, rsu_id), pinned)
        except MissingRSUError:
            raise MissingRSUError(rsu_id) from None

    async def _pin(self, tenant: str, rsu_id: bytes, pinned: bool) -> None:
        seq, _ = await self._by_id(tenant, rsu_id)
        if await self._change_meta(tenant, seq, lambda m: {**m, "p": pinned}) is None:
            raise MissingRSUError(rsu_id)

    def is_pinned(self, tenant: str, rsu_id: bytes) -> bool:
        """See `RSUStore.is_pinned`."""
        try:
            _, meta = self._run(self._by_id, tenant, self._row(tenant, rsu_id))
        except MissingRSUError:
            raise MissingRSUError(rsu_id) from None
        return bool(meta["p"])

    async def _metas(self, tenant: str) -> list[tuple[int, dict[str, Any], int]]:
        """``(seq, meta, revision)`` of every RSU the tenant holds."""
        entries: list[KvEntry] = await kv_values(self._bucket, f"{self._prefix(tenant)}m.>")
        return [(int(e.key.rsplit(".", 1)[1]), json.loads(e.value), e.revision) for e in entries]

    async def _evict(self, tenant: str, seq: int, meta: dict[str, Any], revision: int) -> bool:
        """Remove an RSU if its meta is still at ``revision`` (the claim); returns whether it was."""
        prefix = self._prefix(tenant)
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
        metas = sorted(await self._metas(tenant), key=lambda x: x[1]["u"])
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
        self._evicted[tenant] = self._evicted.get(tenant, 0) + sum(done)

    def collect_garbage(self, tenant: str) -> GCResult:
        """See `RSUStore.collect_garbage`."""
        return self._run(self._collect, tenant)

    async def _collect(self, tenant: str) -> GCResult:
        dead = [(s, m, r) for s, m, r in await self._metas(tenant) if m["r"] == 0 and not m["p"]]
        done = await _all([partial(self._evict, tenant, *x) for x in dead])
        removed = [x for x, ok in zip(dead, done, strict=True) if ok]
        return GCResult(removed=len(removed), bytes_freed=sum(int(m["b"]) for _, m, _ in removed))

    def stats(self, tenant: str) -> StoreStats:
        """See `RSUStore.stats`."""
        metas = self._run(self._metas, tenant)
        return StoreStats(
            rsus=len(metas),
            bytes=sum(int(m["b"]) for _, m, _ in metas),
            referenced=sum(1 for _, m, _ in metas if m["r"] > 0),
            pinned=sum(1 for _, m, _ in metas if m["p"]),
            evicted=self._evicted.get(tenant, 0),
        )

    def drop_tenant(self, tenant: str) -> GCResult:
        """See `RSUStore.drop_tenant` (the sequence counter ``n`` is kept: numbers are never reused)."""
        return self._run(self._drop, tenant)

    async def _drop(self, tenant: str) -> GCResult:
        metas = await self._metas(tenant)
        prefix = self._prefix(tenant)
        for part in ("m.", "i.", "c."):
            await kv_purge_all(self._bucket, prefix=f"{prefix}{part}")
        await self._bucket.delete(f"{prefix}b")
        await self._bucket.delete(f"{prefix}k")
        for seq, _, _ in metas:
            self._forget_local(tenant, seq)
        return GCResult(removed=len(metas), bytes_freed=sum(int(m["b"]) for _, m, _ in metas))

    def close(self) -> None:
        """See `RSUStore.close` (the bucket and the connection stay; only this object stops)."""
        self._closed = True
        with self._lock:
            self._cache.clear()
            self._cache_bytes = 0


FRAME_SECRET_KEY = "frame.secret"  # noqa: S105 - a key name, not a secret
"""Key (in :data:`BUCKET`) of the secret the tenants' frame MAC keys derive from, on a cluster."""


async def shared_frame_secret(js: JetStream, *, bucket: str = BUCKET) -> bytes:
    """The cluster's frame secret: 32 random bytes stored once in KV (``create``: the first replica's wins).

    Every Compression replica must derive the same per-tenant frame keys, or a frame made by one fails
    authentication on another. The secret is as protected as the RSUs beside it (NATS permissions).

    Raises:
        JetStreamUnavailableError: JetStream is not enabled or did not answer.
    """
    kv = await js.ensure_key_value(bucket, history=1)
    await kv.create(FRAME_SECRET_KEY, os.urandom(32))  # None: another replica made it first
    return (await kv.get(FRAME_SECRET_KEY)).value

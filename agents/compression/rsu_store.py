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

import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal

from agents.compression._rsu_records import CACHE_BYTES, Resealing, RsuRecords
from agents.jetstream import JetStream, KeyValueBucket
from sigmalang import MissingRSUError, Retention, RSUStoreError
from sigmalang.chunking import rsu_id as compute_rsu_id
from sigmalang.frame import RSU_ID_BYTES
from sigmalang.sealing import ID_KEY_AAD, ChunkSealer, new_id_key, row_aad, row_id
from sigmalang.store import GCResult, StoreStats, check_rsu_ids

__all__ = ("BUCKET", "CACHE_BYTES", "FRAME_SECRET_KEY", "JetStreamRSUStore", "shared_frame_secret")

BUCKET = "neurectomy_sigma_rsus"
"""The KV bucket of every tenant's RSUs."""
_MODE_KEY = "mode"
_T = TypeVar("_T")


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
        self._portal = portal
        self.retention = retention or Retention()
        self._closed = False
        self._records = RsuRecords(bucket, self.retention, clock)

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
        name = f"{self._records.prefix(tenant)}k"
        blob = self._run(self._records.get_value, name)
        if blob is not None:
            try:
                return self._sealer.open(tenant, ID_KEY_AAD, blob)
            except LookupError:
                self._run(self._records.drop, tenant)
            except ValueError as exc:
                raise RSUStoreError(
                    f"row-id key of tenant {tenant!r} in {BUCKET} does not open: {exc}"
                ) from exc
        if not create:
            return None
        key = new_id_key()
        if (
            self._run(self._records.bucket.create, name, self._sealer.seal(tenant, ID_KEY_AAD, key))
            is not None
        ):
            return key
        return self._id_key(tenant, create=False)  # another replica made it first: use theirs

    # -- plumbing ---------------------------------------------------------------------------------

    def _run(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """``fn(*args)`` on the connection's event loop, from this (worker) thread."""
        if self._closed:
            raise RSUStoreError("store is closed")
        return self._portal.call(fn, *args)

    # -- RSUStore ---------------------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """See `RSUStore.transaction` (a no-op: each KV write stands alone)."""
        return nullcontext()

    def put_many(
        self, tenant: str, items: Sequence[tuple[bytes, bytes | memoryview]]
    ) -> list[tuple[int, bool]]:
        """See `RSUStore.put_many`."""
        check_rsu_ids(items)
        if not items:
            return []
        ids = self._row_ids(tenant, create=True)
        assert ids is not None  # noqa: S101 - created
        rows = [(ids(i), bytes(d)) for i, d in items]
        while True:
            blobs: dict[bytes, bytes] | None = None
            if self._sealer is not None:  # seal (in this thread) what the tenant does not hold yet
                held = self._run(self._records.seqs, tenant, list(dict.fromkeys(r for r, _ in rows)))
                blobs = {r: self._sealer.seal(tenant, row_aad(r), d) for r, d in rows if r not in held}
            try:
                return self._run(self._records.put_many, tenant, rows, blobs)
            except Resealing:  # an RSU held a moment ago was evicted meanwhile: seal it too
                continue

    def seqs(self, tenant: str, rsu_ids: Iterable[bytes]) -> dict[bytes, int]:
        """See `RSUStore.seqs`."""
        ids = self._row_ids(tenant, create=False)
        if ids is None:
            return {}
        content_of = {ids(i): i for i in dict.fromkeys(rsu_ids)}
        found = self._run(self._records.seqs, tenant, list(content_of))
        return {content_of[r]: seq for r, seq in found.items()}

    def get_many(self, tenant: str, seqs: Sequence[int]) -> list[bytes]:
        """See `RSUStore.get_many`."""
        key: bytes | None = None
        if self._sealer is not None:  # checks the tenant's key is alive before any cached content is used
            key = self._id_key(tenant, create=False)
            if key is None:
                raise MissingRSUError(seq=seqs[0] if seqs else None)
        found, raw = self._run(self._records.get_many, tenant, list(seqs))
        for seq, value in raw.items():
            rid, stored = value[:RSU_ID_BYTES], value[RSU_ID_BYTES:]
            plain = stored if self._sealer is None else self._open_row(tenant, rid, stored)
            expected = compute_rsu_id(plain) if key is None else row_id(key, compute_rsu_id(plain))
            if expected != rid:
                raise RSUStoreError(f"RSU #{seq} of tenant {tenant!r} fails its hash check in {BUCKET}")
            found[seq] = plain
            self._records.cache_put(tenant, seq, plain)
        return [found[s] for s in seqs]

    def _open_row(self, tenant: str, rid: bytes, blob: bytes) -> bytes:
        assert self._sealer is not None  # noqa: S101 - only called when sealed
        try:
            return self._sealer.open(tenant, row_aad(rid), blob)
        except (LookupError, ValueError) as exc:
            raise RSUStoreError(f"sealed RSU {rid.hex()} of tenant {tenant!r} does not open: {exc}") from exc

    def acquire(self, tenant: str, seqs: Iterable[int]) -> frozenset[int]:
        """See `RSUStore.acquire`."""
        return self._run(self._records.acquire, tenant, sorted(set(seqs)))

    def release(self, tenant: str, seqs: Iterable[int]) -> None:
        """See `RSUStore.release` (counts are all checked first, then decremented one by one)."""
        self._run(self._records.release, tenant, sorted(set(seqs)))

    def _row(self, tenant: str, rsu_id: bytes) -> bytes:
        ids = self._row_ids(tenant, create=False)
        if ids is None:
            raise MissingRSUError(rsu_id)
        return ids(rsu_id)

    def refcount(self, tenant: str, rsu_id: bytes) -> int:
        """See `RSUStore.refcount`."""
        try:
            _, meta = self._run(self._records.by_id, tenant, self._row(tenant, rsu_id))
        except MissingRSUError:
            raise MissingRSUError(rsu_id) from None
        return int(meta["r"])

    def pin(self, tenant: str, rsu_id: bytes, pinned: bool = True) -> None:
        """See `RSUStore.pin`."""
        try:
            self._run(self._records.pin, tenant, self._row(tenant, rsu_id), pinned)
        except MissingRSUError:
            raise MissingRSUError(rsu_id) from None

    def is_pinned(self, tenant: str, rsu_id: bytes) -> bool:
        """See `RSUStore.is_pinned`."""
        try:
            _, meta = self._run(self._records.by_id, tenant, self._row(tenant, rsu_id))
        except MissingRSUError:
            raise MissingRSUError(rsu_id) from None
        return bool(meta["p"])

    def collect_garbage(self, tenant: str) -> GCResult:
        """See `RSUStore.collect_garbage`."""
        return self._run(self._records.collect, tenant)

    def stats(self, tenant: str) -> StoreStats:
        """See `RSUStore.stats`."""
        metas = self._run(self._records.metas, tenant)
        return StoreStats(
            rsus=len(metas),
            bytes=sum(int(m["b"]) for _, m, _ in metas),
            referenced=sum(1 for _, m, _ in metas if m["r"] > 0),
            pinned=sum(1 for _, m, _ in metas if m["p"]),
            evicted=self._records.evicted.get(tenant, 0),
        )

    def drop_tenant(self, tenant: str) -> GCResult:
        """See `RSUStore.drop_tenant` (the sequence counter ``n`` is kept: numbers are never reused)."""
        return self._run(self._records.drop, tenant)

    def close(self) -> None:
        """See `RSUStore.close` (the bucket and the connection stay; only this object stops)."""
        self._closed = True
        self._records.clear_cache()


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

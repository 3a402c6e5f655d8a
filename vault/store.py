"""The :class:`Vault`: an embedded, encrypted vector store with one FAISS index per tenant."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from vault._private.access import StorageAccess
from vault._private.administration import Administration
from vault._private.background import BackgroundWork, background_priority
from vault._private.cache import RecordCache
from vault._private.faisslib import faiss_module
from vault._private.files import DirLock
from vault._private.storage import Storage
from vault._private.validate import (
    check_k,
    check_name,
    check_vector,
    check_where,
    embed_checked,
    matches,
)
from vault.config import VaultConfig
from vault.embedding import Embedder, MiniLMEmbedder
from vault.errors import (
    EmptyTextError,
    RecordNotFoundError,
    TenantNotFoundError,
    VaultInputError,
    VaultStorageError,
)
from vault.records import JSONScalar, NewRecord, Record, SearchHit

__all__ = ("Vault",)

log = structlog.get_logger("vault")


class Vault(Administration, StorageAccess, BackgroundWork):
    """An encrypted, durable, multi-tenant vector store on FAISS.

    Every write is sealed with AES-256-GCM under the tenant's data key, appended to the write-ahead log
    and fsynced before the call returns. All methods are synchronous and thread-safe (one lock guards
    the state; embedding runs outside it). Use as a context manager or call :meth:`close`.

    Mutating calls take an ``idempotency_key`` (a retry with the same key returns the first call's result
    and writes nothing) and a ``deadline`` (``time.time()`` seconds: a call that has not committed by then
    raises :class:`~vault.errors.VaultDeadlineError` and never commits later). A write that fails on a
    full disk raises :class:`~vault.errors.InsufficientStorageError` and keeps nothing; reads keep working.

    Args:
        data_dir: Directory the vault owns (created with mode 0700); only one open vault may use it.
        config: Settings; defaults apply when ``None``.
        embedder: Turns texts into vectors; ``None`` means all-MiniLM-L6-v2 (loaded on first use).

    Raises:
        VaultLockedError: Another vault has ``data_dir`` open.
        IntegrityError: A file in ``data_dir`` is corrupted or was tampered with (the error names it).
        KeyEncryptionKeyError: The KEK is malformed or does not match the keyring.
        DimensionMismatchError: ``data_dir`` holds vectors of another dimension than the embedder's.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        config: VaultConfig | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self._config = config or VaultConfig()
        self._dir = Path(data_dir)
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._dir.stat().st_mode & 0o077 and self._dir.stat().st_uid == os.getuid():
            self._dir.chmod(0o700)  # state directories are private to their owner
        self._embedder: Embedder = embedder or MiniLMEmbedder(
            batch_size=self._config.embed_batch_size, torch_threads=self._config.embed_threads
        )
        self._dim = int(self._embedder.dim)
        faiss_module()  # imported now (~180 ms), not inside the first write or search
        self._lock = threading.RLock()
        self._dirlock = DirLock(self._dir / "LOCK")
        try:
            self._storage = Storage(self._dir, self._config, self._dim)
        except BaseException:
            self._dirlock.release()
            raise
        self._cache = RecordCache(self._config.cache.l1_max_bytes)
        self._closed = False
        self._builder = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="vault-index", initializer=background_priority
        )
        self._builds: dict[str, Future[None]] = {}
        self._snapshot_job: Future[None] | None = None
        self._drain_job: Future[None] | None = None
        self._drained = threading.Condition()
        """Notified after each drain step: writers waiting for room in a full backlog (no vault lock)."""
        self._drain_steps = 0
        self._add_cost_s = 1e-3
        """Moving average of the wall time one vector takes to enter an index (seconds; sizes slices)."""
        self._snapshot_lock = threading.RLock()
        """Held for a whole snapshot, and by shreds, compactions and restores (taken before ``_lock``)."""
        with self._lock:
            self._schedule_builds(self._storage)

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Snapshot (if ``snapshot_on_close``), close files and release the directory lock. Idempotent.

        An index build running in the background is waited for and dropped (the next open builds again);
        a background snapshot being written is finished.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake_writers()  # writers waiting for room find the vault closed
        self._builder.shutdown(wait=True, cancel_futures=True)
        with self._snapshot_lock, self._lock:
            try:
                self._storage.close(snapshot=self._config.durability.snapshot_on_close)
            finally:
                self._dirlock.release()

    @property
    def data_dir(self) -> Path:
        """The data directory."""
        return self._dir

    @property
    def kek_file(self) -> Path | None:
        """The file the key-encryption key is read from (``None`` when it comes from the environment)."""
        return self._open().keys.kek_file

    @property
    def dim(self) -> int:
        """Vector dimension (384 with the default embedder)."""
        return self._dim

    @property
    def embedder(self) -> Embedder:
        """The embedder that turns texts into vectors (thread-safe; usable without a tenant)."""
        return self._embedder

    # ----------------------------------------------------------------- writes
    def put(
        self,
        tenant: str,
        text: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,  # noqa: A002 - the record field is called id
        embedding: NDArray[np.float32] | None = None,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> str:
        """Store one record durably; see :meth:`put_many`.

        Returns:
            The record id (generated when ``id`` is ``None``).
        """
        record = NewRecord(text=text, metadata=metadata or {}, id=id, embedding=embedding)
        return self.put_many(tenant, [record], idempotency_key=idempotency_key, deadline=deadline)[0]

    def put_many(
        self,
        tenant: str,
        records: Sequence[NewRecord],
        *,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> list[str]:
        """Embed (where no vector is given), seal, log and index records; returns once fsynced.

        Storing an existing id replaces that record. Texts without a vector are embedded in batches of
        ``config.embed_batch_size``. The batch commits as one WAL write: after a failure nothing of it
        is kept. When the tenant's vectors waiting to enter its index would pass
        ``config.index.max_pending_vectors``, the call first moves that excess into the index itself
        (holding no vault lock: reads go on), so it waits in proportion to its excess; while a snapshot
        freezes the index it waits for the snapshot instead. Either wait ends at ``deadline``.

        Args:
            tenant: Tenant name (1-256 characters); created with a fresh data key on first write.
            records: Up to ``config.max_batch`` records.
            idempotency_key: Names this call (1-256 characters). A call with a key the tenant remembers
                (the last ``durability.idempotency_keys``) returns the ids it returned then and writes
                nothing; records without an id get ids derived from the key
                (:func:`~vault._private.validate.derived_id`), so a retry after the key is forgotten
                replaces the same records instead of adding copies.
            deadline: ``time.time()`` seconds after which the call must not commit.

        Returns:
            Record ids, in input order.

        Raises:
            EmptyTextError: A text is empty.
            RecordTooLargeError: A record's text + JSON metadata exceed ``config.max_record_bytes``.
            DimensionMismatchError: A vector (given, or returned by the embedder) is not ``(dim,)``.
            VaultInputError: Bad tenant, id, idempotency key, metadata or batch size.
            InsufficientStorageError: The disk is full (nothing was written; reads keep working).
            VaultStorageError: Another write error (nothing was written).
            VaultDeadlineError: ``deadline`` passed before the write could commit, e.g. while waiting
                for room among the waiting vectors (nothing was written).
            VaultClosedError: The vault is closed.
        """
        check_name(tenant, "tenant")
        if idempotency_key is not None:
            check_name(idempotency_key, "idempotency_key")
            with self._lock:
                earlier = self._open().done(tenant, idempotency_key)
            if earlier is not None:
                return list(earlier)
        ids, items = self._sealable(records, idempotency_key, deadline)
        paid = 0
        while True:  # a full backlog of waiting vectors: move the excess outside the lock, then retry
            mark = self._drain_mark()
            with self._locked("put_many", deadline) as storage:
                earlier = storage.done(tenant, idempotency_key)
                if earlier is not None:  # a concurrent retry committed first
                    return list(earlier)
                excess = self._excess(storage, tenant, len(items), paid)
                if not excess:
                    put = storage.begin_put(tenant, items, key=idempotency_key, result=ids)
                    break
            paid += self._make_room(tenant, excess, mark, "put_many", deadline)
        # Group commit: the fsync runs without the lock, and covers every write made before it began.
        try:
            put.wal.sync(put.ticket)
        except VaultStorageError:
            pass  # finish_puts cuts the WAL back and sets put.error
        with self._lock:
            storage = self._storage
            storage.finish_puts()
            if put.error is not None:
                raise put.error
            if not put.applied:  # the fsync failed and another writer's sync succeeded meanwhile?
                storage.settle()
            assert put.applied, "a durable put is applied in WAL order"
            for record_id in ids:
                self._cache.discard(tenant, record_id)
            if not self._closed:
                self._schedule_builds(storage)
                self._maybe_snapshot(storage)
        return ids

    def delete(
        self,
        tenant: str,
        record_id: str,
        *,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> None:
        """Delete one record durably (a tombstone until compaction).

        Args:
            tenant: The tenant.
            record_id: The record.
            idempotency_key: Names this call: a retry of a delete that succeeded succeeds again (instead
                of raising :class:`RecordNotFoundError`) and writes nothing.
            deadline: ``time.time()`` seconds after which the call must not commit.

        Raises:
            TenantNotFoundError: Unknown tenant.
            RecordNotFoundError: No live record with this id.
            InsufficientStorageError: The disk is full (the record stays).
            VaultDeadlineError: ``deadline`` passed before the delete could commit (the record stays).
        """
        if idempotency_key is not None:
            check_name(idempotency_key, "idempotency_key")
        with self._locked("delete", deadline) as storage:
            if storage.done(tenant, idempotency_key) is not None:
                return
            state = storage.tenants.get(tenant)
            if state is None or record_id not in state.slots:
                if not storage.keys.has_tenant(tenant):
                    raise TenantNotFoundError(tenant)
                raise RecordNotFoundError(tenant, record_id)
            storage.delete(tenant, record_id, key=idempotency_key)
            self._cache.discard(tenant, record_id)
            self._maybe_snapshot(storage)

    def delete_tenant(self, tenant: str, *, idempotency_key: str | None = None) -> None:
        """Crypto-shred a tenant: destroy its data keys and delete its files.

        Nothing the tenant stored can be decrypted afterwards, including copies of old files. Backups made
        with ``snapshot(dest)`` before the call still hold the wrapped keys: delete them too.

        Args:
            tenant: The tenant.
            idempotency_key: Names this call: a retry of a shred that succeeded (since the vault was
                opened) succeeds again instead of raising :class:`TenantNotFoundError`.

        Raises:
            TenantNotFoundError: Unknown tenant.
            InsufficientStorageError: The keyring could not be saved (nothing was shredded).
        """
        with self._snapshot_lock, self._lock:
            storage = self._open()
            if idempotency_key is not None and storage.dropped.get(idempotency_key) == tenant:
                return
            if not storage.keys.has_tenant(tenant):
                raise TenantNotFoundError(tenant)
            storage.drop_tenant(tenant, key=idempotency_key)
            self._cache.drop_tenant(tenant)

    # ----------------------------------------------------------------- reads
    def get(self, tenant: str, record_id: str) -> Record:
        """Fetch and decrypt one record (from the LRU when hot).

        Raises:
            TenantNotFoundError: Unknown tenant.
            RecordNotFoundError: No live record with this id.
            IntegrityError: The sealed record on disk was altered (the error names the file).
        """
        with self._lock:
            return self._record(self._open(), tenant, record_id)

    def search(
        self,
        tenant: str,
        query: str | NDArray[np.float32],
        *,
        k: int = 10,
        min_score: float | None = None,
        where: Mapping[str, JSONScalar] | None = None,
    ) -> list[SearchHit]:
        """Nearest records by cosine similarity, optionally thresholded and filtered on metadata.

        With ``where``, candidates are over-fetched (``k x config.index.filter_overfetch``, doubling until
        ``k`` matches are found or the tenant is exhausted).

        Args:
            tenant: Tenant to search.
            query: Text to embed, or a ``(dim,)`` float32 vector (normalised here).
            k: Results wanted (count, >= 1).
            min_score: Drop hits whose cosine similarity is below this value.
            where: Metadata equality filters; every key must be present with an equal value.

        Returns:
            Up to ``k`` hits, best first.

        Raises:
            TenantNotFoundError: Unknown tenant.
            EmptyTextError: ``query`` is an empty string.
            DimensionMismatchError: ``query`` is a vector of the wrong dimension.
            VaultInputError: Bad ``k``, ``min_score`` or ``where``.
        """
        check_k(k)
        filters = check_where(where)
        if min_score is not None and not (isinstance(min_score, int | float) and np.isfinite(min_score)):
            raise VaultInputError("min_score", f"must be a finite number, got {min_score!r}")
        if isinstance(query, str):
            if not query.strip():
                raise EmptyTextError(0)
            vector = embed_checked(self._embedder, [query], self._dim)[0]
        else:
            vector = check_vector(query, self._dim, "query")
        fetch = k * (self._config.index.filter_overfetch if filters else 1)
        with self._lock:
            storage = self._open()
            state = storage.tenants.get(tenant)
            if state is None:
                if not storage.keys.has_tenant(tenant):
                    raise TenantNotFoundError(tenant)
                return []
            while True:
                hits: list[SearchHit] = []
                below = False
                for score, record_id in state.candidates(vector, fetch):
                    if min_score is not None and score < min_score:
                        below = True
                        break
                    record = self._record(storage, tenant, record_id)
                    if filters and not matches(record.metadata, filters):
                        continue
                    hits.append(SearchHit(record=record, score=score))
                    if len(hits) == k:
                        return hits
                if below or fetch >= state.live:
                    return hits
                fetch *= 2

    def count(self, tenant: str) -> int:
        """Live records of a tenant (0 for an unknown tenant)."""
        with self._lock:
            state = self._open().tenants.get(tenant)
            return 0 if state is None else state.live

    def tenants(self) -> list[str]:
        """Tenants with a live data key, sorted."""
        with self._lock:
            return self._open().keys.tenants()

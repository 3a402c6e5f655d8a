"""How the :class:`~vault.store.Vault` reaches its storage: open-check, deadline-bounded lock, records.

A mixin, so that the facade (:mod:`vault.store`) keeps the public methods and this module the few steps
every one of them shares: refuse a closed vault, take the lock no longer than a deadline allows, check and
embed a batch before sealing, and read one record through the LRU.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from numpy.typing import NDArray

from vault._private.cache import RecordCache
from vault._private.storage import Storage
from vault._private.validate import check_deadline, sealable_batch
from vault.config import VaultConfig
from vault.embedding import Embedder
from vault.errors import RecordNotFoundError, TenantNotFoundError, VaultClosedError, VaultDeadlineError
from vault.records import NewRecord, Record

__all__ = ("StorageAccess",)


class StorageAccess:
    """Locked access to a vault's storage (mixed into :class:`~vault.store.Vault`).

    The vault sets these attributes in its ``__init__``; callers of :meth:`_record` hold the lock.
    """

    _config: VaultConfig
    _dim: int
    _embedder: Embedder
    _lock: threading.RLock
    _storage: Storage
    _cache: RecordCache
    _closed: bool

    def _open(self) -> Storage:
        if self._closed:
            raise VaultClosedError
        return self._storage

    @contextmanager
    def _locked(self, operation: str, deadline: float | None) -> Iterator[Storage]:
        """Hold the lock (waiting no longer than ``deadline``) on an open vault, still before ``deadline``."""
        wait = -1.0 if deadline is None else max(deadline - time.time(), 0.0)
        if not self._lock.acquire(timeout=wait):
            raise VaultDeadlineError(operation, time.time() - (deadline or 0.0))
        try:
            storage = self._open()
            check_deadline(operation, deadline)
            yield storage
        finally:
            self._lock.release()

    def _sealable(
        self, records: Sequence[NewRecord], idempotency_key: str | None, deadline: float | None
    ) -> tuple[list[str], list[tuple[str, bytes, NDArray[np.float32]]]]:
        """Check and embed a batch (see :func:`~vault._private.validate.sealable_batch`)."""
        return sealable_batch(
            records, idempotency_key, deadline, config=self._config, embedder=self._embedder, dim=self._dim
        )

    def _record(self, storage: Storage, tenant: str, record_id: str) -> Record:
        state = storage.tenants.get(tenant)
        if state is None:
            if not storage.keys.has_tenant(tenant):
                raise TenantNotFoundError(tenant)
            raise RecordNotFoundError(tenant, record_id)
        slot = state.slots.get(record_id)
        if slot is None:
            raise RecordNotFoundError(tenant, record_id)
        cached = self._cache.get(tenant, record_id)
        if cached is not None:
            return cached
        text, metadata, vector = storage.read_record(tenant, slot)
        record = Record(id=record_id, tenant=tenant, text=text, metadata=metadata, embedding=vector)
        self._cache.put(record)
        return record

"""The :class:`~vault.store.Vault`'s administration: key rotation, snapshots, compaction, restore, stats.

A mixin, so that the facade (:mod:`vault.store`) keeps the record reads and writes and this module the
calls an operator makes on the whole vault (each takes the snapshot lock before the vault lock where it
rewrites files).
"""

from __future__ import annotations

import os
from pathlib import Path

from vault._private.access import StorageAccess
from vault._private.background import BackgroundWork
from vault.records import VaultStats

__all__ = ("Administration",)


class Administration(StorageAccess, BackgroundWork):
    """Keys, snapshots, compaction, restore and counters (mixed into :class:`~vault.store.Vault`)."""

    # ----------------------------------------------------------------- keys
    def rotate_kek(self, new_kek: bytes | None = None) -> str:
        """Re-wrap every data key under a new key-encryption key; records are not rewritten.

        Args:
            new_kek: 32 new key bytes; ``None`` generates one (only for a KEK kept in a file).

        The previous KEK is kept, wrapped under the new one, so every earlier snapshot copy restores.

        Returns:
            Fingerprint of the new KEK (not the key).

        Raises:
            KeyEncryptionKeyError: ``new_kek`` has the wrong length, or is missing for an env-var KEK.
            VaultStorageError: The keyring or key file could not be written (the old KEK stays in force).
        """
        with self._lock:
            return self._open().keys.rotate_kek(new_kek)

    def rotate_data_key(self, tenant: str) -> int:
        """Give a tenant a new data key for new writes; older records keep decrypting with older keys.

        Returns:
            The new key version.

        Raises:
            TenantNotFoundError: Unknown tenant.
        """
        with self._lock:
            return self._open().keys.rotate_data_key(tenant)

    # ----------------------------------------------------------------- persistence
    def snapshot(self, dest: str | os.PathLike[str] | None = None) -> int:
        """Write an encrypted snapshot of every index and record map and start an empty WAL.

        Args:
            dest: Also copy the snapshot there (sealed files, keyring and manifest; never the KEK), to be
                used later with :meth:`restore`.

        Nothing new is written when nothing changed since the last snapshot (its generation is returned).

        Returns:
            The snapshot generation.

        Raises:
            VaultStorageError: A file could not be written (the previous snapshot stays in force).
        """
        with self._snapshot_lock, self._lock:
            storage = self._open()
            generation = storage.snapshot(force=storage.manifest.generation == 0)
            if dest is not None:
                storage.copy_to(Path(dest))
            return generation

    def compact(self) -> int:
        """Drop tombstones everywhere: rewrite segments, rebuild indexes, then snapshot.

        Returns:
            The snapshot generation.
        """
        with self._snapshot_lock, self._lock:
            return self._open().snapshot(compact=True)

    def restore(self, src: str | os.PathLike[str]) -> None:
        """Replace the vault's contents with a copy made by ``snapshot(dest)``.

        Tenants shredded after the copy was made come back; the copy must be wrapped under the current KEK.

        Raises:
            IntegrityError: ``src`` holds no valid snapshot, or one of its files is corrupted.
            KeyEncryptionKeyError: The copy's keyring was wrapped under another KEK.
        """
        with self._snapshot_lock, self._lock:
            storage = self._open()
            storage.restore_from(Path(src))
            self._cache.clear()
            self._schedule_builds(storage)

    def stats(self) -> VaultStats:
        """Counters: records, tombstones, cache hit ratio, WAL size, snapshot generation, index kinds."""
        with self._lock:
            return self._open().stats(self._cache)

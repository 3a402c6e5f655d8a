"""The log seam of a :class:`~vault.Vault`: writes sealed into log entries, entries applied from a log.

Embedded, a vault logs its own writes to its file WAL (:meth:`Vault.put_many` and friends). Replicated,
the log lives elsewhere (a replicated JetStream stream, see ``agents.storage``): a replica *seals* a write
into entries (bytes: the same checksummed frames the WAL holds, records already AES-256-GCM sealed),
appends them to the shared log, and every replica — the writer included — *applies* each message in
log order to its local vault, which records the message's sequence in its WAL and snapshots. The local
files are then a cache of the log: reopened, a vault knows :attr:`LogReplica.sequence` and the replica
consumes the log from the next message on.

A message is ``HMAC-SHA256 (32 bytes) | entries``, the MAC under a key derived from the KEK: only a
holder of the KEK (a Storage replica) can append a message that replicas apply. Unauthenticated
deletes or shreds would otherwise be accepted from anyone allowed to publish to the log.

The data keys must be the same on every replica, so in this mode a tenant's keys come from a shared
keyring too (e.g. a KV bucket with compare-and-set): :meth:`LogReplica.new_tenant_key` makes the
document to store there, :meth:`LogReplica.install_tenant_keys` installs the one stored, and sealing
never creates a key of its own. The KEK is the same on every replica (environment or mounted secret).

Thread-safe like the vault (its lock); synchronous: call it from a worker thread in async code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vault._private.sealing import InvalidTag, blob_key_version
from vault._private.validate import check_name
from vault._private.wal import OP_DELETE, OP_DONE, OP_DROP_TENANT, OP_PUT, WalEntry, decode_frames
from vault.errors import IntegrityError, RecordNotFoundError, TenantNotFoundError
from vault.records import NewRecord
from vault.store import Vault

__all__ = ("LogReplica", "SealedWrite")

_SOURCE = Path("<record log>")
_MAC_BYTES = 32


@dataclass(frozen=True, slots=True)
class SealedWrite:
    """A write sealed into log entries, not applied anywhere yet.

    Attributes:
        data: The message to append to the log: its MAC, then the entries (checksummed frames).
        result: What the call answers once applied (record ids of a put, the id of a delete).
        key_versions: Data-key versions the sealed records use.
    """

    data: bytes
    result: Any = None
    key_versions: frozenset[int] = field(default_factory=frozenset)


class LogReplica:
    """Seals writes into log entries and applies log messages to one vault.

    Args:
        vault: The open vault (its WAL keeps the applied entries and sequence).
    """

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        with vault._lock:  # keys this vault still makes on its own (e.g. sealing task records) stay apart
            vault._open().keys.reserve_local_versions()

    @property
    def sequence(self) -> int:
        """Sequence of the last log message applied (0: none)."""
        with self.vault._lock:
            return self.vault._open().log_sequence

    # ----------------------------------------------------------------- sealing
    def done(self, tenant: str, idempotency_key: str | None) -> Any:
        """The applied result of the call of ``tenant`` with ``idempotency_key``, or ``None``."""
        with self.vault._lock:
            return self.vault._open().done(tenant, idempotency_key)

    def shredded(self, tenant: str, idempotency_key: str) -> bool:
        """Whether a shred of ``tenant`` with ``idempotency_key`` was applied (since the vault was opened)."""
        with self.vault._lock:
            return self.vault._open().dropped.get(idempotency_key) == tenant

    def seal_put(
        self, tenant: str, records: Sequence[NewRecord], *, idempotency_key: str | None = None
    ) -> SealedWrite:
        """Check, embed and seal records under the tenant's active data key (see :meth:`Vault.put_many`).

        Returns:
            The entries (``PUT`` per record, ``DONE`` with the ids when keyed); ``result`` is the ids.

        Raises:
            TenantNotFoundError: The tenant has no data key here: install it first.
            VaultInputError: Bad input (as :meth:`Vault.put_many` raises it).
        """
        check_name(tenant, "tenant")
        if idempotency_key is not None:
            check_name(idempotency_key, "idempotency_key")
        ids, items = self.vault._sealable(records, idempotency_key, None)
        with self.vault._lock:
            storage = self.vault._open()
            entries, blobs = storage.seal(tenant, items, key=idempotency_key, result=ids, create_key=False)
        versions = frozenset(blob_key_version(b) for b in blobs)
        return SealedWrite(self._message(entries), ids, versions)

    def _message(self, entries: list[WalEntry]) -> bytes:
        frames = b"".join(e.encode() for e in entries)
        with self.vault._lock:
            return self.vault._open().keys.log_mac(frames) + frames

    def seal_delete(self, tenant: str, record_id: str, *, idempotency_key: str | None = None) -> SealedWrite:
        """The entries deleting one record that exists here.

        Raises:
            TenantNotFoundError: Unknown tenant.
            RecordNotFoundError: No live record with this id (here, up to :attr:`sequence`).
        """
        if idempotency_key is not None:
            check_name(idempotency_key, "idempotency_key")
        with self.vault._lock:
            storage = self.vault._open()
            state = storage.tenants.get(tenant)
            if state is None or record_id not in state.slots:
                if not storage.keys.has_tenant(tenant):
                    raise TenantNotFoundError(tenant)
                raise RecordNotFoundError(tenant, record_id)
        entries = [WalEntry(OP_DELETE, tenant, record_id)]
        if idempotency_key is not None:
            entries.append(WalEntry(OP_DONE, tenant, idempotency_key, json.dumps(record_id).encode()))
        return SealedWrite(self._message(entries), record_id)

    def seal_shred(self, tenant: str, *, idempotency_key: str | None = None) -> SealedWrite:
        """The entry crypto-shredding a tenant on every replica that applies it."""
        check_name(tenant, "tenant")
        return SealedWrite(self._message([WalEntry(OP_DROP_TENANT, tenant, idempotency_key or "")]), tenant)

    # ----------------------------------------------------------------- applying
    @staticmethod
    def key_versions(data: bytes) -> set[tuple[str, int]]:
        """``(tenant, data-key version)`` of every sealed record in a log message.

        Raises:
            IntegrityError: The message does not decode.
        """
        out = set()
        for entry in _decode(data):
            if entry.op == OP_PUT:
                try:
                    out.add((entry.tenant, blob_key_version(entry.blob)))
                except InvalidTag:
                    raise IntegrityError(_SOURCE, "log entry holds a truncated sealed record") from None
        return out

    def has_key(self, tenant: str, version: int) -> bool:
        """Whether the local keyring holds (or knows as shredded) this data-key version of ``tenant``."""
        with self.vault._lock:
            keys = self.vault._open().keys
            return keys.key(tenant, version) is not None or keys.is_destroyed(version)

    def apply(self, data: bytes, sequence: int) -> bool:
        """Apply one log message (a no-op for a sequence applied already).

        Args:
            data: The message (entries made by ``seal_*`` on any replica).
            sequence: Its sequence in the log (ascending; gaps allowed).

        Returns:
            Whether it was applied now.

        Raises:
            IntegrityError: The message is malformed, fails its MAC (not sealed by a holder of this KEK),
                or needs a data key this replica lacks.
            DecryptionError: A sealed record fails authentication.
            VaultStorageError: A write failed (the message is not applied).
        """
        return self._apply([(_decode(data), data, sequence)], strict=True) > 0

    def apply_many(self, messages: Sequence[tuple[bytes, int]]) -> list[tuple[int, str]]:
        """Apply messages ``(data, sequence)`` in order with one WAL write (one fsync) for all of them.

        A message that does not decode or fails its MAC is skipped (and returned); the others commit
        together. Use it to catch up with a backlog (one fsync per message bounds :meth:`apply` to the
        disk's fsync rate).

        Returns:
            ``(sequence, reason)`` of each skipped message.

        Raises:
            IntegrityError: A message needs a data key this replica lacks (nothing was applied).
            DecryptionError: A sealed record fails authentication (nothing was applied).
            VaultStorageError: A write failed (nothing was applied).
        """
        skipped: list[tuple[int, str]] = []
        decoded: list[tuple[list[WalEntry], bytes, int]] = []
        for data, sequence in messages:
            try:
                decoded.append((_decode(data), data, sequence))
            except IntegrityError as exc:
                skipped.append((sequence, exc.reason))
        self._apply(decoded, strict=False, skipped=skipped)
        return skipped

    def _apply(
        self,
        messages: list[tuple[list[WalEntry], bytes, int]],
        *,
        strict: bool,
        skipped: list[tuple[int, str]] | None = None,
    ) -> int:
        with self.vault._lock:
            storage = self.vault._open()
            entries: list[WalEntry] = []
            last = storage.log_sequence
            for message, data, sequence in messages:
                if sequence <= last:
                    continue
                if not storage.keys.check_log_mac(data[_MAC_BYTES:], data[:_MAC_BYTES]):
                    reason = f"message {sequence} fails its MAC (not sealed with this KEK)"
                    if strict:
                        raise IntegrityError(_SOURCE, reason)
                    if skipped is not None:
                        skipped.append((sequence, reason))
                    continue
                entries += message
                last = sequence
            if last == storage.log_sequence:
                return 0
            touched = storage.apply(entries, last, _SOURCE)
            for tenant, record_id in touched:
                self.vault._cache.discard(tenant, record_id)
            for entry in entries:
                if entry.op == OP_DROP_TENANT:
                    self.vault._cache.drop_tenant(entry.tenant)
            self.vault._schedule_builds(storage)
            self.vault._maybe_snapshot(storage)
        return len(entries) or 1

    # ----------------------------------------------------------------- shared keyring
    def tenant_keys(self, tenant: str) -> bytes | None:
        """The tenant's wrapped data keys as a shared-keyring document (JSON), or ``None``."""
        with self.vault._lock:
            doc = self.vault._open().keys.export_tenant(tenant)
        return None if doc is None else json.dumps(doc, sort_keys=True).encode()

    def new_tenant_key(self, tenant: str, version: int, current: bytes | None) -> bytes:
        """``current`` (a shared-keyring document, or ``None``) plus a new active key of ``version``.

        ``version`` must be unique across the replicas (e.g. from a counter in the shared keyring) and
        below ``2**31`` (keys a replica still creates on its own take versions from there on).
        Nothing is installed: store the document, then :meth:`install_tenant_keys` what was stored.

        Raises:
            KeyEncryptionKeyError: ``current`` was wrapped under another KEK.
            VaultInputError: ``version`` is out of range or used already.
        """
        check_name(tenant, "tenant")
        with self.vault._lock:
            doc = self.vault._open().keys.new_tenant_key(tenant, version, _parse(current))
        return json.dumps(doc, sort_keys=True).encode()

    def install_tenant_keys(self, tenant: str, document: bytes) -> None:
        """Install the tenant's keys from the shared keyring (saved to the local keyring as a cache).

        Raises:
            KeyEncryptionKeyError: The document was wrapped under another KEK.
            IntegrityError: The document is malformed or a key does not unwrap.
            VaultStorageError: The local keyring could not be saved.
        """
        doc = _parse(document)
        assert doc is not None
        with self.vault._lock:
            self.vault._open().keys.import_tenant(tenant, doc)

    def check_kek(self, document: bytes) -> None:
        """Check that a shared-keyring document was wrapped under this vault's KEK.

        Raises:
            KeyEncryptionKeyError: It was not ("give every replica the same KEK").
            IntegrityError: The document is not a keyring document.
        """
        doc = _parse(document)
        assert doc is not None
        with self.vault._lock:
            self.vault._open().keys.check_document(doc)

    def forget_key_versions(self, versions: set[int]) -> None:
        """Mark versions the shared keyring no longer holds as shredded (their records are skipped).

        Raises:
            VaultStorageError: The local keyring could not be saved.
        """
        with self.vault._lock:
            self.vault._open().keys.mark_destroyed(versions)


def _decode(data: bytes) -> list[WalEntry]:
    if len(data) <= _MAC_BYTES:
        raise IntegrityError(_SOURCE, f"message of {len(data)} bytes holds no entry")
    try:
        return decode_frames(data[_MAC_BYTES:])
    except ValueError as exc:
        raise IntegrityError(_SOURCE, str(exc)) from None


def _parse(document: bytes | None) -> dict[str, Any] | None:
    if document is None:
        return None
    try:
        doc = json.loads(document)
    except ValueError:
        raise IntegrityError(_SOURCE, "shared keyring document is not JSON") from None
    if not isinstance(doc, dict):
        raise IntegrityError(_SOURCE, "shared keyring document is not an object")
    return doc

"""The wrapped-key file: the KEK and every tenant's data keys, loaded from and saved to ``keyring.json``.

The key hierarchy is described in :mod:`vault._private.keyring`, whose
:class:`~vault._private.keyring.KeyRing` adds the documents of a keyring shared by replicas to this
:class:`KeyFile`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault._private.files import atomic_write, fsync_dir
from vault._private.kek import KEY_BYTES, KekSource, decode_kek, resolve_kek, write_key_file
from vault._private.keywrap import (
    FORMAT,
    KEYRING_NAME,
    kek_aad,
    kek_id,
    mac_key,
    read_document,
    unwrap,
    wrap,
    wrap_aad,
)
from vault.config import KeyConfig
from vault.errors import (
    DecryptionError,
    IntegrityError,
    KeyEncryptionKeyError,
    TenantNotFoundError,
)

__all__ = ("KeyFile",)


class KeyFile:
    """The KEK and the unwrapped data keys of every tenant, persisted as ``keyring.json`` (a file of keys).

    Not thread-safe on its own: the vault calls it under its lock.
    """

    def __init__(self, path: Path, kek: bytes, source: KekSource, vault_id: str) -> None:
        self.path = path
        self.vault_id = vault_id
        self._kek = kek
        self._source = source
        self._next_version = 1
        self._destroyed: set[int] = set()
        self._active: dict[str, int] = {}
        self._wrapped: dict[str, dict[int, bytes]] = {}
        self._keys: dict[int, tuple[str, bytes]] = {}
        self._previous: dict[str, bytes] = {}

    # ----------------------------------------------------------------- loading
    @classmethod
    def open(cls, data_dir: Path, config: KeyConfig) -> Self:
        """Resolve the KEK and load the keyring, or create both for a new vault.

        Raises:
            KeyEncryptionKeyError: KEK malformed, missing, inside the data directory (unless allowed), or
                it does not match the keyring on disk.
            IntegrityError: ``keyring.json`` is corrupted or its HMAC does not verify (names the file and,
                where it can, the byte offset of the damaged entry).
            VaultStorageError: A new keyring or key file cannot be written.
        """
        path = data_dir / KEYRING_NAME
        doc = raw = None
        if path.exists():
            doc, raw = read_document(path)
        if doc is None:
            vault_id = secrets.token_hex(8)
        else:  # a keyring written before vault ids: a stable name from its KEK fingerprint
            vault_id = str(doc["body"].get("vault_id") or f"legacy-{doc['body'].get('kek_id')}")
        kek, source = resolve_kek(data_dir, config, vault_id, existing=doc is not None)
        ring = cls(path, kek, source, vault_id)
        if doc is not None and raw is not None:
            ring._load(doc, raw)
        else:
            ring._save()
        return ring

    @classmethod
    def open_copy(cls, path: Path, current: KeyFile) -> Self:
        """Open a keyring file of a snapshot copy with ``current``'s KEK or one of its earlier KEKs.

        Raises:
            KeyEncryptionKeyError: The copy was wrapped under a KEK this vault never had.
            IntegrityError: The file is missing, corrupted, or its HMAC does not verify.
        """
        if not path.exists():
            raise IntegrityError(path, "keyring file is missing")
        doc, raw = read_document(path)
        wanted = doc["body"].get("kek_id")
        known = {kek_id(current._kek): current._kek, **current._previous}
        kek = known.get(str(wanted))
        if kek is None:
            raise KeyEncryptionKeyError(
                current._source.name, f"{path} was wrapped under KEK {wanted}, which this vault never had"
            )
        ring = cls(path, kek, current._source, str(doc["body"].get("vault_id") or current.vault_id))
        ring._load(doc, raw)
        return ring

    def _load(self, doc: dict[str, Any], raw: bytes) -> None:
        body = doc["body"]
        try:
            mac = bytes.fromhex(doc["mac"])
        except ValueError:
            raise IntegrityError(self.path, "keyring mac is not hex", raw.find(b'"mac"')) from None
        if body.get("kek_id") != kek_id(self._kek) and not self._finish_pending_rotation(body):
            if self._first_bad_entry(body, raw) is None and self._any_entry_unwraps(body):
                raise IntegrityError(self.path, "kek_id field damaged", raw.find(b'"kek_id"'))
            raise KeyEncryptionKeyError(self._source.name, f"does not match the key that wrapped {self.path}")
        if not hmac.compare_digest(mac, self._mac(body)):
            bad = self._first_bad_entry(body, raw)
            if bad is not None:
                raise IntegrityError(self.path, f"{bad[0]} does not unwrap (wrapped key damaged)", bad[1])
            raise IntegrityError(self.path, "keyring HMAC does not verify (file altered)")
        try:
            self._next_version = int(body["next_version"])
            self._destroyed = {int(v) for v in body["destroyed"]}
            for tenant, entry in body["tenants"].items():
                self._active[tenant] = int(entry["active"])
                self._wrapped[tenant] = {int(v): base64.b64decode(w) for v, w in entry["keys"].items()}
            previous = {str(k): base64.b64decode(w) for k, w in body.get("previous_keks", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IntegrityError(self.path, f"keyring body malformed: {exc}") from None
        for tenant, keys in self._wrapped.items():
            for version, wrapped in keys.items():
                key = unwrap(self._kek, wrapped, wrap_aad(tenant, version))
                if key is None:
                    raise DecryptionError(self.path, f"data key {version} does not unwrap")
                self._keys[version] = (tenant, key)
        for old_id, wrapped in previous.items():
            old = unwrap(self._kek, wrapped, kek_aad(old_id))
            if old is None:
                raise DecryptionError(self.path, f"earlier KEK {old_id} does not unwrap")
            self._previous[old_id] = old

    def _entries(self, body: dict[str, Any]) -> Iterator[tuple[str, bytes, str, bytes]]:
        """``(label, wrapped, base64 text, aad)`` of every wrapped key in ``body`` (skips malformed)."""
        tenants = body.get("tenants")
        if isinstance(tenants, dict):
            for tenant, entry in tenants.items():
                keys = entry.get("keys") if isinstance(entry, dict) else None
                for version, text in (keys or {}).items():
                    try:
                        wrapped = base64.b64decode(text)
                        aad = wrap_aad(str(tenant), int(version))
                    except (ValueError, TypeError):
                        wrapped, aad = b"", b""
                    yield f"data key {version}", wrapped, str(text), aad

    def _first_bad_entry(self, body: dict[str, Any], raw: bytes) -> tuple[str, int] | None:
        """The first wrapped key that does not unwrap under the KEK, with its byte offset in ``raw``."""
        for label, wrapped, text, aad in self._entries(body):
            if unwrap(self._kek, wrapped, aad) is None:
                return label, raw.find(text.encode()) if text else -1
        return None

    def _any_entry_unwraps(self, body: dict[str, Any]) -> bool:
        return any(unwrap(self._kek, w, aad) is not None for _, w, _, aad in self._entries(body))

    def _finish_pending_rotation(self, body: dict[str, Any]) -> bool:
        """Complete a KEK-file rotation that crashed between writing the keyring and renaming the file."""
        file = self._source.file
        pending = file.with_name(file.name + ".next") if file else None
        if file is None or pending is None or not pending.exists():
            return False
        candidate = decode_kek(pending.read_text(), str(pending))
        if kek_id(candidate) != body.get("kek_id"):
            return False
        self._previous.setdefault(kek_id(self._kek), self._kek)
        os.replace(pending, file)
        fsync_dir(file.parent)
        self._kek = candidate
        return True

    def _mac(self, body: dict[str, Any]) -> bytes:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(mac_key(self._kek), canonical, hashlib.sha256).digest()

    def _body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "vault_id": self.vault_id,
            "kek_id": kek_id(self._kek),
            "next_version": self._next_version,
            "destroyed": sorted(self._destroyed),
            "tenants": {
                tenant: {
                    "active": self._active[tenant],
                    "keys": {str(v): base64.b64encode(w).decode() for v, w in sorted(keys.items())},
                }
                for tenant, keys in sorted(self._wrapped.items())
            },
            "previous_keks": {
                old_id: base64.b64encode(wrap(self._kek, old, kek_aad(old_id))).decode()
                for old_id, old in sorted(self._previous.items())
            },
        }

    def _save(self, path: Path | None = None) -> None:
        body = self._body()
        doc = {"body": body, "mac": self._mac(body).hex()}
        atomic_write(path or self.path, json.dumps(doc, indent=1).encode())

    @contextmanager
    def _change(self) -> Iterator[None]:
        """Apply a change in memory, then save it; on any failure restore the state before the change."""
        before = (
            self._kek,
            self._next_version,
            set(self._destroyed),
            dict(self._active),
            {t: dict(k) for t, k in self._wrapped.items()},
            dict(self._keys),
            dict(self._previous),
        )
        try:
            yield
            self._save()
        except BaseException:
            (
                self._kek,
                self._next_version,
                self._destroyed,
                self._active,
                self._wrapped,
                self._keys,
                self._previous,
            ) = before
            raise

    # ----------------------------------------------------------------- queries
    @property
    def kek_file(self) -> Path | None:
        """The file the KEK is read from (``None`` for a KEK from the environment)."""
        return self._source.file

    def tenants(self) -> list[str]:
        """Tenants that have a live data key."""
        return sorted(self._active)

    def has_tenant(self, tenant: str) -> bool:
        """Whether the tenant has a live data key."""
        return tenant in self._active

    def is_destroyed(self, version: int) -> bool:
        """Whether a data-key version belonged to a crypto-shredded tenant."""
        return version in self._destroyed

    def key(self, tenant: str, version: int) -> bytes | None:
        """The data key of ``tenant`` with this version, or ``None`` if there is none."""
        found = self._keys.get(version)
        if found is None or found[0] != tenant:
            return None
        return found[1]

    def active(self, tenant: str, *, create: bool) -> tuple[int, bytes]:
        """The tenant's active ``(version, data key)``; creates one and saves it first when asked.

        Raises:
            TenantNotFoundError: The tenant has no key and ``create`` is false.
            VaultStorageError: The new key could not be saved (it is forgotten again).
        """
        version = self._active.get(tenant)
        if version is None:
            if not create:
                raise TenantNotFoundError(tenant)
            with self._change():
                version = self._new_key(tenant)
        return version, self._keys[version][1]

    def wrapped_keys(self) -> dict[str, dict[int, bytes]]:
        """Copy of the wrapped data keys per tenant (for inspection and tests)."""
        return {t: dict(keys) for t, keys in self._wrapped.items()}

    def previous_kek_ids(self) -> list[str]:
        """Fingerprints of the earlier KEKs this keyring keeps (wrapped under the current one)."""
        return sorted(self._previous)

    # ----------------------------------------------------------------- changes
    def _new_key(self, tenant: str) -> int:
        version = self._next_version
        self._next_version += 1
        key = AESGCM.generate_key(bit_length=256)
        self._wrapped.setdefault(tenant, {})[version] = wrap(self._kek, key, wrap_aad(tenant, version))
        self._keys[version] = (tenant, key)
        self._active[tenant] = version
        return version

    def rotate_data_key(self, tenant: str) -> int:
        """Give the tenant a new active data key; older versions stay to decrypt older records.

        Raises:
            TenantNotFoundError: The tenant has no data key.
            VaultStorageError: The keyring could not be saved (nothing changed).
        """
        if tenant not in self._active:
            raise TenantNotFoundError(tenant)
        with self._change():
            version = self._new_key(tenant)
        return version

    def rotate_kek(self, new_kek: bytes | None) -> str:
        """Re-wrap every data key (and every earlier KEK) under a new KEK; records are not rewritten.

        The old KEK is kept, wrapped under the new one, so snapshot copies taken before still restore.
        For a file KEK the new key is written to ``<file>.next``, the keyring is rewritten, then the file
        is renamed over the old one (a crash in between is completed on the next open). For an env KEK the
        caller must supply ``new_kek`` and update the variable before the next open.

        Returns:
            Fingerprint (``kek_id``) of the new KEK.

        Raises:
            KeyEncryptionKeyError: ``new_kek`` is not 32 bytes, or missing for an env-var KEK.
            VaultStorageError: The keyring or the new key file could not be written (nothing changed).
        """
        file = self._source.file
        if new_kek is None:
            if file is None:
                raise KeyEncryptionKeyError(
                    self._source.name, "an env-var KEK can only rotate to a given key"
                )
            new_kek = os.urandom(KEY_BYTES)
        if len(new_kek) != KEY_BYTES:
            raise KeyEncryptionKeyError("rotate_kek(new_kek)", f"must be {KEY_BYTES} bytes")
        pending = None
        if file is not None:
            pending = file.with_name(file.name + ".next")
            pending.unlink(missing_ok=True)
            write_key_file(pending, new_kek)
        try:
            with self._change():
                self._previous[kek_id(self._kek)] = self._kek
                self._previous.pop(kek_id(new_kek), None)
                for tenant, keys in self._wrapped.items():
                    for version in keys:
                        keys[version] = wrap(new_kek, self._keys[version][1], wrap_aad(tenant, version))
                self._kek = new_kek
        except BaseException:
            if pending is not None:
                pending.unlink(missing_ok=True)
            raise
        if pending is not None and file is not None:
            os.replace(pending, file)
            fsync_dir(file.parent)
        return kek_id(new_kek)

    def destroy_tenant(self, tenant: str) -> None:
        """Crypto-shred: forget and persistently delete every data key of the tenant (idempotent).

        Raises:
            VaultStorageError: The keyring could not be saved (the keys are kept).
        """
        with self._change():
            versions = self._wrapped.pop(tenant, {})
            self._active.pop(tenant, None)
            for version in versions:
                self._keys.pop(version, None)
                self._destroyed.add(version)

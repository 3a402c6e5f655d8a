"""Key hierarchy: a key-encryption key (KEK) wraps per-tenant AES-256 data keys.

* The KEK (32 bytes) comes from an environment variable (base64), a configured key file (e.g. a mounted
  secret), or by default a per-vault key file under the user's configuration directory (see
  :mod:`vault._private.kek`), never from inside the data directory unless the configuration allows it.
* ``keyring.json`` holds the vault's id, per tenant its data keys wrapped with AES-256-GCM under the KEK
  (associated data binds tenant and key version), the active version, a global version counter (versions
  are never reused, so a shredded tenant's blobs can never meet a new key of the same version), the list
  of destroyed versions, every earlier KEK wrapped under the current one (so copies taken before a
  rotation still open) and an HMAC-SHA256 of the whole file under a key derived from the KEK.
* KEK rotation re-wraps every data key and rewrites only ``keyring.json``; records are untouched.
* Every change is saved before it is used, and undone in memory when the save fails (a full disk): a new
  data key never seals anything before it is durably on disk.
* Crypto-shredding deletes a tenant's wrapped keys: its sealed records can no longer be decrypted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault._private.keyfile import KeyFile
from vault._private.keywrap import (
    KEYRING_NAME,
    LOCAL_VERSIONS_FROM,
    kek_id,
    log_key,
    read_document,
    salvage_keys,
    unwrap,
    wrap,
    wrap_aad,
)
from vault.errors import (
    IntegrityError,
    KeyEncryptionKeyError,
    VaultInputError,
)

__all__ = ("KEYRING_NAME", "LOCAL_VERSIONS_FROM", "KeyRing", "kek_id", "read_document", "salvage_keys")


class KeyRing(KeyFile):
    """The KEK and the unwrapped data keys of every tenant, persisted as ``keyring.json``.

    The file itself is :class:`~vault._private.keyfile.KeyFile`; this adds the per-tenant documents of a
    keyring shared by replicas (:mod:`vault.log`) and the MAC of the record log.

    Not thread-safe on its own: the vault calls it under its lock.
    """

    # ----------------------------------------------------------------- a keyring shared by replicas
    def export_tenant(self, tenant: str) -> dict[str, Any] | None:
        """The tenant's wrapped data keys as a shared keyring holds them, or ``None`` without any.

        Returns:
            ``{"kek_id": str, "active": int, "keys": {"<version>": base64 wrapped key}}``.
        """
        if tenant not in self._active:
            return None
        return {
            "kek_id": kek_id(self._kek),
            "active": self._active[tenant],
            "keys": {str(v): base64.b64encode(w).decode() for v, w in sorted(self._wrapped[tenant].items())},
        }

    def new_tenant_key(self, tenant: str, version: int, current: dict[str, Any] | None) -> dict[str, Any]:
        """``current`` (a document of :meth:`export_tenant`) plus a new active data key of ``version``.

        Nothing is installed here: the caller first stores the document in the shared keyring
        (compare-and-set), then installs the winner with :meth:`import_tenant`.

        Raises:
            KeyEncryptionKeyError: ``current`` was wrapped under another KEK.
            VaultInputError: ``version`` is not in ``1 .. 2**31 - 1`` or is already used.
        """
        if not 0 < version < LOCAL_VERSIONS_FROM or version in self._keys or version in self._destroyed:
            raise VaultInputError("key_version", f"{version} is out of range or used already")
        doc = self._check_doc(current) if current is not None else {"keys": {}}
        key = AESGCM.generate_key(bit_length=256)
        wrapped = base64.b64encode(wrap(self._kek, key, wrap_aad(tenant, version))).decode()
        return {
            "kek_id": kek_id(self._kek),
            "active": version,
            "keys": {**doc["keys"], str(version): wrapped},
        }

    def check_document(self, doc: dict[str, Any]) -> None:
        """Raise :class:`KeyEncryptionKeyError` unless ``doc`` was wrapped under this ring's KEK."""
        self._check_doc(doc)

    def _check_doc(self, doc: dict[str, Any]) -> dict[str, Any]:
        if doc.get("kek_id") != kek_id(self._kek):
            raise KeyEncryptionKeyError(
                self._source.name,
                f"the shared keyring was wrapped under KEK {doc.get('kek_id')}, this replica has "
                f"{kek_id(self._kek)}: give every replica the same KEK",
            )
        return doc

    def import_tenant(self, tenant: str, doc: dict[str, Any]) -> None:
        """Install the tenant's keys from a shared keyring document (replacing its local keys); saved.

        Versions shredded here stay destroyed.

        Raises:
            KeyEncryptionKeyError: The document was wrapped under another KEK.
            IntegrityError: The document is malformed or a key does not unwrap.
            VaultStorageError: The local keyring could not be saved (nothing changed).
        """
        self._check_doc(doc)
        try:
            active = int(doc["active"])
            wrapped = {int(v): base64.b64decode(w) for v, w in doc["keys"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IntegrityError(self.path, f"shared keyring entry of {tenant!r} malformed: {exc}") from None
        keys = {}
        for version, blob in wrapped.items():
            key = unwrap(self._kek, blob, wrap_aad(tenant, version))
            if key is None:
                raise IntegrityError(self.path, f"shared data key {version} of {tenant!r} does not unwrap")
            keys[version] = key
        live = {v: k for v, k in keys.items() if v not in self._destroyed}
        clash = sorted(v for v in live if v in self._keys and self._keys[v][0] != tenant)
        if clash:
            raise IntegrityError(
                self.path, f"shared data key {clash[0]} of {tenant!r} has the version of another tenant's key"
            )
        if active not in live:
            raise IntegrityError(self.path, f"shared keyring entry of {tenant!r} has no live active key")
        with self._change():
            for version in self._wrapped.pop(tenant, {}):
                self._keys.pop(version, None)
            self._wrapped[tenant] = {v: wrapped[v] for v in live}
            self._keys.update({v: (tenant, k) for v, k in live.items()})
            self._active[tenant] = active
            self._next_version = max(self._next_version, max(live) + 1, LOCAL_VERSIONS_FROM)

    def reserve_local_versions(self) -> None:
        """Make keys created here (not from the shared keyring) take versions from ``2**31`` on.

        Shared versions come from the cluster's counter, below that, so the two never meet.

        Raises:
            VaultStorageError: The keyring could not be saved (nothing changed).
        """
        if self._next_version < LOCAL_VERSIONS_FROM:
            with self._change():
                self._next_version = LOCAL_VERSIONS_FROM

    def log_mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of a record-log message under a key derived from the KEK (32 bytes)."""
        return hmac.new(log_key(self._kek), data, hashlib.sha256).digest()

    def check_log_mac(self, data: bytes, mac: bytes) -> bool:
        """Whether ``mac`` authenticates ``data`` under the current KEK or an earlier one it keeps."""
        return any(
            hmac.compare_digest(hmac.new(log_key(k), data, hashlib.sha256).digest(), mac)
            for k in (self._kek, *self._previous.values())
        )

    def mark_destroyed(self, versions: set[int]) -> None:
        """Record versions the shared keyring no longer holds (their tenant was shredded); saved.

        Raises:
            VaultStorageError: The local keyring could not be saved (nothing changed).
        """
        if versions - self._destroyed:
            with self._change():
                self._destroyed |= versions

    def adopt(self, copy: KeyRing) -> None:
        """Take the data keys of a snapshot copy's keyring, wrapped under this ring's (current) KEK.

        Versions stay unique: the counter continues past both rings, and versions this vault destroyed
        stay destroyed unless the copy holds them (a restore brings back tenants shredded since).

        Raises:
            VaultStorageError: The keyring could not be saved (nothing changed).
        """
        with self._change():
            live = {v for keys in copy._wrapped.values() for v in keys}
            self._destroyed = (self._destroyed - live) | copy._destroyed
            self._next_version = max(self._next_version, copy._next_version)
            self._active = dict(copy._active)
            self._keys = dict(copy._keys)
            self._wrapped = {
                tenant: {v: wrap(self._kek, copy._keys[v][1], wrap_aad(tenant, v)) for v in keys}
                for tenant, keys in copy._wrapped.items()
            }
            earlier = {**copy._previous, kek_id(copy._kek): copy._kek, **self._previous}
            earlier.pop(kek_id(self._kek), None)
            self._previous = earlier

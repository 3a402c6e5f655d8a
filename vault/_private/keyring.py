"""Key hierarchy: a key-encryption key (KEK) wraps per-tenant AES-256 data keys.

* The KEK (32 bytes) comes from an environment variable (base64) or a key file created with mode 0600 on
  first run. It is never logged and never written anywhere else.
* ``keyring.json`` holds, per tenant, its data keys wrapped with AES-256-GCM under the KEK (associated data
  binds tenant and key version), the active version, a global version counter (versions are never
  reused, so a shredded tenant's blobs can never meet a new key of the same version), the list of
  destroyed versions and an HMAC-SHA256 of the whole file under a key derived from the KEK.
* KEK rotation re-wraps every data key and rewrites only ``keyring.json``; records are untouched.
* Crypto-shredding deletes a tenant's wrapped keys: its sealed records can no longer be decrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault._private.files import atomic_write, fsync_dir
from vault.config import KeyConfig
from vault.errors import DecryptionError, IntegrityError, KeyEncryptionKeyError, TenantNotFoundError

__all__ = ("KeyRing", "kek_id")

KEY_BYTES = 32
_FORMAT = 1


def kek_id(kek: bytes) -> str:
    """Public fingerprint of a KEK (HMAC of a constant; reveals nothing about the key)."""
    return hmac.new(kek, b"svault/kek-id/v1", hashlib.sha256).hexdigest()[:16]


def _mac_key(kek: bytes) -> bytes:
    return hmac.new(kek, b"svault/keyring-mac/v1", hashlib.sha256).digest()


def _wrap_aad(tenant: str, version: int) -> bytes:
    return b"svault/data-key/v1\x00" + tenant.encode() + b"\x00" + str(version).encode()


def _decode_kek(text: str, source: str) -> bytes:
    try:
        kek = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyEncryptionKeyError(source, "not valid base64") from None
    if len(kek) != KEY_BYTES:
        raise KeyEncryptionKeyError(source, f"decodes to {len(kek)} bytes, expected {KEY_BYTES}")
    return kek


def _write_key_file(path: Path, kek: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(kek) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


class KeyRing:
    """The KEK and the unwrapped data keys of every tenant, persisted as ``keyring.json``.

    Not thread-safe on its own: the vault calls it under its lock.
    """

    def __init__(self, path: Path, kek: bytes, kek_source: str, kek_file: Path | None) -> None:
        self.path = path
        self._kek = kek
        self._kek_source = kek_source
        self._kek_file = kek_file
        self._next_version = 1
        self._destroyed: set[int] = set()
        self._active: dict[str, int] = {}
        self._wrapped: dict[str, dict[int, bytes]] = {}
        self._keys: dict[int, tuple[str, bytes]] = {}

    # ----------------------------------------------------------------- loading
    @classmethod
    def open(cls, data_dir: Path, config: KeyConfig) -> KeyRing:
        """Resolve the KEK (env, else file, else generate the file) and load or create the keyring.

        Raises:
            KeyEncryptionKeyError: KEK malformed, or it does not match the keyring on disk.
            IntegrityError: ``keyring.json`` is corrupted or its HMAC does not verify.
        """
        path = data_dir / "keyring.json"
        env_value = os.environ.get(config.kek_env)
        kek_file = config.kek_file or data_dir / "kek.key"
        if env_value:
            kek, source, file = _decode_kek(env_value, f"env:{config.kek_env}"), f"env:{config.kek_env}", None
        else:
            source, file = str(kek_file), kek_file
            if kek_file.exists():
                kek = _decode_kek(kek_file.read_text(), source)
            else:
                kek = os.urandom(KEY_BYTES)
                kek_file.parent.mkdir(parents=True, exist_ok=True)
                _write_key_file(kek_file, kek)
        ring = cls(path, kek, source, file)
        if path.exists():
            ring._load()
        else:
            ring._save()
        return ring

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_bytes())
            body, mac = doc["body"], bytes.fromhex(doc["mac"])
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(self.path, "not a valid keyring file") from None
        if body.get("kek_id") != kek_id(self._kek):
            self._finish_pending_rotation(body.get("kek_id"))
        if not hmac.compare_digest(mac, self._mac(body)):
            raise IntegrityError(self.path, "keyring HMAC does not verify (file altered)")
        self._next_version = int(body["next_version"])
        self._destroyed = {int(v) for v in body["destroyed"]}
        for tenant, entry in body["tenants"].items():
            self._active[tenant] = int(entry["active"])
            self._wrapped[tenant] = {int(v): base64.b64decode(w) for v, w in entry["keys"].items()}
            for version, wrapped in self._wrapped[tenant].items():
                self._keys[version] = (tenant, self._unwrap(tenant, version, wrapped))

    @classmethod
    def check_file(cls, path: Path, current: KeyRing) -> None:
        """Verify that a keyring file (e.g. in a backup) opens with ``current``'s KEK.

        Raises:
            KeyEncryptionKeyError: It was wrapped under another KEK.
            IntegrityError: It is corrupted or its HMAC does not verify.
        """
        if not path.exists():
            raise IntegrityError(path, "keyring file is missing")
        cls(path, current._kek, current._kek_source, None)._load()

    def _finish_pending_rotation(self, wanted: object) -> None:
        """Complete a KEK-file rotation that crashed between writing the keyring and renaming the file."""
        pending = self._kek_file.with_name(self._kek_file.name + ".next") if self._kek_file else None
        if pending is not None and self._kek_file is not None and pending.exists():
            candidate = _decode_kek(pending.read_text(), str(pending))
            if kek_id(candidate) == wanted:
                os.replace(pending, self._kek_file)
                fsync_dir(self._kek_file.parent)
                self._kek = candidate
                return
        raise KeyEncryptionKeyError(self._kek_source, f"does not match the key that wrapped {self.path}")

    def _mac(self, body: dict[str, Any]) -> bytes:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(_mac_key(self._kek), canonical, hashlib.sha256).digest()

    def _unwrap(self, tenant: str, version: int, wrapped: bytes) -> bytes:
        try:
            return AESGCM(self._kek).decrypt(wrapped[:12], wrapped[12:], _wrap_aad(tenant, version))
        except InvalidTag:
            raise DecryptionError(self.path, f"data key {version} of a tenant does not unwrap") from None

    def _wrap(self, kek: bytes, tenant: str, version: int, key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(kek).encrypt(nonce, key, _wrap_aad(tenant, version))

    def _body(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
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
        }

    def _save(self) -> None:
        body = self._body()
        doc = {"body": body, "mac": self._mac(body).hex()}
        atomic_write(self.path, json.dumps(doc, indent=1).encode())

    # ----------------------------------------------------------------- queries
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
        """The tenant's active ``(version, data key)``; creates (and persists) one when asked.

        Raises:
            TenantNotFoundError: The tenant has no key and ``create`` is false.
        """
        version = self._active.get(tenant)
        if version is None:
            if not create:
                raise TenantNotFoundError(tenant)
            version = self._new_key(tenant)
            self._save()
        return version, self._keys[version][1]

    def wrapped_keys(self) -> dict[str, dict[int, bytes]]:
        """Copy of the wrapped data keys per tenant (for inspection and tests)."""
        return {t: dict(keys) for t, keys in self._wrapped.items()}

    # ----------------------------------------------------------------- changes
    def _new_key(self, tenant: str) -> int:
        version = self._next_version
        self._next_version += 1
        key = AESGCM.generate_key(bit_length=256)
        self._wrapped.setdefault(tenant, {})[version] = self._wrap(self._kek, tenant, version, key)
        self._keys[version] = (tenant, key)
        self._active[tenant] = version
        return version

    def rotate_data_key(self, tenant: str) -> int:
        """Give the tenant a new active data key; older versions stay to decrypt older records.

        Raises:
            TenantNotFoundError: The tenant has no data key.
        """
        if tenant not in self._active:
            raise TenantNotFoundError(tenant)
        version = self._new_key(tenant)
        self._save()
        return version

    def rotate_kek(self, new_kek: bytes | None) -> str:
        """Re-wrap every data key under a new KEK; records are not rewritten.

        For a file KEK the new key is written to ``<file>.next``, the keyring is rewritten, then the file
        is renamed over the old one (a crash in between is completed on the next open). For an env KEK the
        caller must supply ``new_kek`` and update the variable before the next open.

        Returns:
            Fingerprint (``kek_id``) of the new KEK.

        Raises:
            KeyEncryptionKeyError: ``new_kek`` is not 32 bytes, or missing for an env-var KEK.
        """
        if new_kek is None:
            if self._kek_file is None:
                raise KeyEncryptionKeyError(self._kek_source, "an env-var KEK can only rotate to a given key")
            new_kek = os.urandom(KEY_BYTES)
        if len(new_kek) != KEY_BYTES:
            raise KeyEncryptionKeyError("rotate_kek(new_kek)", f"must be {KEY_BYTES} bytes")
        pending = None
        if self._kek_file is not None:
            pending = self._kek_file.with_name(self._kek_file.name + ".next")
            pending.unlink(missing_ok=True)
            _write_key_file(pending, new_kek)
        for tenant, keys in self._wrapped.items():
            for version in keys:
                keys[version] = self._wrap(new_kek, tenant, version, self._keys[version][1])
        self._kek = new_kek
        self._save()
        if pending is not None and self._kek_file is not None:
            os.replace(pending, self._kek_file)
            fsync_dir(self._kek_file.parent)
        return kek_id(new_kek)

    def destroy_tenant(self, tenant: str) -> None:
        """Crypto-shred: forget and persistently delete every data key of the tenant (idempotent)."""
        versions = self._wrapped.pop(tenant, {})
        self._active.pop(tenant, None)
        for version in versions:
            self._keys.pop(version, None)
            self._destroyed.add(version)
        self._save()

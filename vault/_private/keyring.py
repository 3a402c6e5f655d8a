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
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault._private.files import atomic_write, fsync_dir
from vault._private.kek import KEY_BYTES, KekSource, decode_kek, resolve_kek, write_key_file
from vault.config import KeyConfig
from vault.errors import (
    DecryptionError,
    IntegrityError,
    KeyEncryptionKeyError,
    TenantNotFoundError,
    VaultInputError,
)

__all__ = ("KEYRING_NAME", "LOCAL_VERSIONS_FROM", "KeyRing", "kek_id", "read_document", "salvage_keys")

KEYRING_NAME = "keyring.json"
LOCAL_VERSIONS_FROM = 2**31
"""First data-key version of keys a replicated vault creates on its own (see ``reserve_local_versions``)."""
_FORMAT = 2


def kek_id(kek: bytes) -> str:
    """Public fingerprint of a KEK (HMAC of a constant; reveals nothing about the key)."""
    return hmac.new(kek, b"svault/kek-id/v1", hashlib.sha256).hexdigest()[:16]


def _mac_key(kek: bytes) -> bytes:
    return hmac.new(kek, b"svault/keyring-mac/v1", hashlib.sha256).digest()


def _log_key(kek: bytes) -> bytes:
    return hmac.new(kek, b"svault/record-log-mac/v1", hashlib.sha256).digest()


def _wrap_aad(tenant: str, version: int) -> bytes:
    return b"svault/data-key/v1\x00" + tenant.encode() + b"\x00" + str(version).encode()


def _kek_aad(old_id: str) -> bytes:
    return b"svault/previous-kek/v1\x00" + old_id.encode()


def _wrap(kek: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, plaintext, aad)


def _unwrap(kek: bytes, wrapped: bytes, aad: bytes) -> bytes | None:
    try:
        return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)
    except (InvalidTag, ValueError):
        return None


def read_document(path: Path) -> tuple[dict[str, Any], bytes]:
    """The parsed keyring document and its raw bytes.

    Raises:
        IntegrityError: The file is not a keyring (names the byte where JSON parsing failed).
    """
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise IntegrityError(path, f"keyring is not valid JSON: {exc.msg}", exc.pos) from None
    except ValueError as exc:
        raise IntegrityError(path, f"keyring is not valid JSON: {exc}") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("body"), dict)
        or not isinstance(doc.get("mac"), str)
    ):
        raise IntegrityError(path, "not a keyring file (body or mac missing)")
    return doc, raw


def salvage_keys(
    doc: dict[str, Any], raw: bytes, kek: bytes, path: Path
) -> tuple[dict[int, tuple[str, bytes]], list[tuple[int | None, str]]]:
    """Every data key of a keyring document that still unwraps under ``kek``, ignoring its HMAC.

    Returns:
        ``version → (tenant, data key)``, and ``(offset, reason)`` for each key or check that failed.
    """
    problems: list[tuple[int | None, str]] = []
    body = doc["body"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    mac = hmac.new(_mac_key(kek), canonical, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, str(doc.get("mac"))):
        problems.append((None, "keyring HMAC does not verify (file altered); keeping the keys that unwrap"))
    found: dict[int, tuple[str, bytes]] = {}
    tenants = body.get("tenants") if isinstance(body.get("tenants"), dict) else {}
    for tenant, entry in (tenants or {}).items():
        keys = entry.get("keys") if isinstance(entry, dict) else None
        for version, text in (keys if isinstance(keys, dict) else {}).items():
            try:
                key = _unwrap(kek, base64.b64decode(text), _wrap_aad(str(tenant), int(version)))
            except (ValueError, TypeError):
                key = None
            if key is None:
                problems.append((raw.find(str(text).encode()), f"data key {version} does not unwrap"))
            else:
                found[int(version)] = (str(tenant), key)
    return found, problems


class KeyRing:
    """The KEK and the unwrapped data keys of every tenant, persisted as ``keyring.json``.

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
    def open(cls, data_dir: Path, config: KeyConfig) -> KeyRing:
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
    def open_copy(cls, path: Path, current: KeyRing) -> KeyRing:
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
                key = _unwrap(self._kek, wrapped, _wrap_aad(tenant, version))
                if key is None:
                    raise DecryptionError(self.path, f"data key {version} does not unwrap")
                self._keys[version] = (tenant, key)
        for old_id, wrapped in previous.items():
            old = _unwrap(self._kek, wrapped, _kek_aad(old_id))
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
                        aad = _wrap_aad(str(tenant), int(version))
                    except (ValueError, TypeError):
                        wrapped, aad = b"", b""
                    yield f"data key {version}", wrapped, str(text), aad

    def _first_bad_entry(self, body: dict[str, Any], raw: bytes) -> tuple[str, int] | None:
        """The first wrapped key that does not unwrap under the KEK, with its byte offset in ``raw``."""
        for label, wrapped, text, aad in self._entries(body):
            if _unwrap(self._kek, wrapped, aad) is None:
                return label, raw.find(text.encode()) if text else -1
        return None

    def _any_entry_unwraps(self, body: dict[str, Any]) -> bool:
        return any(_unwrap(self._kek, w, aad) is not None for _, w, _, aad in self._entries(body))

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
        return hmac.new(_mac_key(self._kek), canonical, hashlib.sha256).digest()

    def _body(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
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
                old_id: base64.b64encode(_wrap(self._kek, old, _kek_aad(old_id))).decode()
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
        self._wrapped.setdefault(tenant, {})[version] = _wrap(self._kek, key, _wrap_aad(tenant, version))
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
                        keys[version] = _wrap(new_kek, self._keys[version][1], _wrap_aad(tenant, version))
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
        wrapped = base64.b64encode(_wrap(self._kek, key, _wrap_aad(tenant, version))).decode()
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
            key = _unwrap(self._kek, blob, _wrap_aad(tenant, version))
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
        return hmac.new(_log_key(self._kek), data, hashlib.sha256).digest()

    def check_log_mac(self, data: bytes, mac: bytes) -> bool:
        """Whether ``mac`` authenticates ``data`` under the current KEK or an earlier one it keeps."""
        return any(
            hmac.compare_digest(hmac.new(_log_key(k), data, hashlib.sha256).digest(), mac)
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
                tenant: {v: _wrap(self._kek, copy._keys[v][1], _wrap_aad(tenant, v)) for v in keys}
                for tenant, keys in copy._wrapped.items()
            }
            earlier = {**copy._previous, kek_id(copy._kek): copy._kek, **self._previous}
            earlier.pop(kek_id(self._kek), None)
            self._previous = earlier

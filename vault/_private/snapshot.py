"""Snapshots: sealed per-tenant state and index files, tied together by a checksummed manifest.

Layout of the data directory::

    LOCK                      flock held while a vault is open
    kek.key                   the key-encryption key (mode 0600; unless it comes from the environment)
    keyring.json              wrapped data keys (see keyring.py)
    MANIFEST.json             generation, first WAL generation to replay, dimension, tenant names; SHA-256
    wal.<g>.log               write-ahead log files (replayed from the manifest's WAL generation on)
    t_<hash>/records.<n>.seg  sealed records of one tenant (tier 2 of the cache)
    t_<hash>/state.<g>.snap   sealed id map, labels, tombstones, segment length    (snapshot generation g)
    t_<hash>/index.<g>.snap   sealed FAISS index (serialize_index)                  (snapshot generation g)

A sealed file is ``b"SVSEAL01" | sealed blob`` with associated data binding tenant, kind, generation and
key version, so a file cannot be swapped for another tenant's, another kind or an older generation's.
The manifest is written last (atomically) so a crash leaves the previous snapshot in force.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from vault._private.files import atomic_write
from vault._private.keyring import KeyRing
from vault._private.sealing import InvalidTag, blob_key_version, file_aad, open_blob, seal
from vault.errors import DecryptionError, IntegrityError

__all__ = ("MANIFEST_NAME", "Manifest", "read_sealed_file", "write_sealed_file")

MANIFEST_NAME = "MANIFEST.json"
_SEAL_MAGIC = b"SVSEAL01"
_FORMAT = 1


@dataclass(slots=True)
class Manifest:
    """The snapshot in force."""

    generation: int = 0
    wal_generation: int = 1
    dim: int | None = None
    tenants: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        """Read the manifest, or an empty one when there is none yet.

        Raises:
            IntegrityError: The manifest does not parse or its checksum does not match.
        """
        path = directory / MANIFEST_NAME
        if not path.exists():
            return cls()
        try:
            doc = json.loads(path.read_bytes())
            body = doc["body"]
            ok = hashlib.sha256(_canonical(body)).hexdigest() == doc["sha256"]
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(path, "not a valid manifest") from None
        if not ok:
            raise IntegrityError(path, "manifest checksum mismatch")
        return cls(int(body["generation"]), int(body["wal_generation"]), body["dim"], list(body["tenants"]))

    def save(self, directory: Path) -> None:
        """Write the manifest atomically and durably."""
        body = {
            "format": _FORMAT,
            "generation": self.generation,
            "wal_generation": self.wal_generation,
            "dim": self.dim,
            "tenants": sorted(self.tenants),
        }
        doc = {"body": body, "sha256": hashlib.sha256(_canonical(body)).hexdigest()}
        atomic_write(directory / MANIFEST_NAME, json.dumps(doc, indent=1).encode())


def _canonical(body: object) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def snap_path(tenant_dir: Path, kind: str, generation: int) -> Path:
    """Path of a tenant's sealed snapshot file of one kind (``"state"`` or ``"index"``) and generation."""
    return tenant_dir / f"{kind}.{generation:08d}.snap"


def write_sealed_file(
    path: Path, keys: KeyRing, tenant: str, kind: str, generation: int, data: bytes
) -> None:
    """Seal ``data`` under the tenant's active data key and write it atomically and durably."""
    version, key = keys.active(tenant, create=True)
    blob = seal(key, version, data, file_aad(tenant, kind, generation, version))
    atomic_write(path, _SEAL_MAGIC + blob)


def read_sealed_file(path: Path, keys: KeyRing, tenant: str, kind: str, generation: int) -> bytes:
    """Read and open a file written by :func:`write_sealed_file`.

    Raises:
        IntegrityError: The file is missing, has no seal header, or names an unknown key version.
        DecryptionError: AES-GCM authentication fails (tampered, truncated, swapped or wrong key).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IntegrityError(path, "snapshot file is missing") from None
    if not raw.startswith(_SEAL_MAGIC):
        raise IntegrityError(path, "not a sealed vault file (bad magic)", 0)
    blob = raw[len(_SEAL_MAGIC) :]
    try:
        version = blob_key_version(blob)
    except InvalidTag:
        raise IntegrityError(path, "sealed file is truncated") from None
    key = keys.key(tenant, version)
    if key is None:
        raise IntegrityError(path, f"sealed with data-key version {version}, which the tenant does not have")
    try:
        return open_blob(key, blob, file_aad(tenant, kind, generation, version))
    except InvalidTag:
        raise DecryptionError(path, "AES-GCM authentication failed (file altered)", tenant=tenant) from None

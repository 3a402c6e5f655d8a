"""Snapshots: sealed per-tenant state and index files, tied together by a checksummed manifest.

Layout of the data directory::

    LOCK                      flock held while a vault is open
    keyring.json              wrapped data keys (see keyring.py)
    MANIFEST.json             generation, first WAL generation to replay, dimension, tenant names; SHA-256
    wal.<g>.log               write-ahead log files (replayed from the manifest's WAL generation on)
    t_<hash>/records.<n>.seg  sealed records of one tenant (tier 2 of the cache)
    t_<hash>/state.<g>.snap   sealed id map, labels, tombstones, segment length    (snapshot generation g)
    t_<hash>/index.<g>.snap   sealed FAISS index (serialize_index)                  (snapshot generation g)

A sealed file is a header ``b"SVSEAL02" | key_version u32 | chunk_bytes u32 | plaintext_bytes u64``
followed by the plaintext sealed with AES-256-GCM in 1 MiB chunks, each ``nonce (12) | ciphertext | tag``.
A chunk's associated data binds tenant, kind, generation, key version, the header and the chunk's index,
so a file cannot be swapped for another tenant's, another kind or an older generation's, chunks cannot be
reordered or dropped, and a damaged byte is reported with the offset of its chunk. Files are read one chunk
at a time into the plaintext buffer (no second copy of the file in memory).
The manifest is written last (atomically) so a crash leaves the previous snapshot in force.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault._private.files import atomic_write
from vault._private.keyring import KeyRing
from vault._private.sealing import NONCE_BYTES, InvalidTag, file_aad
from vault.errors import DecryptionError, IntegrityError

__all__ = ("MANIFEST_NAME", "KeyLookup", "Manifest", "read_sealed_file", "snap_path", "write_sealed_file")

MANIFEST_NAME = "MANIFEST.json"
_SEAL_MAGIC = b"SVSEAL02"
_SEAL_HEAD = struct.Struct(">8sIIQ")
_CHUNK_BYTES = 1 << 20
_TAG_BYTES = 16
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
        except json.JSONDecodeError as exc:
            raise IntegrityError(path, f"not a valid manifest: {exc.msg}", exc.pos) from None
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


def _header(version: int, total: int) -> bytes:
    return _SEAL_HEAD.pack(_SEAL_MAGIC, version, _CHUNK_BYTES, total)


def _chunk_aad(base: bytes, header: bytes, index: int) -> bytes:
    return base + header + struct.pack(">Q", index)


def write_sealed_file(
    path: Path, keys: KeyRing, tenant: str, kind: str, generation: int, data: bytes
) -> None:
    """Seal ``data`` in 1 MiB chunks under the tenant's active data key; write atomically and durably.

    Raises:
        VaultStorageError: The file could not be written (the previous one, if any, stays).
    """
    version, key = keys.active(tenant, create=True)
    header = _header(version, len(data))
    base = file_aad(tenant, kind, generation, version)
    aead = AESGCM(key)
    view = memoryview(data)
    count = max(1, -(-len(data) // _CHUNK_BYTES))

    def parts() -> Iterator[bytes]:
        yield header
        for index in range(count):
            nonce = os.urandom(NONCE_BYTES)
            chunk = view[index * _CHUNK_BYTES : (index + 1) * _CHUNK_BYTES]
            yield nonce + aead.encrypt(nonce, bytes(chunk), _chunk_aad(base, header, index))

    atomic_write(path, parts())


class KeyLookup(Protocol):
    """Anything that finds a tenant's data key by version (a :class:`KeyRing`, or salvaged keys)."""

    def key(self, tenant: str, version: int) -> bytes | None:
        """The data key, or ``None``."""


def read_sealed_file(path: Path, keys: KeyLookup, tenant: str, kind: str, generation: int) -> bytearray:
    """Read and open a file written by :func:`write_sealed_file`, one chunk at a time.

    Memory: the plaintext plus one chunk (the sealed file is never held whole).

    Raises:
        IntegrityError: The file is missing, has no seal header, has the wrong size for its header, or
            names an unknown key version.
        DecryptionError: AES-GCM authentication of a chunk fails (tampered, swapped or wrong key); the
            error names the chunk's byte offset.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise IntegrityError(path, "snapshot file is missing") from None
    with fh:
        header = fh.read(_SEAL_HEAD.size)
        if len(header) < _SEAL_HEAD.size or not header.startswith(_SEAL_MAGIC):
            raise IntegrityError(path, "not a sealed vault file (bad magic or header)", 0)
        _, version, chunk_bytes, total = _SEAL_HEAD.unpack(header)
        count = max(1, -(-total // chunk_bytes)) if chunk_bytes else 0
        size = os.fstat(fh.fileno()).st_size
        expected = _SEAL_HEAD.size + count * (NONCE_BYTES + _TAG_BYTES) + total
        if chunk_bytes != _CHUNK_BYTES or size != expected:
            raise IntegrityError(
                path, f"file is {size} bytes, its header says {expected} (cut or damaged)", 0
            )
        key = keys.key(tenant, version)
        if key is None:
            raise IntegrityError(
                path, f"sealed with data-key version {version}, which the tenant does not have", 8
            )
        aead = AESGCM(key)
        base = file_aad(tenant, kind, generation, version)
        out = bytearray(total)
        for index in range(count):
            offset = fh.tell()
            length = min(chunk_bytes, total - index * chunk_bytes)
            sealed = fh.read(NONCE_BYTES + length + _TAG_BYTES)
            try:
                plain = aead.decrypt(
                    sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _chunk_aad(base, header, index)
                )
            except InvalidTag:
                raise DecryptionError(
                    path,
                    f"AES-GCM authentication failed in chunk {index} "
                    f"(bytes {offset}-{offset + len(sealed) - 1}; file altered)",
                    offset,
                    tenant=tenant,
                ) from None
            out[index * chunk_bytes : index * chunk_bytes + length] = plain
    return out

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
reordered or dropped, and a damaged byte is reported with the offset of its chunk. Files are written and
read one chunk at a time: an index is streamed from FAISS into the sealer and from the decrypting reader
straight into FAISS's own arrays, so neither side holds a serialised copy of it.
The manifest is written last (atomically) so a crash leaves the previous snapshot in force.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault._private.files import atomic_write, atomic_write_with
from vault._private.keyring import KeyRing
from vault._private.sealing import NONCE_BYTES, InvalidTag, file_aad
from vault.errors import DecryptionError, IntegrityError

__all__ = (
    "MANIFEST_NAME",
    "KeyLookup",
    "Manifest",
    "SealKey",
    "SealedReader",
    "read_sealed_file",
    "snap_path",
    "write_sealed_bytes",
    "write_sealed_file",
    "write_sealed_stream",
)

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


SealKey = tuple[int, bytes]
"""A tenant's data key to seal with: ``(key version, 32-byte key)``."""


def write_sealed_file(
    path: Path, keys: KeyRing, tenant: str, kind: str, generation: int, data: bytes
) -> None:
    """Seal ``data`` under the tenant's active data key; see :func:`write_sealed_bytes`."""
    write_sealed_bytes(path, keys.active(tenant, create=True), tenant, kind, generation, data)


def write_sealed_bytes(
    path: Path, seal_key: SealKey, tenant: str, kind: str, generation: int, data: bytes
) -> None:
    """Seal ``data`` in 1 MiB chunks under ``seal_key``; write atomically and durably.

    Raises:
        VaultStorageError: The file could not be written (the previous one, if any, stays).
    """
    view = memoryview(data)
    write_sealed_stream(path, seal_key, tenant, kind, generation, len(data), lambda sink: sink(view))


def write_sealed_stream(
    path: Path,
    seal_key: SealKey,
    tenant: str,
    kind: str,
    generation: int,
    total: int,
    produce: Callable[[Callable[[bytes | memoryview], None]], None],
) -> None:
    """Seal ``total`` bytes pushed by ``produce(sink)`` in 1 MiB chunks; write atomically and durably.

    Memory: one chunk (the plaintext is never held whole), so an index can be streamed from FAISS.

    Args:
        path: Destination file.
        seal_key: Data key to seal with.
        tenant: Tenant (bound into every chunk's associated data).
        kind: ``"state"`` or ``"index"``.
        generation: Snapshot generation.
        total: Bytes ``produce`` will push (the header states it).
        produce: Calls ``sink`` with the plaintext, in pieces of any size.

    Raises:
        VaultStorageError: The file could not be written (the previous one, if any, stays).
        ValueError: ``produce`` pushed another number of bytes than ``total`` (nothing is written).
    """
    version, key = seal_key
    header = _header(version, total)
    base = file_aad(tenant, kind, generation, version)
    aead = AESGCM(key)

    def sealed(write: Callable[[bytes], None]) -> None:
        write(header)
        buffer = bytearray()
        index = 0

        def flush() -> None:
            nonlocal index
            nonce = os.urandom(NONCE_BYTES)
            write(nonce + aead.encrypt(nonce, bytes(buffer), _chunk_aad(base, header, index)))
            index += 1
            buffer.clear()

        def sink(piece: bytes | memoryview) -> None:
            view = memoryview(piece)
            while view:
                take = _CHUNK_BYTES - len(buffer)
                buffer.extend(view[:take])
                view = view[take:]
                if len(buffer) == _CHUNK_BYTES:
                    flush()

        produce(sink)
        written = index * _CHUNK_BYTES + len(buffer)
        if written != total:
            raise ValueError(f"{path.name}: {written} bytes produced, {total} announced")
        if buffer or index == 0:
            flush()

    atomic_write_with(path, sealed)


class KeyLookup(Protocol):
    """Anything that finds a tenant's data key by version (a :class:`KeyRing`, or salvaged keys)."""

    def key(self, tenant: str, version: int) -> bytes | None:
        """The data key, or ``None``."""


class SealedReader:
    """Reads a file written by :func:`write_sealed_stream`, decrypting one 1 MiB chunk at a time.

    Memory: one chunk. Use as a context manager; :meth:`read` gives the plaintext in order and
    :meth:`finish` checks that all of it was read (every chunk authenticated).

    Args:
        path: The sealed file.
        keys: Finds the tenant's data key by the version in the header.
        tenant: Tenant the file must belong to.
        kind: ``"state"`` or ``"index"``.
        generation: Snapshot generation the file must belong to.

    Raises:
        IntegrityError: The file is missing, has no seal header, has the wrong size for its header, or
            names an unknown key version.
    """

    def __init__(self, path: Path, keys: KeyLookup, tenant: str, kind: str, generation: int) -> None:
        self.path = path
        self._tenant = tenant
        try:
            self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise IntegrityError(path, "snapshot file is missing") from None
        try:
            header = self._fh.read(_SEAL_HEAD.size)
            if len(header) < _SEAL_HEAD.size or not header.startswith(_SEAL_MAGIC):
                raise IntegrityError(path, "not a sealed vault file (bad magic or header)", 0)
            _, version, chunk_bytes, total = _SEAL_HEAD.unpack(header)
            self.total: int = total
            """Plaintext bytes in the file."""
            self._count = max(1, -(-total // chunk_bytes)) if chunk_bytes else 0
            size = os.fstat(self._fh.fileno()).st_size
            expected = _SEAL_HEAD.size + self._count * (NONCE_BYTES + _TAG_BYTES) + total
            if chunk_bytes != _CHUNK_BYTES or size != expected:
                raise IntegrityError(
                    path, f"file is {size} bytes, its header says {expected} (cut or damaged)", 0
                )
            key = keys.key(tenant, version)
            if key is None:
                raise IntegrityError(
                    path, f"sealed with data-key version {version}, which the tenant does not have", 8
                )
        except BaseException:
            self._fh.close()
            raise
        self._aead = AESGCM(key)
        self._base = file_aad(tenant, kind, generation, version)
        self._header = header
        self._next = 0
        self._chunk = b""
        self._at = 0

    def __enter__(self) -> SealedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._fh.close()

    def _open_next(self) -> None:
        index = self._next
        offset = self._fh.tell()
        length = min(_CHUNK_BYTES, self.total - index * _CHUNK_BYTES)
        sealed = self._fh.read(NONCE_BYTES + length + _TAG_BYTES)
        try:
            self._chunk = self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _chunk_aad(self._base, self._header, index)
            )
        except InvalidTag:
            raise DecryptionError(
                self.path,
                f"AES-GCM authentication failed in chunk {index} "
                f"(bytes {offset}-{offset + len(sealed) - 1}; file altered)",
                offset,
                tenant=self._tenant,
            ) from None
        self._next += 1
        self._at = 0

    def read(self, n: int) -> bytes:
        """Up to ``n`` next plaintext bytes (fewer only at a chunk's end; ``b""`` at the end).

        Raises:
            DecryptionError: AES-GCM authentication of a chunk fails (tampered, swapped or wrong key);
                the error names the chunk's byte offset.
        """
        if self._at == len(self._chunk):
            if self._next >= self._count:
                return b""
            self._open_next()
        piece = self._chunk[self._at : self._at + n]
        self._at += len(piece)
        return piece

    def readinto(self, out: bytearray | memoryview) -> None:
        """Fill ``out`` (exactly :attr:`total` bytes) with the plaintext."""
        view = memoryview(out)
        while view:
            piece = self.read(len(view))
            if not piece:
                raise IntegrityError(self.path, "sealed file ends early")
            view[: len(piece)] = piece
            view = view[len(piece) :]

    def finish(self) -> None:
        """Authenticate the rest of the file (its plaintext unread so far is discarded).

        Raises:
            DecryptionError: A chunk fails authentication.
        """
        while self.read(_CHUNK_BYTES):
            pass


def read_sealed_file(path: Path, keys: KeyLookup, tenant: str, kind: str, generation: int) -> bytearray:
    """Read and open a file written by :func:`write_sealed_stream`, one chunk at a time.

    Memory: the plaintext plus one chunk (the sealed file is never held whole).

    Raises:
        IntegrityError: The file is missing, has no seal header, has the wrong size for its header, or
            names an unknown key version.
        DecryptionError: AES-GCM authentication of a chunk fails (tampered, swapped or wrong key); the
            error names the chunk's byte offset.
    """
    with SealedReader(path, keys, tenant, kind, generation) as reader:
        out = bytearray(reader.total)
        reader.readinto(out)
        reader.finish()
    return out

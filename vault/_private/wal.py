"""Append-only write-ahead log (WAL) with a CRC-32 checksum per entry and fsync on commit.

File ``wal.<generation>.log``; each entry is a frame (big-endian)::

    magic 0xA7 0x57 | body_len u32 | crc32(body) u32 | body
    body = op u8 | tenant_len u16 | tenant | id_len u16 | record_id | blob

``blob`` is a sealed record for ``PUT`` and empty otherwise. A batch of frames is written with one
``write`` and made durable with one ``fsync`` before the caller's write returns.

Recovery reads frames in order. A *torn tail* (a frame cut short by a crash, or a zero-filled end left
by the file system) is truncated away: it was never acknowledged. A complete frame whose magic or CRC is
wrong is corruption and raises :class:`vault.errors.IntegrityError` naming the file and offset, instead of
silently dropping acknowledged writes.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vault._private.files import fsync_dir
from vault.errors import IntegrityError

__all__ = ("OP_DELETE", "OP_DROP_TENANT", "OP_PUT", "WalEntry", "WriteAheadLog")

OP_PUT = 1
OP_DELETE = 2
OP_DROP_TENANT = 3
_OPS = {OP_PUT, OP_DELETE, OP_DROP_TENANT}
_MAGIC = b"\xa7W"
_HEAD = struct.Struct(">2sII")
_NAME = re.compile(r"^wal\.(\d{8})\.log$")


@dataclass(frozen=True, slots=True)
class WalEntry:
    """One logged operation."""

    op: int
    tenant: str
    record_id: str = ""
    blob: bytes = b""

    def encode(self) -> bytes:
        """The entry as a checksummed frame."""
        tenant, rid = self.tenant.encode(), self.record_id.encode()
        body = (
            struct.pack(">BH", self.op, len(tenant)) + tenant + struct.pack(">H", len(rid)) + rid + self.blob
        )
        return _HEAD.pack(_MAGIC, len(body), zlib.crc32(body)) + body


def _decode_body(body: bytes) -> WalEntry:
    op, tlen = struct.unpack_from(">BH", body)
    tenant = body[3 : 3 + tlen].decode()
    (idlen,) = struct.unpack_from(">H", body, 3 + tlen)
    start = 5 + tlen
    if op not in _OPS:
        raise ValueError(f"unknown op {op}")
    return WalEntry(op, tenant, body[start : start + idlen].decode(), body[start + idlen :])


def wal_path(directory: Path, generation: int) -> Path:
    """Path of the WAL file of one generation."""
    return directory / f"wal.{generation:08d}.log"


def wal_generations(directory: Path) -> list[int]:
    """Generations of the WAL files present in ``directory``, ascending."""
    found = (_NAME.match(p.name) for p in directory.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def _zero_tail(data: bytes, offset: int) -> bool:
    """Whether everything from ``offset`` to the end is zero bytes (space allocated, never written)."""
    return data.count(0, offset) == len(data) - offset


def read_wal(path: Path) -> list[WalEntry]:
    """Read every entry of a WAL file, truncating a torn tail in place.

    Raises:
        IntegrityError: A complete frame fails its magic or CRC check, or does not decode.
    """
    data = path.read_bytes()
    entries: list[WalEntry] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEAD.size:
            break  # cut-short header: torn tail
        magic, length, crc = _HEAD.unpack_from(data, offset)
        if magic != _MAGIC:
            if _zero_tail(data, offset):
                break
            raise IntegrityError(path, "bad WAL frame magic", offset)
        end = offset + _HEAD.size + length
        if end > len(data):
            break  # frame cut short: torn tail
        body = data[offset + _HEAD.size : end]
        if zlib.crc32(body) != crc:
            if _zero_tail(data, offset + _HEAD.size):
                break
            raise IntegrityError(path, "WAL entry checksum mismatch", offset)
        try:
            entries.append(_decode_body(body))
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            raise IntegrityError(path, f"WAL entry does not decode: {exc}", offset) from None
        offset = end
    if offset < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(offset)
            fh.flush()
            os.fsync(fh.fileno())
    return entries


class WriteAheadLog:
    """The WAL file currently appended to.

    Args:
        directory: Data directory.
        generation: Generation of the file to append to (created if missing).
        fsync: fsync after each batch (see ``DurabilityConfig.fsync``).
        entries: Entries already in the file (after replay).
    """

    def __init__(self, directory: Path, generation: int, *, fsync: bool, entries: int = 0) -> None:
        self.directory = directory
        self.generation = generation
        self.path = wal_path(directory, generation)
        self._fsync = fsync
        existed = self.path.exists()
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if not existed:
            fsync_dir(directory)
        self.entries = entries
        self.bytes = os.fstat(self._fd).st_size

    def append(self, entries: Sequence[WalEntry]) -> None:
        """Append entries durably: one write, then fsync, before returning."""
        if self._fd is None:
            raise RuntimeError("WAL is closed")
        frames = memoryview(b"".join(e.encode() for e in entries))
        total = len(frames)
        while frames:
            written = os.write(self._fd, frames)
            frames = frames[written:]
        if self._fsync:
            os.fsync(self._fd)
        self.entries += len(entries)
        self.bytes += total

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

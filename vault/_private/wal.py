"""Append-only write-ahead log (WAL): checksummed frames, fsync on commit, undo of a failed append.

File ``wal.<generation>.log``; each entry is a frame (big-endian)::

    magic 0xA7 0x58 | body_len u32 | crc32(body) u32 | crc32(the 10 bytes before) u32 | body
    body = op u8 | tenant_len u16 | tenant | id_len u16 | record_id | blob

``blob`` is a sealed record for ``PUT``, the JSON result of a call for ``DONE`` (whose ``record_id`` is
the call's idempotency key), the sequence (u64) of the last applied entry of an external record log for
``LOG_SEQ`` (see :mod:`vault.log`) and empty otherwise. A call's frames are written with one ``write``
and made durable with one ``fsync`` before the call returns. A failed ``write`` or ``fsync`` (a full disk)
is undone by cutting the file back to its last good frame, so the log never holds half a frame in its middle.

The header carries its own checksum, so a damaged length field is recognised as damage rather than taken
for a frame that runs past the end of the file. Recovery drops only a *torn tail* — what a crash can leave
behind the last acknowledged frame:

* a header cut short by the end of the file, or a valid header whose body runs past the end;
* zero bytes from the frame's start to the end of the file (space allocated, never written);
* a frame whose header or body fails its checksum where the file is zero from a 512-byte sector boundary
  inside that frame to its end (a write torn at a sector boundary).

Anything else that fails a check (a flipped bit in any frame, the last one included) raises
:class:`vault.errors.IntegrityError` naming the file and offset; ``python -m vault.salvage`` reads past it.
"""

from __future__ import annotations

import errno
import os
import re
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vault._private.files import fsync_dir, storage_error, write_all
from vault.errors import IntegrityError, VaultStorageError

__all__ = (
    "OP_DELETE",
    "OP_DONE",
    "OP_DROP_TENANT",
    "OP_LOG_SEQ",
    "OP_PUT",
    "WalEntry",
    "WalScan",
    "WriteAheadLog",
    "decode_frames",
    "read_wal",
    "scan_wal",
    "wal_generations",
    "wal_path",
)

OP_PUT = 1
OP_DELETE = 2
OP_DROP_TENANT = 3
OP_DONE = 4
OP_LOG_SEQ = 5
_OPS = {OP_PUT, OP_DELETE, OP_DROP_TENANT, OP_DONE, OP_LOG_SEQ}
_MAGIC = b"\xa7X"
_PREFIX = struct.Struct(">2sII")
_HEAD = struct.Struct(">2sIII")
_SECTOR = 512
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
        prefix = _PREFIX.pack(_MAGIC, len(body), zlib.crc32(body))
        return prefix + struct.pack(">I", zlib.crc32(prefix)) + body


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


def _frame_at(data: bytes, offset: int) -> tuple[str, int]:
    """Check the frame at ``offset``: ``("ok", end)``, or a problem and how far the frame claims to reach.

    Problems: ``"short-head"`` (fewer bytes than a header left), ``"bad-head"`` (magic or header checksum
    wrong), ``"short-body"`` (valid header, body past the end of the file), ``"bad-body"`` (body checksum).
    """
    if len(data) - offset < _HEAD.size:
        return "short-head", len(data)
    magic, length, crc, head_crc = _HEAD.unpack_from(data, offset)
    if magic != _MAGIC or zlib.crc32(data[offset : offset + _PREFIX.size]) != head_crc:
        return "bad-head", offset + _HEAD.size
    end = offset + _HEAD.size + length
    if end > len(data):
        return "short-body", end
    if zlib.crc32(data[offset + _HEAD.size : end]) != crc:
        return "bad-body", end
    return "ok", end


def _torn(data: bytes, offset: int, problem: str, reach: int) -> bool:
    """Whether a frame that failed a check at ``offset`` is a torn tail (see the module docstring)."""
    if problem in ("short-head", "short-body"):
        return True
    nonzero_end = len(data.rstrip(b"\0"))
    if nonzero_end <= offset:
        return True  # zero from the frame's start to the end
    zero_from = -(-nonzero_end // _SECTOR) * _SECTOR
    return zero_from < len(data) and zero_from < reach


def _next_frame(data: bytes, offset: int) -> int | None:
    """Offset of the next intact frame after ``offset`` (for salvage), or ``None``."""
    at = data.find(_MAGIC, offset + 1)
    while at != -1:
        if _frame_at(data, at)[0] == "ok":
            return at
        at = data.find(_MAGIC, at + 1)
    return None


@dataclass(slots=True)
class WalScan:
    """What :func:`scan_wal` found in one WAL file.

    Attributes:
        entries: The intact entries, in order.
        damaged: ``(offset, reason)`` of every damaged region that was skipped.
        torn_at: Offset of a torn tail, if the file ends with one.
    """

    entries: list[WalEntry] = field(default_factory=list)
    damaged: list[tuple[int, str]] = field(default_factory=list)
    torn_at: int | None = None


def scan_wal(path: Path, *, salvage: bool = False) -> WalScan:
    """Read a WAL file without changing it.

    Args:
        path: The WAL file.
        salvage: Skip damaged frames (resuming at the next intact frame) instead of raising.

    Raises:
        IntegrityError: A frame is damaged (not a torn tail) and ``salvage`` is false.
    """
    data = path.read_bytes()
    scan = WalScan()
    offset = 0
    while offset < len(data):
        problem, reach = _frame_at(data, offset)
        if problem == "ok":
            try:
                scan.entries.append(_decode_body(data[offset + _HEAD.size : reach]))
                offset = reach
                continue
            except (ValueError, struct.error, UnicodeDecodeError) as exc:
                problem = f"entry does not decode: {exc}"
        elif _torn(data, offset, problem, reach):
            scan.torn_at = offset
            break
        reason = {
            "bad-head": "WAL frame header checksum mismatch (damaged length or magic)",
            "bad-body": "WAL entry checksum mismatch",
        }.get(problem, f"WAL {problem}")
        if not salvage:
            raise IntegrityError(path, reason, offset)
        scan.damaged.append((offset, reason))
        resume = _next_frame(data, offset)
        if resume is None:
            break
        offset = resume
    return scan


def decode_frames(data: bytes) -> list[WalEntry]:
    """The entries of ``data``, a run of whole frames (a record-log message), every check strict.

    Raises:
        ValueError: A frame is cut short, fails its checksum or does not decode (names the offset).
    """
    entries: list[WalEntry] = []
    offset = 0
    while offset < len(data):
        problem, reach = _frame_at(data, offset)
        if problem != "ok":
            raise ValueError(f"log entry at byte {offset}: {problem}")
        try:
            entries.append(_decode_body(data[offset + _HEAD.size : reach]))
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            raise ValueError(f"log entry at byte {offset} does not decode: {exc}") from None
        offset = reach
    return entries


def read_wal(path: Path) -> list[WalEntry]:
    """Read every entry of a WAL file, truncating a torn tail in place.

    Raises:
        IntegrityError: A frame other than a torn tail fails its checks (names file and offset).
    """
    scan = scan_wal(path)
    if scan.torn_at is not None:
        with open(path, "r+b") as fh:
            fh.truncate(scan.torn_at)
            fh.flush()
            os.fsync(fh.fileno())
    return scan.entries


class WriteAheadLog:
    """The WAL file currently appended to.

    Args:
        directory: Data directory.
        generation: Generation of the file to append to (created if missing).
        fsync: fsync after each batch (see ``DurabilityConfig.fsync``).
        entries: Entries already in the file (after replay).

    Raises:
        VaultStorageError: The file cannot be created.
    """

    def __init__(self, directory: Path, generation: int, *, fsync: bool, entries: int = 0) -> None:
        self.directory = directory
        self.generation = generation
        self.path = wal_path(directory, generation)
        self._fsync = fsync
        existed = self.path.exists()
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if not existed:
                fsync_dir(directory)
        except OSError as exc:
            raise storage_error(exc, self.path) from exc
        self.entries = entries
        self.bytes = os.fstat(self._fd).st_size
        self.synced = self.bytes
        """End of the frames known to be on disk (bytes): a write is committed once this passes its end."""
        self.broken: VaultStorageError | None = None
        """Set when an fsync failed: every frame past :attr:`synced` is lost until :meth:`cut_unsynced`."""
        self._unsynced: list[tuple[int, int]] = []
        """``(end offset, entries)`` of each write not known to be durable yet (changed under the lock)."""
        self._sync_mutex = threading.Lock()
        self._dirty = False

    def append(self, entries: Sequence[WalEntry]) -> None:
        """Append entries durably: one write, then fsync, before returning (the caller holds the lock).

        Raises:
            VaultStorageError: The write or the fsync failed (``InsufficientStorageError`` when the disk
                is full); the file was cut back to its last durable frame, so nothing of ``entries`` stays.
        """
        end = self.write(entries)
        try:
            self.sync(end)
        except VaultStorageError:
            self.cut_unsynced()
            raise

    def write(self, entries: Sequence[WalEntry]) -> int:
        """Write entries with one ``write`` (the caller holds the lock); durable only after :meth:`sync`.

        Returns:
            The end offset of the frames written, to pass to :meth:`sync`.

        Raises:
            VaultStorageError: The write failed; the file was cut back to where it began.
        """
        if self._fd is None:
            raise RuntimeError("WAL is closed")
        if self.broken is not None:
            raise self.broken
        data = b"".join(e.encode() for e in entries)
        try:
            if self._dirty:
                self._undo()
            write_all(self._fd, data)
        except OSError as exc:
            self._dirty = True
            try:
                self._undo()
            except OSError:
                pass  # still dirty: the next write (or the next open) cuts it back
            raise storage_error(exc, self.path) from exc
        self.entries += len(entries)
        self.bytes += len(data)
        self._unsynced = [(end, n) for end, n in self._unsynced if end > self.synced]
        self._unsynced.append((self.bytes, len(entries)))
        return self.bytes

    def sync(self, upto: int) -> None:
        """Make the frames up to ``upto`` durable; needs no vault lock (group commit).

        Writers that wrote before a running fsync began are covered by it: they wait for it here and
        return without an fsync of their own. One fsync runs at a time.

        Raises:
            VaultStorageError: An fsync failed: every frame past :attr:`synced` is lost (the caller
                calls :meth:`cut_unsynced` under the lock).
        """
        if not self._fsync:
            self.synced = max(self.synced, upto)
            return
        with self._sync_mutex:
            if self.broken is not None:
                raise self.broken
            if self.synced >= upto:
                return
            end = self.bytes  # every frame before it is in the file (bytes moves after the write)
            try:
                if self._fd is None:
                    raise OSError(errno.EBADF, "WAL closed before its frames were synced")
                os.fsync(self._fd)
            except OSError as exc:
                self.broken = storage_error(exc, self.path)
                raise self.broken from exc
            self.synced = max(self.synced, end)

    def cut_unsynced(self) -> None:
        """After a failed fsync, cut the file back to its last durable frame (the caller holds the lock).

        Nothing past :attr:`synced` was acknowledged; its writes fail. If cutting fails too, the file
        stays marked and the next write cuts it first.
        """
        with self._sync_mutex:
            lost = [(end, n) for end, n in self._unsynced if end > self.synced]
            self.entries -= sum(n for _, n in lost)
            self._unsynced = []
            self.bytes = self.synced
            self.broken = None
            self._dirty = True
            try:
                self._undo()
            except OSError:
                pass  # still dirty: the next write (or the next open) cuts it back

    def _undo(self) -> None:
        """Cut the file back to the end of its last acknowledged frame."""
        assert self._fd is not None
        os.ftruncate(self._fd, self.bytes)
        os.fsync(self._fd)
        self._dirty = False

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

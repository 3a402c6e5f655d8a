"""A tenant's segment file: sealed records appended back to back, read with ``pread`` (cache tier 2).

It is not fsynced per write (the WAL is); a snapshot fsyncs it and records its valid length, and recovery
truncates it to that length before replaying the WAL (see :mod:`vault._private.tenant`).
"""

from __future__ import annotations

import os
from pathlib import Path

from vault._private.files import storage_error
from vault.errors import IntegrityError

__all__ = ("SegmentFile", "Slot")


Slot = tuple[int, int, int]
"""Where a live record is: ``(FAISS label, byte offset, byte length)`` in the segment file.

A plain tuple of ints on purpose: CPython's garbage collector stops tracking such a tuple, so a tenant's
100,000 records add nothing to a full collection, which runs in whichever thread allocates and holds the
GIL throughout. One tracked object per record (a dataclass, as before) made each full collection walk them
all: ~300 ms per collection with 100,000 on this loaded machine, inside some write.
"""


class SegmentFile:
    """The open segment file of a tenant (base of :class:`~vault._private.tenant.TenantState`).

    :class:`~vault._private.tenant.TenantState` sets these attributes in its ``__init__``.
    """

    dir: Path
    segment_no: int
    segment_len: int
    staged_end: int
    """End of the bytes staged behind ``segment_len`` by writes not committed yet (bytes)."""
    _fd: int | None

    # ----------------------------------------------------------------- segment file
    @property
    def segment_path(self) -> Path:
        """Current segment file."""
        return self.dir / f"records.{self.segment_no:06d}.seg"

    def open_segment(self, valid_length: int) -> None:
        """Open the segment file for append and cut it to ``valid_length`` bytes.

        Raises:
            IntegrityError: The file is shorter than ``valid_length``.
        """
        self._fd = os.open(self.segment_path, os.O_RDWR | os.O_CREAT, 0o600)
        size = os.fstat(self._fd).st_size
        if size < valid_length:
            raise IntegrityError(
                self.segment_path, f"segment is {size} bytes, snapshot expects {valid_length}"
            )
        if size > valid_length:  # records staged or replayed after the snapshot: the WAL has them
            os.ftruncate(self._fd, valid_length)
        self.segment_len = self.staged_end = valid_length

    def _write(self, blob: bytes) -> int:
        offset = self.stage(blob)
        self.segment_len = offset + len(blob)
        return offset

    def stage(self, data: bytes) -> int:
        """Write ``data`` behind the bytes staged so far without counting it yet; returns its offset.

        Staged bytes become part of the segment only through :meth:`put_many` (after the WAL commit, in
        the order they were staged); anything staged and not committed is cut off by :meth:`unstage`
        and on recovery.

        Raises:
            VaultStorageError: The write failed (a full disk); the file is cut back to where it began.
        """
        offset = self.staged_end
        try:
            if self._fd is None:
                self.open_segment(0)
                offset = self.staged_end
            assert self._fd is not None
            view = memoryview(data)
            while view:
                view = view[os.pwrite(self._fd, view, offset + len(data) - len(view)) :]
        except OSError as exc:
            self.unstage(offset)
            raise storage_error(exc, self.segment_path) from exc
        self.staged_end = offset + len(data)
        return offset

    def unstage(self, offset: int | None = None) -> None:
        """Drop what was staged from ``offset`` on (default: everything staged); best effort on disk."""
        self.staged_end = max(self.segment_len, self.staged_end if offset is None else offset)
        if offset is None:
            self.staged_end = self.segment_len
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, self.staged_end)
            except OSError:
                pass  # cut off on the next open (the snapshot records the valid length)

    def read_blob(self, slot: Slot) -> bytes:
        """The sealed record stored at ``slot``.

        Raises:
            IntegrityError: The segment file is shorter than the slot says.
        """
        if self._fd is None:
            self.open_segment(0)
        assert self._fd is not None
        _, offset, length = slot
        blob = os.pread(self._fd, length, offset)
        if len(blob) != length:
            raise IntegrityError(self.segment_path, "sealed record cut short", offset)
        return blob

    def sync(self) -> None:
        """Flush the segment file to disk (fsync)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the segment file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

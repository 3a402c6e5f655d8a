"""Small file-system helpers: durable atomic writes, directory fsync and the data-directory lock."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from vault.errors import VaultLockedError

__all__ = ("DirLock", "atomic_write", "fsync_dir", "fsync_file")


def fsync_dir(path: Path) -> None:
    """Flush a directory to disk (fsync) so that renames and creations inside it survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a regular file's data and metadata to disk (fsync)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically: write a temporary file, fsync, rename, fsync the dir.

    Args:
        path: Destination file.
        data: Full new content.
        mode: Permission bits of the new file.
        durable: fsync file and directory (skip only for throwaway files).
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


class DirLock:
    """An exclusive ``flock`` on ``<data_dir>/LOCK``, released on close or when the process dies.

    Args:
        path: The lock file (created if missing).

    Raises:
        VaultLockedError: Another process or another open vault holds the lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise VaultLockedError(path) from None

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

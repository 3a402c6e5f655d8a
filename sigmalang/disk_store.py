"""`DiskRSUStore`: the RSU store in one SQLite file, persistent across processes and restarts.

See `sigmalang.store` for the lifetime rules. SQLite runs in WAL mode with ``synchronous=NORMAL``: a
committed write survives a process crash; a power loss may lose the last transactions but never
corrupts the file (https://www.sqlite.org/wal.html). Content read back is re-hashed and compared with
its id, so a damaged file raises `RSUStoreError` instead of yielding wrong bytes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from sigmalang.chunking import rsu_id as compute_rsu_id
from sigmalang.errors import MissingRSUError, RSUStoreError
from sigmalang.frame import RSU_ID_BYTES
from sigmalang.store import GCResult, StoreStats

__all__ = ("DiskRSUStore",)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rsu (
    id BLOB PRIMARY KEY,
    data BLOB NOT NULL,
    refcount INTEGER NOT NULL DEFAULT 0 CHECK (refcount >= 0),
    pinned INTEGER NOT NULL DEFAULT 0
);
"""


class DiskRSUStore:
    """A persistent, thread-safe `RSUStore` in a SQLite database file.

    Args:
        path: Database file; created with its parent directories if missing.
        verify: Re-hash content on every read and compare with its id.
    """

    def __init__(self, path: str | os.PathLike[str], *, verify: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._verify = verify
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RSUStoreError(f"store {self.path} is closed")
        return self._conn

    def _row(self, db: sqlite3.Connection, column: str, rsu_id: bytes) -> int:
        row = db.execute(f"SELECT {column} FROM rsu WHERE id = ?", (rsu_id,)).fetchone()  # noqa: S608
        if row is None:
            raise MissingRSUError(rsu_id)
        return int(row[0])

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> int:
        """See `RSUStore.put_many`."""
        rows = []
        for rsu_id, data in items:
            if len(rsu_id) != RSU_ID_BYTES:
                raise ValueError(f"RSU ids are {RSU_ID_BYTES} bytes, got {len(rsu_id)}")
            rows.append((bytes(rsu_id), bytes(data)))
        if not rows:
            return 0
        with self._lock:
            db = self._db()
            before = db.total_changes
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR IGNORE INTO rsu (id, data) VALUES (?, ?)", rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return db.total_changes - before

    def get_many(self, rsu_ids: Iterable[bytes]) -> Mapping[bytes, bytes]:
        """See `RSUStore.get_many`."""
        out: dict[bytes, bytes] = {}
        with self._lock:
            db = self._db()
            for rsu_id in rsu_ids:
                if rsu_id in out:
                    continue
                row = db.execute("SELECT data FROM rsu WHERE id = ?", (rsu_id,)).fetchone()
                if row is None:
                    raise MissingRSUError(rsu_id)
                data = bytes(row[0])
                if self._verify and compute_rsu_id(data) != rsu_id:
                    raise RSUStoreError(f"content of RSU {rsu_id.hex()} in {self.path} fails its hash")
                out[rsu_id] = data
        return out

    def __contains__(self, rsu_id: object) -> bool:
        if not isinstance(rsu_id, bytes):
            return False
        with self._lock:
            return self._db().execute("SELECT 1 FROM rsu WHERE id = ?", (rsu_id,)).fetchone() is not None

    def acquire(self, rsu_ids: Iterable[bytes]) -> frozenset[bytes]:
        """See `RSUStore.acquire`."""
        wanted = list(set(rsu_ids))
        if not wanted:
            return frozenset()
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                present = frozenset(
                    i for i in wanted if db.execute("SELECT 1 FROM rsu WHERE id = ?", (i,)).fetchone()
                )
                db.executemany("UPDATE rsu SET refcount = refcount + 1 WHERE id = ?", [(i,) for i in present])
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return present

    def release(self, rsu_ids: Iterable[bytes]) -> None:
        """See `RSUStore.release`."""
        wanted = list(set(rsu_ids))
        if not wanted:
            return
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                for rsu_id in wanted:
                    if self._row(db, "refcount", rsu_id) <= 0:
                        raise RSUStoreError(f"release of RSU {rsu_id.hex()} whose reference count is 0")
                db.executemany("UPDATE rsu SET refcount = refcount - 1 WHERE id = ?", [(i,) for i in wanted])
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def refcount(self, rsu_id: bytes) -> int:
        """See `RSUStore.refcount`."""
        with self._lock:
            return self._row(self._db(), "refcount", rsu_id)

    def pin(self, rsu_id: bytes, pinned: bool = True) -> None:
        """See `RSUStore.pin`."""
        with self._lock:
            cur = self._db().execute("UPDATE rsu SET pinned = ? WHERE id = ?", (int(pinned), rsu_id))
            if cur.rowcount == 0:
                raise MissingRSUError(rsu_id)

    def is_pinned(self, rsu_id: bytes) -> bool:
        """See `RSUStore.is_pinned`."""
        with self._lock:
            return bool(self._row(self._db(), "pinned", rsu_id))

    def collect_garbage(self) -> GCResult:
        """See `RSUStore.collect_garbage`."""
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                removed, freed = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM rsu "
                    "WHERE refcount = 0 AND pinned = 0"
                ).fetchone()
                db.execute("DELETE FROM rsu WHERE refcount = 0 AND pinned = 0")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return GCResult(removed=int(removed), bytes_freed=int(freed))

    def stats(self) -> StoreStats:
        """See `RSUStore.stats`."""
        with self._lock:
            rsus, size, referenced, pinned = (
                self._db()
                .execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0), "
                    "COALESCE(SUM(refcount > 0), 0), COALESCE(SUM(pinned != 0), 0) FROM rsu"
                )
                .fetchone()
            )
            return StoreStats(rsus=int(rsus), bytes=int(size), referenced=int(referenced), pinned=int(pinned))

    def close(self) -> None:
        """See `RSUStore.close`."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> DiskRSUStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

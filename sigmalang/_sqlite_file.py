"""The SQLite file under `sigmalang.disk_store.DiskRSUStore`: schema, transactions, row ids, read cache.

`SQLiteRSUFile` holds what every store operation shares: one connection in WAL mode, nested
transactions under one lock, the sealed/plain mode recorded in the file, per-tenant row-id keys (sealed
stores) and the in-memory cache of verified content. The operations of `sigmalang.store.RSUStore` are in
`sigmalang.disk_store`.

An RSU is two rows: its bookkeeping in ``rsu_v3`` (id, stored size, reference count, pin, last use: a
few dozen bytes, clustered by ``(tenant, seq)``) and its content in ``rsu_data_v3``. Reference counts
and last uses change on every message; kept apart from the content, such a change rewrites a small row
instead of a record of several KiB with its overflow pages (the single-table ``rsu_v2`` of earlier
versions, whose bookkeeping columns came after the content; a file holding it is converted when
opened). On the ~10 KB-turn session corpus this halves the bytes SQLite writes (2.6 → 1.4 per input
byte, ``benchmarks/sigma_store.py``); the CPU time per message stayed within the noise of a loaded
machine (~200-250 µs in all, against ~25 µs for the in-memory store).
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cachetools import LRUCache

from sigmalang.errors import MissingRSUError, RSUStoreError
from sigmalang.sealing import ID_KEY_AAD, ChunkSealer, new_id_key, row_id
from sigmalang.store import GCResult

__all__ = ("SCHEMA", "WAL_CHECKPOINT_PAGES", "SQLiteRSUFile")

_CACHE_BYTES = 64 * 1024 * 1024
"""RSU content kept in memory for reads, bytes (a sequence number always names the same bytes, so a
cached RSU is never stale; it is dropped when this process deletes it)."""
WAL_CHECKPOINT_PAGES = 8192
"""WAL pages (4 KiB) written before SQLite checkpoints them into the database file."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS rsu_v3 (
    tenant TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id BLOB NOT NULL,
    size INTEGER NOT NULL,
    refcount INTEGER NOT NULL DEFAULT 0 CHECK (refcount >= 0),
    pinned INTEGER NOT NULL DEFAULT 0,
    used REAL NOT NULL,
    PRIMARY KEY (tenant, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS rsu_v3_id ON rsu_v3 (tenant, id);
CREATE INDEX IF NOT EXISTS rsu_v3_used ON rsu_v3 (tenant, used);
CREATE TABLE IF NOT EXISTS rsu_data_v3 (
    tenant TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE TABLE IF NOT EXISTS tenant_v2 (
    tenant TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL,
    evicted INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tenant_key_v1 (tenant TEXT PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta_v1 (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_MIGRATE_V2 = (
    "INSERT INTO rsu_v3 (tenant, seq, id, size, refcount, pinned, used) "
    "SELECT tenant, seq, id, LENGTH(data), refcount, pinned, used FROM rsu_v2",
    "INSERT INTO rsu_data_v3 (tenant, seq, data) SELECT tenant, seq, data FROM rsu_v2",
    "DROP TABLE rsu_v2",
)
"""Converting a file of the single-table layout (``rsu_v2``), in one transaction when it is opened."""


class SQLiteRSUFile:
    """The database file of a `sigmalang.disk_store.DiskRSUStore` (its base; the store opens it)."""

    path: Path
    _lock: threading.RLock
    _depth: int
    _conn: sqlite3.Connection | None
    _cache: LRUCache[tuple[str, int], tuple[bytes, float]]
    """``(tenant, seq) -> (content, last use)``, weighed by content bytes (`_read_cache`; guarded by
    ``_lock``, as cachetools caches are not thread safe)."""
    _sealer: ChunkSealer | None
    _tenants: dict[str, list[int]]
    """Each tenant's ``[next_seq, bytes, evicted]`` as the open write transaction changed them (read on first
    use, written back once before its COMMIT instead of a SELECT and an UPDATE per `put_many`; the write
    lock the transaction holds keeps other connections from changing them meanwhile)."""

    def _check_mode(self) -> None:
        """Record whether the file is sealed (on first use), or check that it matches this store."""
        assert self._conn is not None  # noqa: S101 - called from __init__
        want = "sealed" if self._sealer is not None else "plain"
        with self._tx() as db:
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rsu_v2'").fetchone():
                for statement in _MIGRATE_V2:
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta_v1 WHERE name = 'content'").fetchone()
            if row is None:
                (rows,) = db.execute("SELECT COUNT(*) FROM rsu_v3").fetchone()
                have = "plain" if rows else want  # a file from before sealing existed holds plain rows
                db.execute("INSERT INTO meta_v1 (name, value) VALUES ('content', ?)", (have,))
            else:
                have = str(row[0])
        if have != want:
            self.close()
            raise RSUStoreError(
                f"{self.path} holds {have} content; this store was opened {want} (move the file away to "
                "start afresh: frames referencing its RSUs then fail as missing)"
            )

    def _shred(self, db: sqlite3.Connection, tenant: str) -> None:
        """Forget a tenant whose key is gone: its sealed rows can never be opened again."""
        self._delete(db, tenant, "")
        db.execute("DELETE FROM tenant_key_v1 WHERE tenant = ?", (tenant,))

    def _id_key(self, db: sqlite3.Connection, tenant: str, *, create: bool) -> bytes | None:
        """The tenant's row-id key (sealed stores), created if ``create``; None if it has none.

        Opening it also checks that the tenant's key still exists: if it was shredded, the tenant's
        rows are dropped first (and a new key is made only if ``create``).
        """
        assert self._sealer is not None  # noqa: S101 - only called when sealed
        row = db.execute("SELECT sealed FROM tenant_key_v1 WHERE tenant = ?", (tenant,)).fetchone()
        if row is not None:
            try:
                return self._sealer.open(tenant, ID_KEY_AAD, bytes(row[0]))
            except LookupError:
                self._shred(db, tenant)
            except ValueError as exc:
                raise RSUStoreError(
                    f"row-id key of tenant {tenant!r} in {self.path} does not open: {exc}"
                ) from exc
        if not create:
            return None
        key = new_id_key()
        db.execute(
            "INSERT INTO tenant_key_v1 (tenant, sealed) VALUES (?, ?)",
            (tenant, self._sealer.seal(tenant, ID_KEY_AAD, key)),
        )
        return key

    def _row_ids(
        self, db: sqlite3.Connection, tenant: str, *, create: bool
    ) -> Callable[[bytes], bytes] | None:
        """``content id -> row id`` for the tenant (identity when unsealed); None if it holds no rows."""
        if self._sealer is None:
            return bytes
        key = self._id_key(db, tenant, create=create)
        return None if key is None else functools.partial(row_id, key)

    @staticmethod
    def _read_cache() -> LRUCache[tuple[str, int], tuple[bytes, float]]:
        """An empty read cache, bounded by :data:`_CACHE_BYTES` of content."""
        return LRUCache(_CACHE_BYTES, getsizeof=_content_bytes)

    def _remember(self, tenant: str, seq: int, data: bytes, used: float) -> None:
        """Keep an RSU's (verified) content and last use in the read cache (least recently used out).

        Content larger than the whole cache is not kept (and any older entry of the RSU goes).
        """
        key = (tenant, seq)
        if len(data) > self._cache.maxsize:
            self._cache.pop(key, None)
            return
        self._cache[key] = (data, used)

    def _forget(self, tenant: str, seqs: Iterable[int] | None = None) -> None:
        """Drop cached RSUs of `tenant` (all of them when `seqs` is None)."""
        keys = [k for k in self._cache if k[0] == tenant] if seqs is None else [(tenant, s) for s in seqs]
        for key in keys:
            self._cache.pop(key, None)

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise RSUStoreError(f"store {self.path} is closed")
            db = self._conn
            if self._depth:  # inside `transaction`: its commit covers this call
                self._depth += 1
                try:
                    yield db
                finally:
                    self._depth -= 1
                return
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            self._depth = 1
            try:
                yield db
                self._write_tenants(db)
            except BaseException:
                self._tenants.clear()
                db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")
            finally:
                self._depth = 0

    def _tenant_row(self, db: sqlite3.Connection, tenant: str) -> list[int]:
        """The tenant's ``[next_seq, bytes, evicted]`` in the open write transaction (created if new)."""
        row = self._tenants.get(tenant)
        if row is None:
            found = db.execute(
                "SELECT next_seq, bytes, evicted FROM tenant_v2 WHERE tenant = ?", (tenant,)
            ).fetchone()
            if found is None:
                db.execute("INSERT INTO tenant_v2 (tenant, next_seq) VALUES (?, 1)", (tenant,))
                found = (1, 0, 0)
            row = self._tenants[tenant] = [int(found[0]), int(found[1]), int(found[2])]
        return row

    def _write_tenants(self, db: sqlite3.Connection) -> None:
        """Write back the tenant rows the open transaction changed (`_tenant_row`), and forget them."""
        if self._tenants:
            db.executemany(
                "UPDATE tenant_v2 SET next_seq = ?, bytes = ?, evicted = ? WHERE tenant = ?",
                [(*row, tenant) for tenant, row in self._tenants.items()],
            )
            self._tenants.clear()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """See `RSUStore.transaction`: one SQLite write transaction (one commit) for the whole block.

        If the block raises, everything it wrote is rolled back (and the read cache forgets what it
        added, as RSUs stored in the block never reached the file).
        """
        with self._tx():
            try:
                yield
            except BaseException:
                self._cache.clear()
                raise

    def _row(self, db: sqlite3.Connection, tenant: str, column: str, rsu_id: bytes) -> int:
        ids = self._row_ids(db, tenant, create=False)
        row = (
            None
            if ids is None
            else db.execute(
                f"SELECT {column} FROM rsu_v3 WHERE tenant = ? AND id = ?",  # noqa: S608 - fixed column names
                (tenant, ids(rsu_id)),
            ).fetchone()
        )
        if row is None:
            raise MissingRSUError(rsu_id)
        return int(row[0])

    def _delete(self, db: sqlite3.Connection, tenant: str, where: str) -> GCResult:
        self._write_tenants(db)  # the UPDATE below counts from the rows as they are
        removed, freed = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM rsu_v3 WHERE tenant = ?{where}",  # noqa: S608
            (tenant,),
        ).fetchone()
        self._forget(tenant)
        inner = f"SELECT seq FROM rsu_v3 WHERE tenant = ?{where}"  # noqa: S608 - fixed clauses
        db.execute(f"DELETE FROM rsu_data_v3 WHERE tenant = ? AND seq IN ({inner})", (tenant, tenant))  # noqa: S608
        db.execute(f"DELETE FROM rsu_v3 WHERE tenant = ?{where}", (tenant,))  # noqa: S608 - fixed clauses
        db.execute("UPDATE tenant_v2 SET bytes = bytes - ? WHERE tenant = ?", (int(freed), tenant))
        return GCResult(removed=int(removed), bytes_freed=int(freed))

    def _remove(self, db: sqlite3.Connection, tenant: str, seqs: list[int]) -> None:
        """Delete the rows of these RSUs (both tables; the caller adjusts the tenant's byte count)."""
        self._forget(tenant, seqs)
        rows = [(tenant, s) for s in seqs]
        db.executemany("DELETE FROM rsu_data_v3 WHERE tenant = ? AND seq = ?", rows)
        db.executemany("DELETE FROM rsu_v3 WHERE tenant = ? AND seq = ?", rows)

    def close(self) -> None:
        """See `RSUStore.close`."""
        with self._lock:
            self._cache.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _content_bytes(entry: tuple[bytes, float]) -> int:
    """A read-cache entry's weight: its content's bytes."""
    return len(entry[0])

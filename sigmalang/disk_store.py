"""`DiskRSUStore`: the per-tenant RSU store in one SQLite file, persistent across processes and restarts.

See `sigmalang.store` for the rules. SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed
write survives a process crash; a power loss may lose the last transactions but never corrupts the
file (https://www.sqlite.org/wal.html). Content read back is re-hashed and compared with its id, so a
damaged file raises `RSUStoreError` instead of yielding wrong bytes.

Given a `sigmalang.sealing.ChunkSealer`, the store keeps content sealed and rows under per-tenant keyed
ids (see `sigmalang.sealing`); a file is either sealed or not for its whole life (recorded in it; opening
it the other way raises `RSUStoreError`). Byte counts (retention, `stats`) are of the **stored** bytes:
the sealed length when sealed (content + 32 bytes per RSU with the vault's AES-GCM), else the content's.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

from sigmalang._sqlite_file import SCHEMA, WAL_CHECKPOINT_PAGES, SQLiteRSUFile
from sigmalang.chunking import rsu_id as compute_rsu_id
from sigmalang.errors import MissingRSUError, RSUStoreError
from sigmalang.sealing import ChunkSealer, row_aad, row_id
from sigmalang.store import GCResult, Retention, StoreStats, check_rsu_ids

__all__ = ("DiskRSUStore",)

_TOUCH_S = 60.0
"""An RSU's last use is rewritten only when older than this (or a tenth of the maximum age, if
shorter), seconds: most reads stay read-only transactions."""


def _marks(n: int) -> str:
    """``?, ?, ...`` for `n` bound parameters (only placeholders are formatted into SQL)."""
    return ", ".join("?" * n)


def _by_ids(
    db: sqlite3.Connection, tenant: str, row_ids: Sequence[bytes]
) -> Iterator[tuple[int, bytes, float]]:
    """``(seq, row id, last use)`` of the tenant's RSUs among `row_ids`: one query per 500 ids.

    Through the ``(tenant, id)`` index, named: without statistics SQLite would rather scan the tenant's
    rows by primary key (8 ids among 3,000 RSUs: 325 µs instead of 14), linear in the tenant's store.
    """
    for start in range(0, len(row_ids), 500):  # SQLite's default limit is 999 bound parameters
        part = row_ids[start : start + 500]
        query = f"SELECT seq, id, used FROM rsu_v3 INDEXED BY rsu_v3_id WHERE tenant = ? AND id IN ({_marks(len(part))})"  # noqa: E501, S608
        for seq, rid, used in db.execute(query, (tenant, *part)):
            yield int(seq), bytes(rid), float(used)


class DiskRSUStore(SQLiteRSUFile):
    """A persistent, thread-safe, per-tenant, bounded `RSUStore` in a SQLite database file.

    Args:
        path: Database file; created with its parent directories if missing.
        retention: Bytes and age kept per tenant; default `Retention()`.
        verify: Re-hash content on every read and compare with its id.
        clock: Seconds since the Unix epoch (tests pass a fake one to age RSUs).
        sealer: Seals content at rest with the tenant's key and keys row ids per tenant; None stores
            content and content ids as they are.

    Raises:
        RSUStoreError: The file was written sealed and ``sealer`` is None, or the other way round.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention: Retention | None = None,
        verify: bool = True,
        clock: Callable[[], float] = time.time,
        sealer: ChunkSealer | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention = retention or Retention()
        self._verify = verify
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0  # open transactions of the thread holding the lock (nested ones do not commit)
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint every 32 MiB of WAL instead of 4 MiB: the pages every message rewrites (reference
        # counts, indexes) are copied back once per checkpoint, and a checkpoint syncs the file. This
        # halved the time in COMMIT when compressing the benchmark's sessions (profiled).
        self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        self._conn.executescript(SCHEMA)
        self._cache = self._read_cache()
        self._age_swept: dict[str, float] = {}  # tenant -> when its RSUs were last evicted by age
        self._tenants = {}
        self._sealer = sealer
        self._check_mode()

    @property
    def _touch_s(self) -> float:
        age = self.retention.max_age_s
        return _TOUCH_S if age is None else min(_TOUCH_S, age / 10)

    def _evict(self, db: sqlite3.Connection, tenant: str, keep: set[int], row: list[int]) -> None:
        """Evict by age (at most once per `_touch_s` per tenant, the precision of last uses), then bytes.

        Args:
            db: The connection, inside a write transaction.
            tenant: The tenant.
            keep: Sequence numbers never to evict (the message being stored).
            row: The tenant's `_tenant_row` (its stored bytes and evictions are counted there).
        """
        total = row[1]
        now = self._clock()
        victims: list[tuple[int, int]] = []
        swept = self._age_swept.get(tenant)
        if self.retention.max_age_s is not None and (swept is None or not 0 <= now - swept < self._touch_s):
            self._age_swept[tenant] = now
            victims += [
                (int(seq), int(size))
                for seq, size in db.execute(
                    "SELECT seq, size FROM rsu_v3 WHERE tenant = ? AND used < ? AND pinned = 0",
                    (tenant, now - self.retention.max_age_s),
                )
                if int(seq) not in keep
            ]
        total -= sum(size for _, size in victims)
        if total > self.retention.max_bytes:
            chosen = {seq for seq, _ in victims}
            for seq, size in db.execute(
                "SELECT seq, size FROM rsu_v3 WHERE tenant = ? AND pinned = 0 "
                "ORDER BY refcount > 0, used, seq",
                (tenant,),
            ):
                if total <= self.retention.max_bytes:
                    break
                if seq in keep or seq in chosen:
                    continue
                victims.append((int(seq), int(size)))
                total -= int(size)
        if victims:
            self._remove(db, tenant, [s for s, _ in victims])
            row[1] -= sum(size for _, size in victims)
            row[2] += len(victims)

    def put_many(
        self, tenant: str, items: Sequence[tuple[bytes, bytes | memoryview]]
    ) -> list[tuple[int, bool]]:
        """See `RSUStore.put_many`."""
        check_rsu_ids(items)
        out: list[tuple[int, bool]] = []
        now = self._clock()
        with self._tx() as db:
            ids_of = self._row_ids(db, tenant, create=True)
            assert ids_of is not None  # noqa: S101 - created
            tenant_row = self._tenant_row(db, tenant)
            next_seq = tenant_row[0]
            known: dict[bytes, tuple[int, float]] = {}
            rids = [ids_of(bytes(i)) for i, _ in items]
            for seq, rid, used in _by_ids(db, tenant, list(dict.fromkeys(rids))):
                known[rid] = (seq, used)
            rows = []
            contents = []
            plains: list[tuple[int, bytes]] = []
            added = 0
            for rid, (_, data) in zip(rids, items, strict=True):
                found = known.get(rid)
                if found is None:
                    plain = bytes(data)
                    stored = plain if self._sealer is None else self._sealer.seal(tenant, row_aad(rid), plain)
                    rows.append((tenant, next_seq, rid, len(stored), now))
                    contents.append((tenant, next_seq, stored))
                    plains.append((next_seq, plain))
                    known[rid] = (next_seq, now)
                    out.append((next_seq, True))
                    added += len(stored)
                    next_seq += 1
                else:
                    out.append((found[0], False))
            if rows:
                db.executemany("INSERT INTO rsu_v3 (tenant, seq, id, size, used) VALUES (?,?,?,?,?)", rows)
                db.executemany("INSERT INTO rsu_data_v3 (tenant, seq, data) VALUES (?, ?, ?)", contents)
            for seq, plain in plains:
                self._remember(tenant, seq, plain, now)
            stale = [(now, tenant, seq) for seq, used in known.values() if used < now - self._touch_s]
            if stale:
                db.executemany("UPDATE rsu_v3 SET used = ? WHERE tenant = ? AND seq = ?", stale)
            tenant_row[0] = next_seq
            tenant_row[1] += added
            self._evict(db, tenant, {s for s, _ in out}, tenant_row)
        return out

    def seqs(self, tenant: str, rsu_ids: Iterable[bytes]) -> dict[bytes, int]:
        """See `RSUStore.seqs` (one query per 500 ids)."""
        out: dict[bytes, int] = {}
        with self._tx(write=False) as db:
            ids = self._row_ids(db, tenant, create=False)
            if ids is None:
                return out
            content_of = {ids(i): i for i in rsu_ids}  # row id -> content id
            for seq, rid, _ in _by_ids(db, tenant, list(content_of)):
                out[content_of[rid]] = seq
        return out

    def get_many(self, tenant: str, seqs: Sequence[int]) -> list[bytes]:
        """See `RSUStore.get_many` (a last use is rewritten only when older than a minute).

        When every RSU is in the read cache with a fresh last use (an unsealed store), one pass over
        `seqs` under the lock answers, with no SQL and no sets: how a process reads what it recently
        stored or read (the frames it decodes right after making them; a base's manifest and RSUs).
        """
        now = self._clock()
        if self._sealer is None:  # (sealed: the tenant's key is checked in the file first, below)
            fresh = now - self._touch_s
            hits: list[bytes] = []
            append = hits.append
            cache = self._cache
            with self._lock:
                try:
                    for seq in seqs:
                        data, used = cache[(tenant, seq)]  # (a hit becomes the most recently used)
                        if used < fresh:
                            break
                        append(data)
                    else:
                        return hits
                except KeyError:  # (not cached: read below)
                    pass
        found: dict[int, bytes] = {}
        key: bytes | None = None
        if self._sealer is not None:  # checks the tenant's key is alive before any cached content is used
            with self._tx(write=False) as db:  # upgraded to a write only to drop a shredded tenant
                key = self._id_key(db, tenant, create=False)
            if key is None:
                raise MissingRSUError(seq=seqs[0] if seqs else None)
        fresh = now - self._touch_s  # (a property: computed once, not per RSU)
        with self._lock:
            for seq in set(seqs):
                try:  # (faster than `get` for a hit, which becomes the most recently used)
                    hit = self._cache[(tenant, seq)]
                except KeyError:
                    continue
                if hit[1] >= fresh:
                    found[seq] = hit[0]
        wanted = sorted(set(seqs) - found.keys())
        if not wanted:
            return [found[s] for s in seqs]
        stale: list[int] = []
        with self._tx(write=False) as db:  # upgraded to a write only when a last use is stale
            for seq, rsu_id, data, used in db.execute(
                "SELECT m.seq, m.id, d.data, m.used FROM rsu_v3 AS m JOIN rsu_data_v3 AS d "
                "ON d.tenant = m.tenant AND d.seq = m.seq "
                "WHERE m.tenant = ? AND m.seq IN (SELECT value FROM json_each(?))",
                (tenant, str(wanted)),
            ):
                plain = bytes(data) if key is None else self._open_row(tenant, bytes(rsu_id), bytes(data))
                expected = compute_rsu_id(plain) if key is None else row_id(key, compute_rsu_id(plain))
                if self._verify and expected != rsu_id:
                    raise RSUStoreError(f"content of RSU {bytes(rsu_id).hex()} in {self.path} fails its hash")
                found[int(seq)] = plain
                if used < now - self._touch_s:
                    stale.append(int(seq))
                self._remember(tenant, int(seq), found[int(seq)], now if used < now - self._touch_s else used)
            for seq in wanted:
                if seq not in found:
                    raise MissingRSUError(seq=seq)
            if stale:
                rows = [(now, tenant, s) for s in stale]
                db.executemany("UPDATE rsu_v3 SET used = ? WHERE tenant = ? AND seq = ?", rows)
        return [found[s] for s in seqs]

    def _open_row(self, tenant: str, rid: bytes, blob: bytes) -> bytes:
        """A sealed row's content; `RSUStoreError` if it does not open (altered, or its key is gone)."""
        assert self._sealer is not None  # noqa: S101 - only called when sealed
        try:
            return self._sealer.open(tenant, row_aad(rid), blob)
        except (LookupError, ValueError) as exc:
            raise RSUStoreError(
                f"sealed RSU {rid.hex()} of tenant {tenant!r} in {self.path} does not open: {exc}"
            ) from exc

    def acquire(self, tenant: str, seqs: Iterable[int]) -> frozenset[int]:
        """See `RSUStore.acquire`.

        One ``UPDATE`` per 500 sequence numbers counts the present RSUs up; only when it counted fewer
        than asked does a ``SELECT`` say which (an ``UPDATE ... RETURNING`` costs twice as much for
        the usual case, all present: 10 RSUs in 60 µs against 25-35).
        """
        wanted = sorted(set(seqs))
        with self._tx() as db:  # even with nothing wanted: a closed store refuses
            counted = 0
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                counted += db.execute(
                    f"UPDATE rsu_v3 SET refcount = refcount + 1 WHERE tenant = ? AND seq IN ({_marks(len(part))})",  # noqa: E501, S608
                    (tenant, *part),
                ).rowcount
            if counted == len(wanted):
                return frozenset(wanted)
            return frozenset(
                int(r[0])
                for r in db.execute(
                    "SELECT seq FROM rsu_v3 WHERE tenant = ? AND seq IN (SELECT value FROM json_each(?))",
                    (tenant, str(wanted)),
                )
            )

    def release(self, tenant: str, seqs: Iterable[int]) -> None:
        """See `RSUStore.release`."""
        wanted = sorted(set(seqs))
        with self._tx() as db:
            rows = db.execute(
                "SELECT seq, id, refcount FROM rsu_v3 WHERE tenant = ? "
                "AND seq IN (SELECT value FROM json_each(?))",
                (tenant, str(wanted)),
            ).fetchall()
            for _, rsu_id, count in rows:
                if count <= 0:
                    raise RSUStoreError(f"release of RSU {bytes(rsu_id).hex()} whose reference count is 0")
            db.executemany(
                "UPDATE rsu_v3 SET refcount = refcount - 1 WHERE tenant = ? AND seq = ?",
                [(tenant, r[0]) for r in rows],
            )

    def refcount(self, tenant: str, rsu_id: bytes) -> int:
        """See `RSUStore.refcount`."""
        with self._tx(write=False) as db:
            return self._row(db, tenant, "refcount", rsu_id)

    def pin(self, tenant: str, rsu_id: bytes, pinned: bool = True) -> None:
        """See `RSUStore.pin`."""
        with self._tx() as db:
            ids = self._row_ids(db, tenant, create=False)
            cur = (
                None
                if ids is None
                else db.execute(
                    "UPDATE rsu_v3 SET pinned = ? WHERE tenant = ? AND id = ?",
                    (int(pinned), tenant, ids(rsu_id)),
                )
            )
            if cur is None or cur.rowcount == 0:
                raise MissingRSUError(rsu_id)

    def is_pinned(self, tenant: str, rsu_id: bytes) -> bool:
        """See `RSUStore.is_pinned`."""
        with self._tx(write=False) as db:
            return bool(self._row(db, tenant, "pinned", rsu_id))

    def collect_garbage(self, tenant: str) -> GCResult:
        """See `RSUStore.collect_garbage`."""
        with self._tx() as db:
            return self._delete(db, tenant, " AND refcount = 0 AND pinned = 0")

    def drop_tenant(self, tenant: str) -> GCResult:
        """See `RSUStore.drop_tenant` (the tenant's next sequence number is kept: never reused)."""
        with self._tx() as db:
            db.execute("DELETE FROM tenant_key_v1 WHERE tenant = ?", (tenant,))
            return self._delete(db, tenant, "")

    def stats(self, tenant: str) -> StoreStats:
        """See `RSUStore.stats`."""
        with self._tx(write=False) as db:
            self._write_tenants(db)  # within a write transaction: what it changed so far
            rsus, size, referenced, pinned = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(refcount > 0), 0), "
                "COALESCE(SUM(pinned != 0), 0) FROM rsu_v3 WHERE tenant = ?",
                (tenant,),
            ).fetchone()
            row = db.execute("SELECT evicted FROM tenant_v2 WHERE tenant = ?", (tenant,)).fetchone()
        return StoreStats(
            rsus=int(rsus),
            bytes=int(size),
            referenced=int(referenced),
            pinned=int(pinned),
            evicted=int(row[0]) if row else 0,
        )

    def __enter__(self) -> DiskRSUStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

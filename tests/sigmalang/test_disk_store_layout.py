"""`DiskRSUStore`'s file: bookkeeping apart from content, files of the earlier one-table layout converted."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from sigmalang import DiskRSUStore, MissingRSUError, SigmaCodec
from sigmalang.chunking import rsu_id

T = "acme"
A, B = b"a" * 3000 + b"end of a", b"b" * 5000 + b"end of b"

V2_SCHEMA = """
CREATE TABLE rsu_v2 (
    tenant TEXT NOT NULL, seq INTEGER NOT NULL, id BLOB NOT NULL, data BLOB NOT NULL,
    refcount INTEGER NOT NULL DEFAULT 0 CHECK (refcount >= 0), pinned INTEGER NOT NULL DEFAULT 0,
    used REAL NOT NULL, PRIMARY KEY (tenant, seq)
);
CREATE UNIQUE INDEX rsu_v2_id ON rsu_v2 (tenant, id);
CREATE TABLE tenant_v2 (
    tenant TEXT PRIMARY KEY, next_seq INTEGER NOT NULL, evicted INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE meta_v1 (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta_v1 VALUES ('content', 'plain');
"""


def test_a_file_of_the_one_table_layout_is_converted_with_counts_pins_and_sequence_numbers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rsu.db"
    with sqlite3.connect(path) as db:
        db.executescript(V2_SCHEMA)
        now = time.time()
        db.executemany(
            "INSERT INTO rsu_v2 (tenant, seq, id, data, refcount, pinned, used) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(T, 1, rsu_id(A), A, 2, 0, now), (T, 3, rsu_id(B), B, 0, 1, now)],
        )
        db.execute("INSERT INTO tenant_v2 (tenant, next_seq, bytes) VALUES (?, 4, ?)", (T, len(A) + len(B)))
    db.close()
    with DiskRSUStore(path) as store:
        assert store.get_many(T, [3, 1]) == [B, A]
        assert store.refcount(T, rsu_id(A)) == 2 and store.is_pinned(T, rsu_id(B))
        stats = store.stats(T)
        assert (stats.rsus, stats.bytes, stats.referenced, stats.pinned) == (2, len(A) + len(B), 1, 1)
        assert store.seqs(T, [rsu_id(A), rsu_id(B), rsu_id(b"absent")]) == {rsu_id(A): 1, rsu_id(B): 3}
        assert store.put_many(T, [(rsu_id(b"new"), b"new")]) == [(4, True)]  # numbering goes on
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert "rsu_v2" not in tables and {"rsu_v3", "rsu_data_v3"} <= tables


def test_garbage_collection_and_eviction_remove_content_rows_too(tmp_path: Path) -> None:
    path = tmp_path / "rsu.db"
    with DiskRSUStore(path) as store:
        codec = SigmaCodec(store=store)
        first = codec.compress(A + B, tenant=T)
        codec.release(first.frame, tenant=T)
        removed = store.collect_garbage(T)
        assert removed.removed >= 1 and store.stats(T).rsus == 0
        with pytest.raises(MissingRSUError):
            store.get_many(T, [1])
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM rsu_data_v3").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM rsu_v3").fetchone() == (0,)
    db.close()

"""The read cache of verified RSU content in front of a persistent RSU store (`cachetools.LRUCache`).

`check_read_cache` is the one check, run here against `DiskRSUStore` and in
``tests/agents/test_rsu_store_jetstream.py`` against the JetStream store, each with its byte bound
lowered to :data:`BOUND` for the test.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pytest

from sigmalang import DiskRSUStore, RSUStore
from sigmalang import _sqlite_file as sqlite_file
from sigmalang.chunking import rsu_id

A, B, C = b"alpha " * 40, b"bravo " * 40, b"charlie " * 40  # 240, 240 and 320 bytes
BIG = b"0123456789" * 100  # 1,000 bytes: more than the whole cache
T = "tenant-a"
BOUND = 600
"""Bytes of content the cache holds in these tests: A and B, or A or B with C, never all three."""


def check_read_cache(store: RSUStore, cache: Collection[tuple[str, int]]) -> None:
    """Least recently used content leaves first within :data:`BOUND`; content over it is never kept.

    Args:
        store: A fresh store whose read cache holds at most :data:`BOUND` bytes.
        cache: Its read cache (keys ``(tenant, seq)``).
    """
    assert store.put_many(T, [(rsu_id(A), A), (rsu_id(B), B)]) == [(1, True), (2, True)]
    assert set(cache) == {(T, 1), (T, 2)}  # what was stored is cached for the reads that follow
    assert store.get_many(T, [1]) == [A]  # A is now the most recently used
    store.put_many(T, [(rsu_id(C), C)])
    assert set(cache) == {(T, 1), (T, 3)}  # B, the least recently used, left for C
    assert store.get_many(T, [2]) == [B]  # read from the store itself, and cached again
    assert set(cache) == {(T, 3), (T, 2)}  # A left this time
    assert store.put_many(T, [(rsu_id(BIG), BIG)]) == [(4, True)]
    assert store.get_many(T, [4]) == [BIG]
    assert set(cache) == {(T, 3), (T, 2)}  # too big to keep, and nothing else was dropped for it
    assert store.get_many(T, [1, 2, 3, 4]) == [A, B, C, BIG]


def test_disk_store_read_cache_is_least_recently_used_within_its_byte_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_file, "_CACHE_BYTES", BOUND)
    with DiskRSUStore(tmp_path / "rsu.db") as store:
        check_read_cache(store, store._cache)
        assert store._cache.currsize <= BOUND
    assert len(store._cache) == 0  # closing drops the cached content


def test_a_rolled_back_transaction_leaves_nothing_in_the_read_cache(tmp_path: Path) -> None:
    with DiskRSUStore(tmp_path / "rsu.db") as store:
        with pytest.raises(RuntimeError), store.transaction():
            store.put_many(T, [(rsu_id(A), A)])
            assert set(store._cache) == {(T, 1)}
            raise RuntimeError("abandon the block")
        assert len(store._cache) == 0  # the RSU never reached the file, so it is not served either
        assert store.put_many(T, [(rsu_id(B), B)]) == [(1, True)]
        assert store.get_many(T, [1]) == [B]

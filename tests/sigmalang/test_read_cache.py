"""The read cache of verified RSU content in front of a persistent RSU store (`cachetools.LRUCache`).

`check_read_cache` is the one check, run here against `DiskRSUStore` and in
``tests/agents/test_rsu_store_jetstream.py`` against the JetStream store, each with its byte bound
lowered to :data:`BOUND` for the test.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Collection
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigmalang import DiskRSUStore, MissingRSUError, Retention, RSUStore, SigmaCodec
from sigmalang import _sqlite_file as sqlite_file
from sigmalang.chunking import rsu_id
from tests.sigmalang.conftest import FakeClock

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


def _statements(store: DiskRSUStore) -> list[str]:
    """Every SQL statement the store's connection runs from now on (appended as they run)."""
    ran: list[str] = []
    assert store._conn is not None
    store._conn.set_trace_callback(ran.append)
    return ran


def _session(rng: random.Random, turns: int) -> list[bytes]:
    """Turns of one agent session: a system prompt, a growing (or sliding) history, a per-turn header."""
    words = "agent tool schema result retry vector tenant token cache the of to and plan step".split()
    history = [" ".join(rng.choices(words, k=500)).encode()]
    out = []
    for turn in range(turns):
        history.append(" ".join(rng.choices(words, k=rng.randint(5, 120))).encode())
        window = history[:1] + history[-3:] if rng.random() < 0.5 else history
        out.append(b"turn %d\n" % turn + b"\n".join(window))
    return out


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=8)
def test_cached_reads_give_what_the_file_gives_and_run_no_sql(seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rsu.db"
        with DiskRSUStore(path) as store:
            codec = SigmaCodec(store=store, secret=b"k" * 32)
            turns = _session(rng, rng.randint(2, 6))
            frames = [codec.compress(t, tenant=T, stream="s").frame for t in turns]
            held = store.stats(T).rsus
            wanted = [rng.randint(1, held) for _ in range(rng.randint(1, 3 * held))]  # repeats too
            ran = _statements(store)
            hot = store.get_many(T, wanted)
            assert [codec.decompress(f, tenant=T) for f in frames] == turns
            assert ran == []  # every read was answered by the read cache
        with DiskRSUStore(path) as cold:  # a new process: an empty cache, every read from the file
            ran = _statements(cold)
            assert cold.get_many(T, wanted) == hot
            assert any("SELECT" in s for s in ran)
            codec = SigmaCodec(store=cold, secret=b"k" * 32)
            assert [codec.decompress(f, tenant=T) for f in frames] == turns


def test_a_cached_rsu_of_one_tenant_is_never_read_as_another_tenants(tmp_path: Path) -> None:
    with DiskRSUStore(tmp_path / "rsu.db") as store:
        store.put_many(T, [(rsu_id(A), A), (rsu_id(B), B)])
        assert {(T, 1), (T, 2)} <= set(store._cache)
        with pytest.raises(MissingRSUError) as caught:
            store.get_many("tenant-b", [1])
        assert caught.value.seq == 1
        store.put_many("tenant-b", [(rsu_id(C), C)])  # tenant-b's own sequence number 1
        assert store.get_many("tenant-b", [1]) == [C]
        assert store.get_many(T, [1, 2]) == [A, B]
        with pytest.raises(MissingRSUError):  # one absent number fails the whole read
            store.get_many("tenant-b", [1, 2])


def test_an_evicted_or_collected_rsu_is_missing_not_served_from_the_cache(tmp_path: Path) -> None:
    clock = FakeClock()
    with DiskRSUStore(tmp_path / "rsu.db", retention=Retention(max_bytes=500), clock=clock) as store:
        store.put_many(T, [(rsu_id(A), A)])
        store.put_many(T, [(rsu_id(B), B)])
        clock.now += 1
        store.put_many(T, [(rsu_id(C), C)])  # 800 bytes held: A and B, least recently used, leave
        assert store.stats(T).evicted == 2
        for seq in (1, 2):
            with pytest.raises(MissingRSUError) as caught:
                store.get_many(T, [3, seq])
            assert caught.value.seq == seq
        assert store.get_many(T, [3]) == [C]
        store.collect_garbage(T)  # C is unreferenced
        with pytest.raises(MissingRSUError):
            store.get_many(T, [3])


def test_a_cached_read_after_a_minute_rewrites_the_last_use(tmp_path: Path) -> None:
    clock = FakeClock()
    with DiskRSUStore(tmp_path / "rsu.db", clock=clock) as store:
        store.put_many(T, [(rsu_id(A), A)])
        ran = _statements(store)
        assert store.get_many(T, [1]) == [A]
        assert ran == []  # fresh in the cache: nothing to write
        clock.now += 61  # older than a minute: the read counts as use in the file too
        assert store.get_many(T, [1]) == [A]
        assert any(s.startswith("UPDATE rsu_v3 SET used") for s in ran)
        assert store._conn is not None
        assert store._conn.execute("SELECT used FROM rsu_v3 WHERE seq = 1").fetchone()[0] == clock.now

"""One contract, run against every RSUStore implementation (the `store` / `make_store` fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigmalang import DiskRSUStore, MissingRSUError, Retention, RSUStore, RSUStoreError, SigmaCodec
from sigmalang.chunking import rsu_id
from tests.sigmalang.conftest import FakeClock, MakeStore

A, B, C = b"alpha " * 40, b"bravo " * 40, b"charlie " * 40
IA, IB, IC = rsu_id(A), rsu_id(B), rsu_id(C)
T, U = "tenant-a", "tenant-b"


def test_put_keeps_sequence_numbers_and_get_returns_the_bytes(store: RSUStore) -> None:
    assert store.put_many(T, [(IA, A), (IB, B)]) == [(1, True), (2, True)]
    assert store.put_many(T, [(IA, A), (IC, C)]) == [(1, False), (3, True)]
    assert store.get_many(T, [3, 1]) == [C, A]
    assert store.seqs(T, [IA, IB, rsu_id(b"absent")]) == {IA: 1, IB: 2}
    stats = store.stats(T)
    assert (stats.rsus, stats.bytes, stats.referenced, stats.pinned) == (3, len(A) + len(B) + len(C), 0, 0)


def test_tenants_are_isolated(store: RSUStore) -> None:
    store.put_many(T, [(IA, A)])
    assert store.seqs(U, [IA]) == {}  # tenant B cannot learn that A holds this content
    with pytest.raises(MissingRSUError):
        store.get_many(U, [1])
    assert store.put_many(U, [(IA, A)]) == [(1, True)]  # B's own copy, its own numbering
    store.drop_tenant(T)
    assert store.get_many(U, [1]) == [A]
    assert store.stats(T).rsus == 0


def test_missing_rsu_is_named(store: RSUStore) -> None:
    with pytest.raises(MissingRSUError) as caught:
        store.get_many(T, [7])
    assert caught.value.seq == 7 and "#7" in str(caught.value) and "evicted" in str(caught.value)
    with pytest.raises(MissingRSUError):
        store.refcount(T, IC)
    with pytest.raises(MissingRSUError):
        store.pin(T, IC)


def test_acquire_counts_present_seqs_once_per_call(store: RSUStore) -> None:
    store.put_many(T, [(IA, A), (IB, B)])
    assert store.acquire(T, [1, 1, 9]) == frozenset({1})
    assert store.acquire(T, [1, 2]) == frozenset({1, 2})
    assert (store.refcount(T, IA), store.refcount(T, IB)) == (2, 1)
    store.release(T, [1])
    assert store.refcount(T, IA) == 1


def test_release_below_zero_fails_and_changes_nothing(store: RSUStore) -> None:
    store.put_many(T, [(IA, A), (IB, B)])
    store.acquire(T, [1])
    with pytest.raises(RSUStoreError):
        store.release(T, [1, 2])
    assert store.refcount(T, IA) == 1
    store.release(T, [1, 99])  # an evicted (absent) RSU is skipped: its count went with it
    assert store.refcount(T, IA) == 0


def test_gc_removes_only_unreferenced_unpinned(store: RSUStore) -> None:
    store.put_many(T, [(IA, A), (IB, B), (IC, C)])
    store.acquire(T, [1])
    store.pin(T, IB)
    result = store.collect_garbage(T)
    assert (result.removed, result.bytes_freed) == (1, len(C))
    assert store.seqs(T, [IA, IB, IC]) == {IA: 1, IB: 2}
    assert store.is_pinned(T, IB) and not store.is_pinned(T, IA)
    store.release(T, [1])
    store.pin(T, IB, False)
    assert store.collect_garbage(T).removed == 2
    assert store.stats(T).rsus == 0


def test_retention_by_bytes_evicts_least_recently_used_unreferenced_first(make_store: MakeStore) -> None:
    clock = FakeClock()
    store = make_store(Retention(max_bytes=len(A) + len(C) + 10, max_age_s=None), clock)
    store.put_many(T, [(IA, A)])
    clock.now += 1
    store.put_many(T, [(IB, B)])
    store.acquire(T, [1])  # A is referenced by a frame: evicted only after unreferenced ones
    clock.now += 1
    store.put_many(T, [(IC, C)])  # over the limit: B (unreferenced) goes, A stays
    assert store.seqs(T, [IA, IB, IC]) == {IA: 1, IC: 3}
    assert store.stats(T).evicted == 1
    big = b"delta " * 80
    store.put_many(T, [(rsu_id(big), big)])  # over again: C (unreferenced), then the referenced A
    assert store.stats(T).evicted == 3
    assert IA not in store.seqs(T, [IA])
    with pytest.raises(MissingRSUError):
        store.get_many(T, [1])
    assert store.put_many(T, [(IA, A)])[0] == (5, True)  # sequence numbers are never reused
    assert store.stats(U).rsus == 0  # retention is per tenant


def test_retention_by_age_spares_pinned(make_store: MakeStore) -> None:
    clock = FakeClock()
    store = make_store(Retention(max_bytes=1 << 30, max_age_s=60.0), clock)
    store.put_many(T, [(IA, A), (IB, B)])
    store.pin(T, IB)
    clock.now += 30
    store.get_many(T, [1])  # a read counts as use
    clock.now += 45
    store.put_many(T, [(IC, C)])
    assert store.seqs(T, [IA, IB, IC]) == {IA: 1, IB: 2, IC: 3}
    clock.now += 61
    store.put_many(T, [(IC, C)])
    assert store.seqs(T, [IA, IB, IC]) == {IB: 2, IC: 3}


def test_closed_store_refuses_work(store: RSUStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(RSUStoreError):
        store.put_many(T, [(IA, A)])


def test_codec_frames_hold_references_until_released(store: RSUStore) -> None:
    codec = SigmaCodec(store=store)
    doc = b"".join(b"line %d of the document, value %d\n" % (i, i * i) for i in range(600))
    codec.compress(doc, tenant=T)
    second = codec.compress(doc + b"tail", tenant=T)
    refs = codec.inspect(second.frame, tenant=T).context
    assert refs and store.stats(T).referenced == len(set(refs))
    store.collect_garbage(T)
    assert codec.decompress(second.frame, tenant=T) == doc + b"tail"  # GC kept what the frame needs
    codec.release(second.frame, tenant=T)
    with pytest.raises(RSUStoreError):
        codec.release(second.frame, tenant=T)  # double release
    store.collect_garbage(T)
    assert store.stats(T).rsus == 0
    with pytest.raises(MissingRSUError):
        codec.decompress(second.frame, tenant=T)


def test_pinned_content_is_used_and_survives_gc(store: RSUStore) -> None:
    codec = SigmaCodec(store=store)
    system_prompt = b"".join(
        b"Rule %d: follow tool schema %d exactly, answer in %d words. " % (i, i * 7, i % 13)
        for i in range(120)
    )
    pinned = codec.pin(system_prompt, tenant=T)
    assert pinned and all(store.is_pinned(T, i) for i in pinned)
    store.collect_garbage(T)
    result = codec.compress(system_prompt + b" user: hi", tenant=T)
    assert result.report.glyphs >= 1 and result.report.ratio > 50
    assert codec.decompress(result.frame, tenant=T) == system_prompt + b" user: hi"


def test_disk_store_persists_and_detects_damage(tmp_path: Path) -> None:
    path = tmp_path / "rsu.db"
    with DiskRSUStore(path) as store:
        store.put_many(T, [(IA, A), (IB, B)])
        store.acquire(T, [1])
        store.pin(T, IB)
    with DiskRSUStore(path) as store:
        assert store.refcount(T, IA) == 1 and store.is_pinned(T, IB)
        assert store.get_many(T, [1]) == [A]
        assert store.put_many(T, [(IC, C)]) == [(3, True)]
        assert store._conn is not None
        store._conn.execute("UPDATE rsu_data_v3 SET data = ? WHERE seq = 2", (b"tampered",))  # not read yet
        with pytest.raises(RSUStoreError, match="fails its hash"):
            store.get_many(T, [2])


def test_disk_store_transaction_commits_once_and_rolls_back_as_a_whole(tmp_path: Path) -> None:
    a, b = b"a" * 300, b"b" * 300
    with DiskRSUStore(tmp_path / "rsu.db") as disk:
        with disk.transaction():
            [(seq_a, _)] = disk.put_many("t", [(rsu_id(a), a)])
            assert disk.acquire("t", [seq_a]) == {seq_a}  # nested calls see the block's writes
        with pytest.raises(RuntimeError, match="boom"), disk.transaction():
            disk.put_many("t", [(rsu_id(b), b)])
            disk.release("t", [seq_a])
            raise RuntimeError("boom")
    with DiskRSUStore(tmp_path / "rsu.db") as reopened:
        assert reopened.seqs("t", [rsu_id(a), rsu_id(b)]) == {rsu_id(a): seq_a}
        assert reopened.refcount("t", rsu_id(a)) == 1  # the release was rolled back with the put


def test_disk_store_counts_of_a_transaction_are_written_once_and_survive_reopening(tmp_path: Path) -> None:
    """Sequence numbers, stored bytes and evictions kept in memory during a transaction reach the file."""
    path = tmp_path / "rsu.db"
    chunks = [bytes([65 + i]) * 300 for i in range(6)]
    with DiskRSUStore(path, retention=Retention(max_bytes=1000, max_age_s=None)) as disk:
        with disk.transaction():
            seqs = [disk.put_many(T, [(rsu_id(c), c)])[0][0] for c in chunks]
            disk.put_many(U, [(IA, A)])
            assert disk.stats(T).evicted == 3  # read inside the block: its counts so far
        with pytest.raises(RuntimeError, match="boom"), disk.transaction():
            disk.put_many(T, [(IB, B)])
            raise RuntimeError("boom")
        assert seqs == [1, 2, 3, 4, 5, 6]
        assert disk.put_many(T, [(IC, C)]) == [(7, True)]  # the rolled-back block's number is unused
    with DiskRSUStore(path, retention=Retention(max_bytes=1000, max_age_s=None)) as reopened:
        stats = reopened.stats(T)
        assert (stats.evicted, stats.rsus, stats.bytes) == (4, 3, 300 + 300 + len(C))
        assert reopened.put_many(T, [(IB, B)]) == [(8, True)]
        assert reopened.put_many(U, [(IB, B)]) == [(2, True)]
        reopened.drop_tenant(T)
        assert reopened.put_many(T, [(IA, A)]) == [(9, True)]  # numbers are never reused

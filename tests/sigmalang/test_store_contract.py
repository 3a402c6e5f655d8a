"""One contract, run against every RSUStore implementation (the `store` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigmalang import DiskRSUStore, MissingRSUError, RSUStore, RSUStoreError, SigmaCodec, inspect_frame
from sigmalang.chunking import rsu_id

A, B, C = b"alpha " * 40, b"bravo " * 40, b"charlie " * 40
IA, IB, IC = rsu_id(A), rsu_id(B), rsu_id(C)


def test_put_get_and_contains(store: RSUStore) -> None:
    assert store.put_many([(IA, A), (IB, B)]) == 2
    assert store.put_many([(IA, A)]) == 0
    assert IA in store and IC not in store
    assert store.get_many([IA, IB]) == {IA: A, IB: B}
    stats = store.stats()
    assert (stats.rsus, stats.bytes, stats.referenced, stats.pinned) == (2, len(A) + len(B), 0, 0)


def test_missing_rsu_is_named(store: RSUStore) -> None:
    with pytest.raises(MissingRSUError) as caught:
        store.get_many([IC])
    assert caught.value.rsu_id == IC
    with pytest.raises(MissingRSUError):
        store.refcount(IC)
    with pytest.raises(MissingRSUError):
        store.pin(IC)


def test_acquire_counts_present_ids_once_per_call(store: RSUStore) -> None:
    store.put_many([(IA, A), (IB, B)])
    assert store.acquire([IA, IA, IC]) == frozenset({IA})
    assert store.acquire([IA, IB]) == frozenset({IA, IB})
    assert (store.refcount(IA), store.refcount(IB)) == (2, 1)
    store.release([IA])
    assert store.refcount(IA) == 1


def test_release_below_zero_fails_and_changes_nothing(store: RSUStore) -> None:
    store.put_many([(IA, A), (IB, B)])
    store.acquire([IA])
    with pytest.raises(RSUStoreError):
        store.release([IA, IB])
    assert store.refcount(IA) == 1
    with pytest.raises(MissingRSUError):
        store.release([IA, IC])
    assert store.refcount(IA) == 1


def test_gc_removes_only_unreferenced_unpinned(store: RSUStore) -> None:
    store.put_many([(IA, A), (IB, B), (IC, C)])
    store.acquire([IA])
    store.pin(IB)
    result = store.collect_garbage()
    assert (result.removed, result.bytes_freed) == (1, len(C))
    assert IA in store and IB in store and IC not in store
    assert store.is_pinned(IB) and not store.is_pinned(IA)
    store.release([IA])
    store.pin(IB, False)
    assert store.collect_garbage().removed == 2
    assert store.stats().rsus == 0


def test_closed_store_refuses_work(store: RSUStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(RSUStoreError):
        store.put_many([(IA, A)])


def test_codec_frames_hold_references_until_released(store: RSUStore) -> None:
    codec = SigmaCodec(store=store)
    doc = bytes(range(256)) * 64
    codec.compress(doc)
    second = codec.compress(doc + b"tail")
    refs = inspect_frame(second.frame).rsu_ids
    assert refs and all(store.refcount(i) == 1 for i in refs)
    store.collect_garbage()
    assert codec.decompress(second.frame) == doc + b"tail"  # GC kept what the frame needs
    codec.release(second.frame)
    with pytest.raises(RSUStoreError):
        codec.release(second.frame)  # double release
    store.collect_garbage()
    assert store.stats().rsus == 0
    with pytest.raises(MissingRSUError):
        codec.decompress(second.frame)


def test_pinned_content_is_referenced_and_survives_gc(store: RSUStore) -> None:
    codec = SigmaCodec(store=store)
    system_prompt = b"You are the planner agent. Follow the tool schemas exactly. " * 100
    pinned = codec.pin(system_prompt)
    assert pinned and all(store.is_pinned(i) for i in pinned)
    store.collect_garbage()
    result = codec.compress(system_prompt + b" user: hi")
    assert result.report.glyphs >= len(pinned) - 1
    assert codec.decompress(result.frame) == system_prompt + b" user: hi"


def test_disk_store_persists_and_detects_damage(tmp_path: Path) -> None:
    path = tmp_path / "rsu.db"
    with DiskRSUStore(path) as store:
        store.put_many([(IA, A), (IB, B)])
        store.acquire([IA])
        store.pin(IB)
    with DiskRSUStore(path) as store:
        assert store.refcount(IA) == 1 and store.is_pinned(IB)
        assert store.get_many([IA])[IA] == A
        assert store._conn is not None
        store._conn.execute("UPDATE rsu SET data = ? WHERE id = ?", (b"tampered", IA))
        with pytest.raises(RSUStoreError, match="fails its hash"):
            store.get_many([IA])

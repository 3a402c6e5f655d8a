"""Tiered cache, tombstones, GPU placement (faked: this machine has no GPU) and thread safety."""

from __future__ import annotations

import threading

import faiss
import numpy as np

from vault import CacheConfig, IndexConfig, NewRecord, VaultConfig


def test_cache_hit_ratio_in_stats(make_vault, unit_vectors) -> None:
    v = make_vault()
    vectors = unit_vectors(10)
    v.put_many("acme", [NewRecord(text=f"r{i}", id=f"r{i}", embedding=vectors[i]) for i in range(10)])
    assert v.stats().hit_ratio == 0.0
    for _ in range(4):
        v.get("acme", "r1")
    stats = v.stats()
    assert (stats.l1_hits, stats.l1_misses) == (3, 1)
    assert stats.hit_ratio == 0.75
    assert stats.l1_entries == 1 and stats.l1_bytes > 384 * 4


def test_cache_respects_its_byte_bound(make_vault, unit_vectors) -> None:
    v = make_vault(config=VaultConfig(cache=CacheConfig(l1_max_bytes=5_000)))
    vectors = unit_vectors(20)
    v.put_many("acme", [NewRecord(text=f"r{i}" * 50, id=f"r{i}", embedding=vectors[i]) for i in range(20)])
    for i in range(20):
        v.get("acme", f"r{i}")
    stats = v.stats()
    assert 0 < stats.l1_bytes <= 5_000
    assert stats.l1_entries < 20
    v.get("acme", "r19")  # most recent: still hot
    assert v.stats().l1_hits == 1
    v.get("acme", "r0")  # evicted long ago: read from the sealed segment (tier 2)
    assert v.stats().l1_misses == 21


def test_cache_never_serves_deleted_or_replaced_records(make_vault, unit_vectors) -> None:
    v = make_vault()
    vectors = unit_vectors(2)
    v.put("acme", "old text", id="a", embedding=vectors[0])
    assert v.get("acme", "a").text == "old text"
    v.put("acme", "new text", id="a", embedding=vectors[1])
    assert v.get("acme", "a").text == "new text"


def test_deleted_records_never_come_back_from_search(make_vault, unit_vectors) -> None:
    v = make_vault(config=VaultConfig(index=IndexConfig(hnsw_threshold=30)))
    vectors = unit_vectors(60)
    v.put_many("acme", [NewRecord(text=f"r{i}", id=f"r{i}", embedding=vectors[i]) for i in range(60)])
    assert v.join_background(30)  # HNSW is built aside; the flat index serves until then
    assert v.stats().index_kinds["acme"] == "hnsw"
    for i in range(10):
        v.delete("acme", f"r{i}")
    hits = v.search("acme", vectors[3], k=10)
    assert len(hits) == 10
    assert not {h.record.id for h in hits} & {f"r{i}" for i in range(10)}
    assert v.stats().tombstones == 10


def test_automatic_compaction_after_many_deletes(make_vault, unit_vectors) -> None:
    v = make_vault()
    vectors = unit_vectors(100)
    v.put_many("acme", [NewRecord(text=f"r{i}", id=f"r{i}", embedding=vectors[i]) for i in range(100)])
    generation = v.stats().snapshot_generation
    for i in range(40):
        v.delete("acme", f"r{i}")
    assert v.join_background(30)  # compaction runs in the background worker, off the delete call
    stats = v.stats()
    assert stats.snapshot_generation > generation
    assert stats.tombstones < 32 and stats.records == 60


def test_gpu_branch_with_fake_faiss_gpu(make_vault, unit_vectors, monkeypatch) -> None:
    """FAKE GPU: this machine has none, so faiss's GPU entry points are replaced by stand-ins."""
    moved: list[object] = []

    def fake_cpu_to_gpu(resources, device, index):
        moved.append(index)
        return index  # the "GPU" copy is the CPU index itself

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "StandardGpuResources", lambda: object(), raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", fake_cpu_to_gpu, raising=False)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", lambda index: index, raising=False)
    v = make_vault()
    vectors = unit_vectors(5)
    v.put_many("acme", [NewRecord(text=f"r{i}", id=f"r{i}", embedding=vectors[i]) for i in range(5)])
    assert v.stats().gpu and moved
    assert v.search("acme", vectors[2], k=1)[0].record.id == "r2"
    v.close()
    assert make_vault().count("acme") == 5


def test_gpu_branch_with_fake_faiss_gpu_falls_back_to_cpu(make_vault, unit_vectors, monkeypatch) -> None:
    """FAKE GPU: the fake placement fails, and the vault must keep working on CPU."""

    def broken(*args):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "StandardGpuResources", lambda: object(), raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", broken, raising=False)
    v = make_vault()
    vectors = unit_vectors(3)
    v.put("acme", "r0", id="r0", embedding=vectors[0])
    assert not v.stats().gpu
    assert v.search("acme", vectors[0], k=1)[0].record.id == "r0"


def test_concurrent_writers_and_readers(make_vault, unit_vectors) -> None:
    v = make_vault()
    vectors = unit_vectors(200)
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(start, start + 50):
                v.put("acme", f"r{i}", id=f"r{i}", embedding=vectors[i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for i in range(50):
                v.search("acme", vectors[i], k=3)
                v.stats()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    v.put("acme", "seed", id="seed", embedding=np.ones(384, dtype=np.float32))
    threads = [threading.Thread(target=writer, args=(s,)) for s in (0, 50, 100, 150)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert v.count("acme") == 201
    v.close()
    assert make_vault().count("acme") == 201


def test_hnsw_is_built_aside_while_writes_and_deletes_go_on(make_vault, unit_vectors) -> None:
    config = VaultConfig(index=IndexConfig(hnsw_threshold=300))
    v = make_vault(config=config)
    vectors = unit_vectors(700)
    v.put_many("acme", [NewRecord(text=f"r{i}", id=f"r{i}", embedding=vectors[i]) for i in range(300)])
    # the build runs now; these writes and deletes land on the flat index and must reach the new one
    for i in range(300, 700, 50):
        v.put_many(
            "acme", [NewRecord(text=f"r{j}", id=f"r{j}", embedding=vectors[j]) for j in range(i, i + 50)]
        )
        v.delete("acme", f"r{i - 200}")
    assert v.join_background(60)
    stats = v.stats()
    assert stats.index_kinds["acme"] == "hnsw" and stats.records == 700 - 8
    deleted = {f"r{i - 200}" for i in range(300, 700, 50)}
    for i in (5, 149, 299, 301, 451, 699):
        hits = v.search("acme", vectors[i], k=5)
        assert hits[0].record.id == f"r{i}"
        assert not {h.record.id for h in hits} & deleted
    assert v.search("acme", vectors[100], k=1)[0].record.id != "r100"  # r100 was deleted
    v.close()
    reopened = make_vault(config=config)
    assert reopened.stats().index_kinds["acme"] == "hnsw" and reopened.count("acme") == 692
    assert reopened.search("acme", vectors[699], k=1)[0].record.id == "r699"


def test_close_without_writes_writes_no_snapshot(make_vault, data_dir, unit_vectors) -> None:
    v = make_vault()
    v.put("acme", "one", id="a", embedding=unit_vectors(1)[0])
    v.close()
    files = {p: p.stat().st_mtime_ns for p in data_dir.rglob("*") if p.is_file() and p.name != "LOCK"}
    idle = make_vault()
    assert idle.stats().snapshot_generation == 1 and idle.get("acme", "a").text == "one"
    idle.close()  # reads only: nothing to snapshot
    after = {p: p.stat().st_mtime_ns for p in data_dir.rglob("*") if p.is_file() and p.name != "LOCK"}
    assert after == files


def test_record_slots_are_not_tracked_by_the_garbage_collector(make_vault, unit_vectors) -> None:
    """A full collection holds the GIL in whichever thread allocates and walks every tracked object:
    a tenant's records must not add one each (100,000 made a collection ~300 ms inside some write)."""
    import gc

    v = make_vault()
    vectors = unit_vectors(50)
    v.put_many("acme", [NewRecord(text=f"r{i}", id=f"r{i}", embedding=vectors[i]) for i in range(50)])
    gc.collect()
    with v._lock:
        slots = list(v._storage.tenants["acme"].slots.values())
    assert len(slots) == 50 and not any(gc.is_tracked(slot) for slot in slots)
    assert v.get("acme", "r7").text == "r7"

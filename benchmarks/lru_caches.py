"""Get and put of the project's size-bounded LRU caches, in microseconds per call (``timeit``).

The caches: ryot's prompt token cache (``TokenCache.get`` / ``put``), the JetStream RSU store's read cache
(``RsuRecords.cache_put`` and the cached lookup its ``get_many`` makes) and the disk RSU store's read
cache (``DiskRSUStore.get_many`` of RSUs that are all cached: the lock, the look-ups and the recency
update, no SQL; and ``_remember``, which ``put_many`` and ``get_many`` call per RSU), ΣVAULT's
decrypted-record cache (``RecordCache.get`` / ``put``, and the path it serves: ``Vault.search`` of the
top 10 of 500 records, all cached, on the flat index, precomputed unit vectors; ``Vault.get`` of
records never cached: the miss, the segment read and AES-GCM open, the put) and ``SigmaCodec``'s
per-tenant hint look-up (``_index``, which every store-backed ``compress`` makes). Each row is the best
of ``--repeat`` timings of ``--number`` calls, over a cache kept full, so that every put evicts.

Run it against two trees to compare (the tree chosen by ``PYTHONPATH``; copy this file into the other
tree's ``benchmarks/`` if it is older), interleaved, a few times; on a loaded machine ``--cpu`` (the
process's CPU clock) steadies the rows, ``--groups`` picks the caches::

    PYTHONPATH=$PWD python -m benchmarks.lru_caches --cpu --groups vault,codec --repeat 9
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agents.compression._rsu_records import RsuRecords
from ryot._token_cache import TokenCache
from sigmalang import DiskRSUStore, Retention, SigmaCodec
from sigmalang.chunking import rsu_id
from vault import CacheConfig, MiniLMEmbedder, NewRecord, Vault, VaultConfig
from vault._private.cache import RecordCache
from vault.records import Record

T = "tenant-a"


CLOCK: list[Callable[[], float]] = [time.perf_counter]
"""The timer of every row (``--cpu``: this process's CPU time, less disturbed by a loaded machine)."""


def _best_us(call: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat, timer=CLOCK[0])) / number * 1e6


def _token_rows(number: int, repeat: int) -> dict[str, float]:
    cache = TokenCache(max_chars=64 * 1000)  # 1,000 prompts of 64 characters
    texts = [f"{i:08d}" * 8 for i in range(2000)]
    tokens = list(range(16))
    for text in texts[:1000]:
        cache.put(("ns", text, True, False), tokens)
    hits = itertools.cycle([("ns", t, True, False) for t in texts[:1000]])
    fresh = itertools.cycle([("ns", t, True, False) for t in texts])
    misses = itertools.cycle([("other", t, True, False) for t in texts])
    rows = {
        "TokenCache.get, hit": _best_us(lambda: cache.get(next(hits)), number, repeat),
        "TokenCache.get, miss": _best_us(lambda: cache.get(next(misses)), number, repeat),
        "TokenCache.put, evicting": _best_us(lambda: cache.put(next(fresh), tokens), number, repeat),
    }
    assert cache.stats()["chars"] <= 64 * 1000
    return rows


def _jetstream_rows(number: int, repeat: int) -> dict[str, float]:
    bucket: Any = None  # the read cache never touches the bucket
    records = RsuRecords(bucket, Retention(), time.time)
    data = b"x" * 4096
    n_cached = 64 * 1024 * 1024 // len(data)  # the cache full of 4 KiB RSUs
    for seq in range(n_cached):
        records.cache_put(T, seq, data)
    new_seqs = itertools.count(n_cached)
    batches = itertools.cycle([list(range(i, i + 10)) for i in range(n_cached // 2, n_cached - 10, 10)])
    cache = records._cache
    lock = records._lock

    def cached_lookup() -> None:  # the statement of RsuRecords.get_many that reads the cache
        unique = next(batches)
        with lock:
            found = {s: cache[(T, s)] for s in unique if (T, s) in cache}
        assert len(found) == 10

    return {
        "RsuRecords cached lookup, 10 RSUs": _best_us(cached_lookup, number // 10, repeat),
        "RsuRecords.cache_put, evicting": _best_us(
            lambda: records.cache_put(T, next(new_seqs), data), number, repeat
        ),
    }


def _disk_rows(number: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, DiskRSUStore(Path(tmp) / "rsu.db") as store:
        contents = [b"%08d" % i * 128 for i in range(200)]  # 1 KiB each
        store.put_many(T, [(rsu_id(c), c) for c in contents])
        batches = itertools.cycle([list(range(i, i + 10)) for i in range(1, 191, 10)])
        rows = {
            "DiskRSUStore.get_many, 10 cached RSUs": _best_us(
                lambda: store.get_many(T, next(batches)), number // 10, repeat
            )
        }
        big = b"y" * 4096
        seqs = itertools.count(2_000_000)
        now = time.time()
        for seq in range(64 * 1024 * 1024 // len(big)):  # fill the cache so that every call evicts
            store._remember(T, 1_000_000 + seq, big, now)

        def remember() -> None:
            with store._lock:
                store._remember(T, next(seqs), big, now)

        rows["DiskRSUStore._remember, evicting"] = _best_us(remember, number, repeat)
        return rows


def _vault_rows(number: int, repeat: int) -> dict[str, float]:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((2000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = [
        Record(id=str(i), tenant=T, text=f"record {i} " * 10, metadata={"n": i}, embedding=vectors[i])
        for i in range(2000)
    ]
    cache = RecordCache(max_bytes=records[0].nbytes() * 1000)  # 1,000 records
    for record in records[:1000]:
        cache.put(record)
    hits = itertools.cycle([(T, str(i)) for i in range(1000)])
    misses = itertools.cycle([("other", str(i)) for i in range(1000)])
    fresh = itertools.cycle(records)
    rows = {
        "RecordCache.get, hit": _best_us(lambda: cache.get(*next(hits)), number, repeat),
        "RecordCache.get, miss": _best_us(lambda: cache.get(*next(misses)), number, repeat),
        "RecordCache.put, evicting": _best_us(lambda: cache.put(next(fresh)), number, repeat),
    }
    assert cache.bytes <= cache.max_bytes
    # The embedder is never loaded: records and queries come with their vectors.
    with tempfile.TemporaryDirectory() as tmp, Vault(tmp, embedder=MiniLMEmbedder()) as vault:
        vault.put_many(T, [NewRecord(text=r.text, id=r.id, embedding=r.embedding) for r in records[:500]])
        queries = itertools.cycle(list(vectors[1000:1100]))
        for query in vectors[1000:1100]:  # every record a query returns is cached from here on
            vault.search(T, query, k=10)
        rows["Vault.search, k=10 of 500, all cached"] = _best_us(
            lambda: vault.search(T, next(queries), k=10), number // 20, repeat
        )
    small = VaultConfig(cache=CacheConfig(l1_max_bytes=records[0].nbytes() * 50))  # 50 of 500 records
    with tempfile.TemporaryDirectory() as tmp, Vault(tmp, config=small, embedder=MiniLMEmbedder()) as vault:
        vault.put_many(T, [NewRecord(text=r.text, id=r.id, embedding=r.embedding) for r in records[:500]])
        ids = itertools.cycle([str(i) for i in range(500)])
        rows["Vault.get, a miss (read, open, put)"] = _best_us(
            lambda: vault.get(T, next(ids)), number // 10, repeat
        )
        assert vault.stats().l1_hits == 0
    return rows


def _codec_rows(number: int, repeat: int) -> dict[str, float]:
    codec = SigmaCodec()
    tenants = [f"tenant-{i}" for i in range(100)]
    for tenant in tenants:
        codec._index(tenant)
    cycle = itertools.cycle(tenants)
    return {"SigmaCodec._index, hit": _best_us(lambda: codec._index(next(cycle)), number, repeat)}


GROUPS: dict[str, Callable[[int, int], dict[str, float]]] = {
    "token": _token_rows,
    "jetstream": _jetstream_rows,
    "disk": _disk_rows,
    "vault": _vault_rows,
    "codec": _codec_rows,
}


def main() -> None:
    """Print one row per operation: microseconds per call, best of ``--repeat``."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing")
    parser.add_argument("--repeat", type=int, default=5, help="timings per row (the best is shown)")
    parser.add_argument("--cpu", action="store_true", help="time with the process's CPU clock, not wall")
    parser.add_argument("--groups", default=",".join(GROUPS), help="which caches, comma separated")
    args = parser.parse_args()
    if args.cpu:
        CLOCK[0] = time.process_time
    rows: dict[str, float] = {}
    for group in args.groups.split(","):
        rows |= GROUPS[group](args.number, args.repeat)
    for name, us in rows.items():
        print(f"{name:40s} {us:8.3f} µs")


if __name__ == "__main__":
    main()

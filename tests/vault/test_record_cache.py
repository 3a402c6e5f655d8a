"""The decrypted-record LRU (tier 1) on its own: byte bound, recency, counters and invalidation."""

from __future__ import annotations

import numpy as np

from vault._private.cache import RecordCache
from vault.records import Record


def _record(record_id: str, tenant: str = "acme", text: str = "x") -> Record:
    return Record(
        id=record_id, tenant=tenant, text=text, metadata={"k": 1}, embedding=np.zeros(384, np.float32)
    )


def test_a_full_cache_evicts_the_least_recently_used_record_and_counts_bytes() -> None:
    size = _record("a").nbytes()
    cache = RecordCache(max_bytes=3 * size)
    for rid in ("a", "b", "c"):
        cache.put(_record(rid))
    assert cache.get("acme", "a") is not None  # "a" becomes the most recently used; "b" is now oldest
    cache.put(_record("d"))
    assert cache.get("acme", "b") is None
    assert {rid for rid in "acd" if cache.get("acme", rid) is not None} == {"a", "c", "d"}
    assert (len(cache), cache.bytes) == (3, 3 * size)
    assert (cache.hits, cache.misses) == (4, 1)


def test_replacing_discarding_and_dropping_a_tenant_keep_the_byte_count_exact() -> None:
    cache = RecordCache(max_bytes=1 << 20)
    cache.put(_record("a", text="old"))
    cache.put(_record("a", text="a longer new text"))
    found = cache.get("acme", "a")
    assert found is not None and found.text == "a longer new text"
    assert cache.bytes == _record("a", text="a longer new text").nbytes()
    cache.put(_record("b"))
    cache.put(_record("a", tenant="other"))
    cache.discard("acme", "b")
    cache.discard("acme", "never-cached")
    assert cache.bytes == _record("a", text="a longer new text").nbytes() + _record("a", "other").nbytes()
    cache.drop_tenant("acme")
    assert cache.get("acme", "a") is None and cache.get("other", "a") is not None
    assert (len(cache), cache.bytes) == (1, _record("a", "other").nbytes())
    cache.clear()
    assert (len(cache), cache.bytes) == (0, 0)
    assert (cache.hits, cache.misses) == (2, 1)  # clear keeps the counters


def test_a_record_over_the_bound_is_not_kept_and_a_zero_bound_disables_the_cache() -> None:
    small = _record("a")
    cache = RecordCache(max_bytes=small.nbytes())
    cache.put(small)
    cache.put(_record("a", text="y" * 100))  # the new version is too big: the old one must go too
    assert cache.get("acme", "a") is None
    assert (len(cache), cache.bytes) == (0, 0)
    off = RecordCache(max_bytes=0)
    off.put(small)
    assert off.get("acme", "a") is None and len(off) == 0

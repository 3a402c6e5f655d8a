"""KV prefixes are shared only within a namespace (the tenant): ``cached_tokens`` tells nothing across."""

from __future__ import annotations

import ctypes

from ryot import RyotEngine, SamplingParams
from ryot._prefix_cache import PrefixCache, as_tokens

PROMPT = "The following is a long shared preamble about the history of the city of Lisbon. " * 4


def test_prefix_cache_entries_are_seen_only_in_their_namespace() -> None:
    cache = PrefixCache(1 << 20)
    state = (ctypes.c_uint8 * 10)()
    assert cache.put(as_tokens([1, 2, 3, 4]), state, 0, "acme")
    assert cache.lookup(as_tokens([1, 2, 3, 4, 5]), 4, "globex") == (None, 0, 0)
    entry, reuse, _ = cache.lookup(as_tokens([1, 2, 3, 4, 5]), 4, "acme")
    assert entry is not None and reuse == 4
    assert not cache.covers(as_tokens([1, 2, 3]), "globex") and cache.covers(as_tokens([1, 2, 3]), "acme")
    assert cache.put(as_tokens([1, 2, 3]), state, 0, "globex")  # not covered by another tenant's entry
    assert len(cache) == 2


def test_cached_tokens_count_only_the_same_tenants_prefix(engine: RyotEngine) -> None:
    def cached(namespace: str, suffix: str) -> int:
        params = SamplingParams(max_tokens=1, temperature=0.0, prefix_namespace=namespace)
        return engine.generate(PROMPT + suffix, params).usage.cached_tokens

    cached("acme", "Q1")
    # the same preamble, sent by another tenant: nothing reused but the BOS every text prompt starts with
    assert cached("globex", "Q2") == 1
    assert cached("acme", "Q3") > 20  # the first tenant reuses its own preamble
    assert cached("globex", "Q4") > 20  # and the second its own, now that it sent it once

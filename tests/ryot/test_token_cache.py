"""The prompt token cache (ryot._token_cache): bounds, eviction, namespaces, and the engine's use of it."""

from __future__ import annotations

import sys
import threading

import pytest

from ryot import ChatMessage, RyotEngine, SamplingParams
from ryot._token_cache import TokenCache

ONE = SamplingParams(max_tokens=1, temperature=0.0)


def test_least_recently_used_texts_leave_first_within_the_character_bound() -> None:
    cache = TokenCache(max_chars=10)
    cache.put(("", "aaaa", True, False), [1, 2])
    cache.put(("", "bbbb", True, False), [3])
    assert cache.get(("", "aaaa", True, False)) == [1, 2]  # now the most recently used
    cache.put(("", "cccc", True, False), [4])  # 12 characters: "bbbb" leaves
    assert cache.get(("", "bbbb", True, False)) is None
    assert cache.get(("", "cccc", True, False)) == [4]
    assert cache.chars == 8
    assert cache.stats() == {"entries": 2, "chars": 8, "max_chars": 10, "hits": 2, "misses": 1}


def test_a_text_longer_than_the_bound_is_not_stored_and_a_zero_bound_stores_nothing() -> None:
    cache = TokenCache(max_chars=3)
    cache.put(("", "abcd", True, False), [1])
    assert len(cache) == 0
    off = TokenCache(max_chars=0)
    off.put(("", "a", True, False), [1])
    assert off.get(("", "a", True, False)) is None
    with pytest.raises(ValueError, match="max_chars"):
        TokenCache(max_chars=-1)


def test_get_returns_a_fresh_list_and_a_put_again_replaces() -> None:
    cache = TokenCache()
    key = ("t", "x", False, True)
    cache.put(key, [5, 6])
    got = cache.get(key)
    assert got == [5, 6]
    assert got is not None
    got.append(7)
    assert cache.get(key) == [5, 6]
    cache.put(key, [8])
    assert cache.get(key) == [8]
    assert cache.chars == 1


def test_threads_sharing_the_cache_keep_its_character_count_and_bound() -> None:
    cache = TokenCache(max_chars=50)
    texts = [f"text {i:02d}" for i in range(40)]  # 7 characters each: at most 7 entries fit
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def work(offset: int) -> None:
        start.wait()
        try:
            for i in range(3_000):
                key = ("", texts[(i * 7 + offset) % len(texts)], True, False)
                got = cache.get(key)
                if got is None:
                    cache.put(key, [offset, i])
                else:
                    assert len(got) == 2
        except BaseException as exc:
            failures.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show at once
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == 4 * 3_000
    assert stats["chars"] == 7 * stats["entries"] <= 50


def test_engine_tokenizes_a_repeated_prompt_once_per_namespace_with_exact_usage(engine: RyotEngine) -> None:
    text = "A token cache test prompt about lighthouses"
    chat = [ChatMessage("user", "A token cache test question about harbours?")]
    before = engine.token_cache_stats
    first = engine.generate(text, ONE)
    again = engine.generate(text, ONE)
    other = engine.generate(text, SamplingParams(max_tokens=1, temperature=0.0, prefix_namespace="tenant-b"))
    chat_first = engine.generate(chat, ONE)
    chat_again = engine.generate(chat, ONE)
    after = engine.token_cache_stats
    assert after["hits"] - before["hits"] == 2  # the repeated text and the repeated chat, same namespace
    assert after["misses"] - before["misses"] == 3  # first text, other namespace, first chat
    expected = len(engine.prompt_tokens(text))
    assert first.usage.prompt_tokens == again.usage.prompt_tokens == other.usage.prompt_tokens == expected
    assert chat_first.usage.prompt_tokens == chat_again.usage.prompt_tokens == len(engine.prompt_tokens(chat))
    assert first.text == again.text
    assert chat_first.text == chat_again.text

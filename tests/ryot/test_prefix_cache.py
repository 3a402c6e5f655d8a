"""The prefix (KV) cache: unit tests of the store, and reuse on the real Gemma 3 270M (sliding window 512)."""

from __future__ import annotations

import ctypes
import logging
import threading
import time

import pytest

from ryot import RyotConfig, RyotEngine, SamplingParams
from ryot._prefix_cache import PrefixCache, as_tokens, common_prefix
from ryot.types import Event, Finished, Usage


def _state(n: int) -> ctypes.Array[ctypes.c_uint8]:
    return (ctypes.c_uint8 * n)()


def test_lookup_returns_the_longest_usable_prefix_and_counts_bytes() -> None:
    cache = PrefixCache(10_000)
    assert cache.put(as_tokens([1, 2, 3, 4, 5]), _state(100), 0)
    assert cache.put(as_tokens([1, 2, 9, 9]), _state(100), 0)
    entry, reuse, longest = cache.lookup(as_tokens([1, 2, 3, 4, 7, 8]), limit=5)
    assert entry is not None and entry.tokens.tolist() == [1, 2, 3, 4, 5]
    assert reuse == longest == 4
    # the limit (prompt length - 1) caps the reuse
    _, reuse, _ = cache.lookup(as_tokens([1, 2, 3, 4, 5, 6]), limit=3)
    assert reuse == 3
    # one shared token (BOS) is no hit
    assert cache.lookup(as_tokens([1, 7]), limit=1)[0] is None
    stats = cache.stats()
    assert stats["entries"] == 2
    assert stats["bytes"] == cache.nbytes == 200 + 4 * 5 + 4 * 4  # state blobs + int32 token ids


def test_byte_bound_evicts_least_recently_used_first() -> None:
    cache = PrefixCache(3 * (1000 + 16))
    for first in (10, 20, 30):
        assert cache.put(as_tokens([first, 1, 2, 3]), _state(1000), 0)
    hit, _, _ = cache.lookup(as_tokens([10, 1, 2, 3, 4]), limit=4)
    cache.record(hit, 4)  # a hit makes the first entry the most recently used
    assert cache.put(as_tokens([40, 1, 2, 3]), _state(1000), 0)
    firsts = sorted(int(e.tokens[0]) for e in cache._entries.values())
    assert firsts == [10, 30, 40]
    assert not cache.put(as_tokens([50]), _state(10_000), 0)  # larger than the whole bound
    stats = cache.stats()
    assert (stats["evictions"], stats["rejected"], stats["hits"], stats["restored_tokens"]) == (1, 1, 1, 4)
    assert stats["bytes"] <= stats["max_bytes"]


def test_covered_prefixes_are_not_stored_twice() -> None:
    cache = PrefixCache(1 << 20)
    assert cache.put(as_tokens([1, 2, 3]), _state(10), 0)
    assert cache.put(as_tokens([1, 2, 3, 4, 5]), _state(10), 0)  # covers and replaces [1, 2, 3]
    assert len(cache) == 1
    assert not cache.put(as_tokens([1, 2, 3, 4]), _state(10), 0)  # already covered
    assert cache.covers(as_tokens([1, 2, 3, 4]))


def test_sliding_window_states_are_only_trimmed_near_their_end() -> None:
    cache = PrefixCache(1 << 20, n_swa=4)
    long = list(range(1, 11))  # 10 tokens: once restored, the window layers hold positions 6..9 only
    assert cache.pos_min_of(len(long)) == 6
    cache.put(as_tokens(long), _state(10), cache.pos_min_of(len(long)))
    # trimmed to 8 tokens, the 9th would attend to positions 5..8, and 5 is gone
    assert cache.lookup(as_tokens([*long[:8], 99]), limit=8)[0] is None
    assert cache.lookup(as_tokens([*long, 99]), limit=10)[1] == 10
    # so a sliding-window state does not cover its prefixes: a checkpoint of one is stored
    assert not cache.covers(as_tokens(long[:8]))
    assert cache.put(as_tokens(long[:8]), _state(10), cache.pos_min_of(8))
    assert cache.lookup(as_tokens([*long[:8], 99]), limit=8)[1] == 8
    assert common_prefix(as_tokens([1, 2]), as_tokens([1, 2, 3])) == 2


ANIMALS = ["fox", "owl", "whale", "heron", "badger", "otter", "lynx", "crane", "beaver", "falcon", "moose"]
COLOURS = ["red", "blue", "green", "grey", "golden", "silver", "black", "white", "brown"]
CITIES = ["Oslo", "Lima", "Perth", "Quito", "Dakar", "Hanoi", "Riga", "Tunis", "Bergen", "Cusco", "Kyoto"]
FOODS = ["berries", "fish", "mice", "insects", "seeds", "roots", "frogs", "clams", "worms", "acorns"]
QUESTIONS = [
    "Question: Where does the red fox live?\nAnswer:",
    "Question: What does the blue owl eat?\nAnswer:",
    "Question: Which animal lives near Oslo?\nAnswer:",
]


def _facts(n: int) -> str:
    facts = (
        f"Fact {i + 1}: the {COLOURS[i % 9]} {ANIMALS[i % 11]} lives near {CITIES[i % 11]} "
        f"and eats {FOODS[i % 10]}."
        for i in range(n)
    )
    return "Read the following facts about animals.\n" + "\n".join(facts) + "\n\n"


def _evict_slots_then_reuse(n_facts: int, n_extra: int) -> None:
    """Two requests share a long prefix; unrelated requests then take both slots; a third request with
    the same prefix must get it from the prefix cache and produce the text of a cold engine.

    The first two prompts go on with ``n_extra`` facts of their own after the shared part, so their
    whole sequences end that much after it.
    """
    prefix = _facts(n_facts)
    params = SamplingParams(max_tokens=16, temperature=0.0)
    config = RyotConfig(n_ctx=2048, parallel=2)
    extra = "\n" + _facts(n_extra).split("\n", 1)[1] if n_extra else ""
    texts = [prefix + QUESTIONS[0] + extra, prefix + QUESTIONS[1] + extra, prefix + QUESTIONS[2]]
    with RyotEngine(config) as engine:
        prompts = [as_tokens(engine.tokenize(text)) for text in texts]
        shared = common_prefix(prompts[0], prompts[1])
        assert shared == common_prefix(prompts[1], prompts[2]) > 200
        engine.generate(texts[0], params)
        second = engine.generate(texts[1], params)
        assert second.usage.cached_tokens == shared  # from the slot, as before
        engine.generate("Hello there, how are you today?", params)
        engine.generate("Name a colour.", params)  # both slots now hold unrelated prompts
        third = engine.generate(texts[2], params)
        stats = engine.prefix_cache_stats
    assert third.usage.cached_tokens == shared
    assert stats is not None and stats["hits"] == 1 and stats["restored_tokens"] == shared
    assert 0 < stats["bytes"] <= stats["max_bytes"]
    after_close = engine.prefix_cache_stats
    assert after_close is not None and after_close["entries"] == after_close["bytes"] == 0
    with RyotEngine(config.model_copy(update={"prefix_cache_bytes": 0})) as cold_engine:
        assert cold_engine.prefix_cache_stats is None
        cold = cold_engine.generate(texts[2], params)
    assert cold.usage.cached_tokens == 1  # the BOS token the engine primes every slot with, nothing more
    assert third.text == cold.text


def test_a_prefix_evicted_from_the_slots_is_restored_from_the_cache() -> None:
    # ~260 shared tokens, sequences under the 512-token window: whole saved sequences are trimmable.
    _evict_slots_then_reuse(n_facts=15, n_extra=0)


def test_sliding_window_prefix_beyond_the_window_restores_exactly() -> None:
    # ~730 shared tokens and ~400 more in each of the first two prompts: their saved whole sequences lack
    # the window layers' KV below position ~650, so trimming one back to the shared prefix would change
    # the greedy text (checked by hand: it does). The engine must restore the shared prefix saved on its
    # own instead.
    _evict_slots_then_reuse(n_facts=45, n_extra=25)


def test_sliding_window_without_swa_full_disables_the_cache_with_a_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="ryot._engine"):
        with RyotEngine(RyotConfig(n_ctx=256, parallel=1, swa_full=False)) as engine:
            assert engine.prefix_cache_stats is None
            assert engine.generate("Hello", SamplingParams(max_tokens=2)).usage.completion_tokens > 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("prefix cache disabled" in m and "swa_full" in m for m in messages)


def test_a_refused_restore_falls_back_to_prefill(monkeypatch: pytest.MonkeyPatch) -> None:
    from ryot._llama import Context

    monkeypatch.setattr(Context, "set_seq_state", lambda self, state, seq: False)
    prefix = _facts(15)
    params = SamplingParams(max_tokens=8, temperature=0.0)
    with RyotEngine(RyotConfig(n_ctx=1024, parallel=1)) as engine:
        engine.generate(prefix + QUESTIONS[0], params)
        engine.generate("Name a colour.", params)  # takes the only slot: the first prompt is saved
        refused = engine.generate(prefix + QUESTIONS[1], params)
        stats = engine.prefix_cache_stats
        again = engine.generate(prefix + QUESTIONS[1], params)
    assert refused.usage.cached_tokens == 0
    assert stats is not None and (stats["hits"], stats["restore_failures"]) == (0, 1)
    assert refused.text == again.text and again.usage.cached_tokens == again.usage.prompt_tokens - 2


def _wait_for_stores(engine: RyotEngine, n: int, timeout_s: float = 5.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        stats = engine.prefix_cache_stats
        assert stats is not None
        if stats["stores"] >= n or time.monotonic() > deadline:
            return stats
        time.sleep(0.01)


def test_an_idle_engine_saves_finished_slots_so_eviction_costs_the_next_request_nothing() -> None:
    prefix = _facts(15)
    params = SamplingParams(max_tokens=8, temperature=0.0)
    # The text a hit must give: that of the cold prefill, which it gets since a hit evaluates the last two
    # prompt tokens (with the last one evaluated alone, the 7th token differed on the AVX-512 Xeon).
    with RyotEngine(RyotConfig(n_ctx=1024, parallel=1)) as engine:
        cold = engine.generate(prefix + QUESTIONS[0], params)
        stats = _wait_for_stores(engine, 1)  # saved while idle, not when evicted
        assert (stats["entries"], stats["stores"]) == (1, 1)
        engine.generate("Name a colour.", params)  # takes the only slot: nothing left to save
        assert _wait_for_stores(engine, 1)["stores"] == 1
        again = engine.generate(prefix + QUESTIONS[0], params)
        stats = _wait_for_stores(engine, 1)
    assert stats["hits"] == 1
    assert cold.usage.cached_tokens == 1  # the primed BOS token
    assert again.usage.cached_tokens == again.usage.prompt_tokens - 2
    assert again.text == cold.text


def test_dropping_a_few_tokens_of_a_slot_saves_nothing() -> None:
    prefix = _facts(15)
    params = SamplingParams(max_tokens=2, temperature=0.0)
    done = threading.Event()
    seen: dict[str, object] = {}

    def last(event: Event) -> None:
        if isinstance(event, Finished):  # on the worker thread, before it could go idle
            seen["stats"], seen["usage"] = engine.prefix_cache_stats, event.usage
            done.set()

    with RyotEngine(RyotConfig(n_ctx=1024, parallel=1, prefix_cache_bytes=1 << 30)) as engine:
        # queued together: each takes the only slot right after the previous one, never idle between
        engine.submit(prefix + QUESTIONS[0], params, lambda event: None)
        engine.submit(prefix + QUESTIONS[1], params, lambda event: None)
        engine.submit(prefix + QUESTIONS[2], params, last)
        assert done.wait(60)
    # each request kept the shared facts and dropped only the previous question and answer: too little
    # to be worth a snapshot
    usage, stats = seen["usage"], seen["stats"]
    assert isinstance(usage, Usage) and usage.cached_tokens > 200
    assert isinstance(stats, dict) and stats["stores"] == 0

"""The language detector's per-worker cache of lingua detectors: bounded, least recently used out."""

from __future__ import annotations

import pytest
from cachetools import LRUCache

from agents.analysis import _language
from agents.analysis._language import MAX_DETECTORS, LanguageDetectorAgent, detect_in_process

OTHERS = ("fr", "de", "es", "it", "pt", "nl", "sv", "pl", "tr")


def test_a_worker_keeps_its_most_recently_used_detectors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LanguageDetectorAgent.MAX_DETECTORS == MAX_DETECTORS == len(OTHERS) - 1
    cache: LRUCache[tuple[frozenset[str], bool], object] = LRUCache(MAX_DETECTORS)
    monkeypatch.setattr(_language, "_PROCESS_DETECTORS", cache)  # this process plays the worker
    sets = [frozenset({"en", other}) for other in OTHERS]
    for languages in sets[:MAX_DETECTORS]:
        detect_in_process(languages, True, "The weather is lovely today.", 1, False)
    first = cache[(sets[0], True)]  # used again: the set built second is now the least recently used
    found = detect_in_process(sets[0], True, "The weather is lovely today, isn't it?", 1, False)
    assert found["language"] == "en"
    detect_in_process(sets[-1], True, "The weather is lovely today.", 1, False)
    assert len(cache) == MAX_DETECTORS
    assert (sets[1], True) not in cache and (sets[-1], True) in cache
    assert cache[(sets[0], True)] is first  # kept, not rebuilt

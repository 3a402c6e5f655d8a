"""Token ids of recently submitted prompt texts, so that a repeated prompt is not tokenized again.

A request's prompt is tokenized on the caller's thread (the service's event loop) before it is queued,
on the path to its first token. llama.cpp's tokenizer walks Gemma 3's 262k-entry vocabulary tables;
when another request's work (or another process) has just evicted them from the CPU caches, as between
requests on a busy machine, a 60-character prompt takes ~0.3 ms instead of the ~35 µs it takes back to
back (measured on the 2-core machine: ``benchmarks/ryot_submit.py``). A prompt sent again (a retry,
an evaluation loop, the same system prompt and question) then costs a dictionary look-up.

Entries are keyed by namespace as well as text: which texts were sent before shows in the time a
request takes, and the engine shares nothing of that kind across namespaces (tenants; see
:class:`ryot.SamplingParams`). The cache is bounded by the characters of its texts (each entry's token
ids are stored as 4-byte ints beside them); the least recently used entries leave first. The
bookkeeping is `cachetools.LRUCache` weighed by text length; it is not thread safe, so a lock guards it.
"""

from __future__ import annotations

import threading
from array import array

from cachetools import LRUCache

__all__ = ("DEFAULT_TOKEN_CACHE_CHARS", "TokenCache", "TokenKey")

DEFAULT_TOKEN_CACHE_CHARS = 1 << 20
"""Characters of prompt text the engine's token cache keeps (about 2 MiB with their token ids)."""

TokenKey = tuple[str, str, bool, bool]
"""``(namespace, text, add_bos, special)``: a text and how it was tokenized."""


class TokenCache:
    """Least-recently-used map from a prompt text (and how it is tokenized) to its token ids.

    Thread safe. Texts longer than ``max_chars`` are never stored.

    Args:
        max_chars: Most characters of text held across all entries (0 disables the cache).

    Raises:
        ValueError: ``max_chars`` is negative.
    """

    def __init__(self, max_chars: int = DEFAULT_TOKEN_CACHE_CHARS) -> None:
        if max_chars < 0:
            raise ValueError(f"max_chars must be at least 0, not {max_chars}")
        self.max_chars = max_chars
        self.hits = 0
        self.misses = 0
        self._entries: LRUCache[TokenKey, tuple[str, array[int]]] = LRUCache(max_chars, getsizeof=_chars)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def chars(self) -> int:
        """Characters of text held now."""
        return int(self._entries.currsize)

    def get(self, key: TokenKey) -> list[int] | None:
        """A new list of the token ids stored for ``key``, or ``None`` (counts a hit or a miss)."""
        with self._lock:
            found = self._entries.get(key)  # a hit becomes the most recently used
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
        return found[1].tolist()

    def put(self, key: TokenKey, tokens: list[int]) -> None:
        """Store ``tokens`` for ``key``, evicting least recently used entries to stay in bounds."""
        if len(key[1]) > self.max_chars:
            return
        stored = (key[1], array("i", tokens))
        with self._lock:
            self._entries[key] = stored

    def stats(self) -> dict[str, int]:
        """``entries``, ``chars``, ``max_chars``, ``hits`` and ``misses`` since the cache was made."""
        with self._lock:
            return {
                "entries": len(self._entries),
                "chars": int(self._entries.currsize),
                "max_chars": self.max_chars,
                "hits": self.hits,
                "misses": self.misses,
            }

    def clear(self) -> None:
        """Drop every entry (the counters stay)."""
        with self._lock:
            self._entries.clear()


def _chars(entry: tuple[str, array[int]]) -> int:
    """An entry's weight: the characters of its text."""
    return len(entry[0])

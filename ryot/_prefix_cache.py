"""A host-memory cache of KV-cache states, shared by all requests of one engine (prefix reuse).

An entry is the token list of one sequence and that sequence's state as ``llama_state_seq_get_data``
wrote it (the K and V rows of its cells). Restoring an entry into a sequence and trimming it to the
prefix it shares with a new prompt skips the prefill of that prefix.

No logits are stored: the engine always evaluates at least the last two prompt tokens, which gives fresh
logits, so an entry costs only its state (about 18 KiB per token for Gemma 3 270M) instead of also a
vocabulary-sized float row (1 MiB for Gemma 3's 262k tokens).

Sliding-window models (Gemma 3's iSWA cache): llama.cpp writes the sliding-window layers' cells only for
the last ``n_swa`` positions of the sequence, even with ``swa_full``. A restored state therefore lacks
the window-layer KV of positions below ``pos_min = len(tokens) - n_swa``, and may be trimmed to ``r``
tokens only if those layers still hold the window the next token attends to: ``pos_min == 0`` or
``pos_min <= r - n_swa`` (the rule of llama.cpp's server). Entries record their ``pos_min``; lookups
only return entries usable at the returned length.

Lookup is a linear scan over the entries with a vectorised longest-common-prefix (numpy), a few
microseconds per entry: at a few hundred entries (the byte bound keeps it there) a trie would not pay
for its bookkeeping. Not thread safe for writers (the engine's worker thread is the only one); the
statistics may be read from any thread.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TokenArray = npt.NDArray[np.int32]
State = ctypes.Array[ctypes.c_uint8]


def as_tokens(tokens: Sequence[int]) -> TokenArray:
    """``tokens`` as the int32 array the cache compares."""
    return np.asarray(tokens, dtype=np.int32)


def common_prefix(a: TokenArray, b: TokenArray) -> int:
    """Length of the longest common prefix of two token arrays."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


@dataclass(slots=True, eq=False)
class Entry:
    """One cached sequence state."""

    tokens: TokenArray
    state: State
    pos_min: int
    """Lowest position the restored state holds in every layer (0 unless sliding-window layers)."""
    key: int = 0
    namespace: str = ""
    """Requests of another namespace (tenant) never see this entry (``SamplingParams.prefix_namespace``)."""

    @property
    def nbytes(self) -> int:
        """Bytes this entry holds: the state blob and the token ids."""
        return len(self.state) + int(self.tokens.nbytes)


@dataclass(slots=True)
class _Counters:
    lookups: int = 0
    hits: int = 0
    misses: int = 0
    stores: int = 0
    evictions: int = 0
    rejected: int = 0
    restored_tokens: int = 0
    restore_failures: int = 0


class PrefixCache:
    """KV states of token sequences, bounded by ``max_bytes``, least recently used evicted first.

    Args:
        max_bytes: Bound on the bytes of all entries (state blobs plus token ids).
        n_swa: The model's sliding-window size (0: none), for the rule above.
    """

    def __init__(self, max_bytes: int, *, n_swa: int = 0) -> None:
        self.max_bytes = max_bytes
        self.n_swa = n_swa
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._keys = itertools.count(1)
        self._bytes = 0
        self._counts = _Counters()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held by all entries."""
        return self._bytes

    def pos_min_of(self, n_tokens: int) -> int:
        """The ``pos_min`` a state of ``n_tokens`` tokens has once restored (see the module docstring)."""
        return max(0, n_tokens - self.n_swa) if self.n_swa > 0 else 0

    def usable(self, pos_min: int, reuse: int) -> bool:
        """Whether a sequence whose lowest position is ``pos_min`` may be trimmed to ``reuse`` tokens."""
        return pos_min <= 0 or (self.n_swa > 0 and pos_min <= reuse - self.n_swa)

    def lookup(self, prompt: TokenArray, limit: int, namespace: str = "") -> tuple[Entry | None, int, int]:
        """The entry to restore for ``prompt``, its usable prefix, and the longest prefix of any entry.

        Returns ``(entry, reuse, longest)``: ``entry`` shares ``reuse`` tokens with ``prompt`` (at most
        ``limit``) and can be trimmed to them; it is the entry with the largest such ``reuse`` (ties: the
        smallest, which is the cheapest to restore), or ``None``. ``longest`` is the longest common
        prefix (at most ``limit``) with any entry, usable or not. Only entries of ``namespace`` count.
        Does not count as a hit or a miss.
        """
        best: Entry | None = None
        best_reuse = 0
        longest = 0
        for entry in self._entries.values():
            if entry.namespace != namespace:
                continue
            reuse = min(common_prefix(entry.tokens, prompt), limit)
            longest = max(longest, reuse)
            if reuse < 2 or not self.usable(entry.pos_min, reuse):
                continue
            if reuse > best_reuse or (
                reuse == best_reuse and best is not None and entry.nbytes < best.nbytes
            ):
                best, best_reuse = entry, reuse
        return best, best_reuse, longest

    def covers(self, tokens: TokenArray, namespace: str = "") -> bool:
        """Whether an entry of ``namespace`` can be restored and trimmed to exactly ``tokens``."""
        _, reuse, _ = self.lookup(tokens, len(tokens), namespace)
        return reuse == len(tokens)

    def put(self, tokens: TokenArray, state: State, pos_min: int, namespace: str = "") -> bool:
        """Store a state; returns whether it was stored.

        Not stored when an entry already covers ``tokens`` or the state alone exceeds ``max_bytes``.
        Entries the new one covers (their tokens are a prefix of ``tokens`` and the new state can be
        trimmed to them) are dropped. Then the least recently used entries leave until the bound holds.
        """
        entry = Entry(tokens, state, pos_min, namespace=namespace)
        with self._lock:
            if entry.nbytes > self.max_bytes:
                self._counts.rejected += 1
                return False
            for key, old in list(self._entries.items()):
                if old.namespace != namespace:
                    continue
                shared = common_prefix(old.tokens, tokens)
                if shared == len(tokens) and self.usable(old.pos_min, shared):
                    self._entries.move_to_end(key)
                    return False
                if shared == len(old.tokens) and self.usable(pos_min, shared):
                    self._drop(key)
            entry.key = next(self._keys)
            self._entries[entry.key] = entry
            self._bytes += entry.nbytes
            self._counts.stores += 1
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
                self._counts.evictions += 1
            return True

    def clear(self) -> None:
        """Drop every entry (the counters stay)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: int) -> None:
        old = self._entries.pop(key)
        self._bytes -= old.nbytes

    def record(self, entry: Entry | None, restored_tokens: int) -> None:
        """Count one admission: a hit restoring ``restored_tokens`` from ``entry``, or a miss (``None``)."""
        with self._lock:
            self._counts.lookups += 1
            if entry is None:
                self._counts.misses += 1
                return
            self._counts.hits += 1
            self._counts.restored_tokens += restored_tokens
            if entry.key in self._entries:
                self._entries.move_to_end(entry.key)

    def record_failure(self, entry: Entry) -> None:
        """Count a restore llama.cpp refused, and drop the entry."""
        with self._lock:
            self._counts.restore_failures += 1
            if entry.key in self._entries:
                self._drop(entry.key)

    def stats(self) -> dict[str, int]:
        """Counters and sizes of the cache.

        Keys: ``entries``, ``bytes``, ``max_bytes``, ``tokens`` (in all entries), ``lookups``
        (admissions of prompts long enough to look up), ``hits``, ``misses``, ``stores``, ``evictions``
        (LRU, for the byte bound), ``rejected`` (a state larger than ``max_bytes``), ``restored_tokens``
        (prefill tokens skipped thanks to the cache), ``restore_failures``.
        """
        with self._lock:
            c = self._counts
            return {
                "entries": len(self._entries),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "tokens": sum(len(e.tokens) for e in self._entries.values()),
                "lookups": c.lookups,
                "hits": c.hits,
                "misses": c.misses,
                "stores": c.stores,
                "evictions": c.evictions,
                "rejected": c.rejected,
                "restored_tokens": c.restored_tokens,
                "restore_failures": c.restore_failures,
            }

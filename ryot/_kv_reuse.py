"""KV reuse in the Ryot engine: which slot a request takes, what it skips, and prefix-cache snapshots.

Part of :mod:`ryot._engine`: a base of :class:`ryot._engine.RyotEngine` (the policy is described in
that module's docstring). A request takes the free slot sharing the longest prefix with its prompt, or
a state restored from the host-memory prefix cache (:mod:`ryot._prefix_cache`) when that saves at least
``_MIN_GAIN_TOKENS`` more; slots about to be overwritten, and finished ones while the worker is idle,
are snapshotted into the cache.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence

from ryot._llama import Sampler
from ryot._prefix_cache import PrefixCache, as_tokens
from ryot._schedule import MIN_PROMPT_ROWS, Job, Slot, choose_slot, least_recently_used
from ryot._step import _Decoding
from ryot._text import TextAssembler

_log = logging.getLogger(__name__)

_MIN_SNAPSHOT_TOKENS = 32
"""Shortest sequence worth a prefix-cache entry (its prefill takes a few tens of milliseconds)."""
_MIN_GAIN_TOKENS = 16
"""Restore from the prefix cache only when it saves at least this many prefill tokens over a slot (and
snapshot a slot's tokens only when at least this many would be lost)."""


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class _KVReuse(_Decoding):
    """Slot choice, KV reuse and prefix-cache snapshots (see :class:`ryot._engine.RyotEngine`).

    The attributes below are set by :meth:`ryot._engine.RyotEngine.__init__`.
    """

    _prefix_cache: PrefixCache | None
    _seeds: random.Random

    def _prefix_cache_unsupported(self) -> str:
        """Why this model's states cannot be reused from the prefix cache ("" when they can)."""
        if self._model.recurrent:
            return "recurrent or hybrid memory cannot be trimmed back to a shared prefix"
        if self._model.n_swa > 0 and not self.config.swa_full:
            return "sliding-window attention without swa_full keeps only the window; set swa_full=True"
        return ""

    def _window_ok(self, seq: int, reuse: int) -> bool:
        """Whether ``seq`` still holds every position the token after ``reuse`` kept tokens attends to."""
        if self._model.n_swa <= 0 or reuse <= 0:
            return True
        pos_min = self._ctx.seq_pos_min(seq)
        return pos_min <= 0 or pos_min <= reuse - self._model.n_swa

    def _prime_slots(self) -> None:
        """Put the BOS token's KV into every empty slot, so that no text prompt evaluates it.

        Every text prompt of a model that adds BOS starts with it, and raw llama-cpp-python keeps it from
        one prompt to the next: without this, each slot's first prompt evaluated one row more than raw
        llama-cpp-python's cold prompt (13 instead of 12 for ``benchmarks/llm_path.py``'s, ~7 % of its
        prefill: docs/ryot.md, "The cold prompt's prefill, stage by stage"). One ``llama_decode`` when
        the worker starts (on its thread: :meth:`ryot._worker._WorkerLoop._run`), with two rows per
        sequence (BOS twice; the second is removed): a row computed among two
        or more of its sequence gets the bits of a whole prefill (:data:`ryot._schedule.MIN_PROMPT_ROWS`),
        so a prompt after a primed BOS gets the logits of its cold prefill (``tests/ryot/cut_logits.py``).
        Nothing for recurrent models (their state cannot be trimmed back to one token).
        """
        model = self._model
        empty = [slot for slot in self._slots if not slot.cached and slot.job is None]
        if not model.add_bos or model.recurrent or not empty or 2 * len(empty) > self._batch.capacity:
            return
        batch = self._batch
        batch.clear()
        for slot in empty:  # consecutive sequence ids, two rows each: one micro-batch
            batch.add(model.bos, 0, slot.seq, False)
            batch.add(model.bos, 1, slot.seq, False)
        ok = self._ctx.decode(batch) == 0
        batch.clear()
        for slot in empty:
            if ok and self._ctx.seq_rm(slot.seq, 1, -1):
                slot.cached = [model.bos]
            else:  # pragma: no cover - llama.cpp refused: the slot's first prompt evaluates its BOS
                self._ctx.seq_rm(slot.seq, 0, -1)

    def _shared(self, slot: Slot, tokens: Sequence[int], namespace: str) -> int:
        """Leading tokens of ``tokens`` that ``slot`` holds and the request may reuse.

        Within ``namespace``, the common prefix; across namespaces only a leading BOS token, which every
        text prompt starts with, so that reusing it tells a tenant nothing about another's prompts.
        """
        if slot.namespace == namespace:
            return _common_prefix(slot.cached, tokens)
        bos = self._model.bos
        return int(bos >= 0 and bool(slot.cached) and bool(tokens) and slot.cached[0] == tokens[0] == bos)

    def _start(self, job: Job, free: list[Slot]) -> None:
        # Longest cached prefix wins; a match of at most one token (BOS) counts as none, so that such a
        # request takes the least recently used slot and leaves other slots' caches alone.
        tokens = job.tokens
        ns = job.params.prefix_namespace
        lcps = {id(s): self._shared(s, tokens, ns) for s in self._slots}
        busy = [s.seq for s in self._slots if s.job is not None]
        slot = choose_slot(free, busy, lambda s: lcps[id(s)], min_gain=_MIN_GAIN_TOKENS)
        p = job.params
        seed = p.seed if p.seed is not None else self._seeds.getrandbits(32)
        sampler = Sampler(self._spec(p, seed), self._model)  # first: if it raises, the slot is untouched
        limit = max(len(tokens) - MIN_PROMPT_ROWS, 0)  # evaluated: the last rows, as in a cold prefill
        reuse = min(lcps[id(slot)], limit)
        if not self._window_ok(slot.seq, reuse):
            reuse = 0  # a restored sliding-window state lacks the window below this prefix
        cache = self._prefix_cache
        share = min(max(lcps.values()), limit)  # the longest prefix any slot, busy or free, shares
        restored = tried = False
        if cache is not None and limit >= _MIN_SNAPSHOT_TOKENS:
            prompt = as_tokens(tokens)
            entry, hit, longest = cache.lookup(prompt, limit, ns)
            share = max(share, longest)
            if entry is not None and hit >= reuse + _MIN_GAIN_TOKENS:
                tried = True
                slot = least_recently_used(free, busy)
                self._save_evicted(slot, keep=0)
                if self._ctx.set_seq_state(entry.state, slot.seq) and self._window_ok(slot.seq, hit):
                    reuse, restored = hit, True
                else:
                    _log.warning("prefix cache: restoring %d tokens failed; prefilling", len(entry.tokens))
                    cache.record_failure(entry)
                    reuse = 0
                slot.cached = entry.tokens.tolist()  # what the sequence holds now (trimmed below)
            cache.record(entry if restored else None, reuse)
        if not tried:
            self._save_evicted(slot, keep=reuse)
        if not self._ctx.seq_rm(slot.seq, reuse, -1):
            self._ctx.seq_rm(slot.seq, 0, -1)
            reuse = 0
        slot.shared = set() if tried else {b for b in slot.shared if b <= reuse}
        if cache is not None and share >= _MIN_SNAPSHOT_TOKENS:
            slot.shared.add(share)
        slot.job = job
        slot.saved = False
        slot.namespace = ns
        slot.cached = job.tokens[:reuse]
        slot.pending = job.tokens[reuse:]
        slot.reused = reuse
        slot.next_token = None
        slot.n_sampled = 0
        slot.admitted_at = time.perf_counter()
        slot.sampler = sampler
        slot.text = TextAssembler(p.stop)

    def _unsaved_slot(self) -> Slot | None:
        """A slot whose whole sequence the prefix cache does not hold yet (``None``: none, or no cache)."""
        if self._prefix_cache is None:
            return None
        for slot in self._slots:
            if not slot.saved and len(slot.cached) >= _MIN_SNAPSHOT_TOKENS:
                return slot
        return None

    def _save_whole(self, slot: Slot) -> None:
        """Snapshot all of ``slot.cached`` unless done before for these tokens or the cache covers them.

        The worker calls it for finished slots while idle, so that evicting one later costs the next
        request nothing, and from :meth:`_save_evicted` for a slot the idle pass did not reach.
        """
        cache = self._prefix_cache
        if cache is None or slot.saved:
            return
        slot.saved = True
        if not cache.covers(as_tokens(slot.cached), slot.namespace):
            self._snapshot(slot.seq, slot.cached, slot.namespace)

    def _save_evicted(self, slot: Slot, keep: int) -> None:
        """Snapshot ``slot`` into the prefix cache before its tokens past ``keep`` are dropped.

        Saves its whole sequence, then each shared prefix longer than ``keep``: the caller is about to
        trim the sequence anyway, and trimming first makes the saved state end at that prefix, which a
        sliding-window model needs (see :mod:`ryot._prefix_cache`). Covered ones are skipped.
        """
        cache = self._prefix_cache
        n = len(slot.cached)
        if cache is None or n < _MIN_SNAPSHOT_TOKENS or n - keep < _MIN_GAIN_TOKENS:
            return  # too little would be lost for a later restore to pay off (see _MIN_GAIN_TOKENS)
        self._save_whole(slot)
        for b in sorted(slot.shared, reverse=True):
            if b - keep < _MIN_GAIN_TOKENS or b < _MIN_SNAPSHOT_TOKENS:
                break
            if b >= len(slot.cached) or cache.covers(as_tokens(slot.cached[:b]), slot.namespace):
                continue
            if not self._window_ok(slot.seq, b) or not self._ctx.seq_rm(slot.seq, b, -1):
                continue
            del slot.cached[b:]
            self._snapshot(slot.seq, slot.cached, slot.namespace)

    def _snapshot(self, seq: int, tokens: Sequence[int], namespace: str) -> None:
        """Save the state of ``seq``, which holds exactly ``tokens``, into the prefix cache."""
        cache = self._prefix_cache
        assert cache is not None
        state = self._ctx.seq_state(seq)
        if state is not None:
            cache.put(as_tokens(tokens), state, cache.pos_min_of(len(tokens)), namespace)

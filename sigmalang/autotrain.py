"""Dictionaries trained from a tenant's own traffic, off the compress path (`AutoTrainer`).

A client of the service only posts messages; nobody calls `train_dictionary`. As zstd's own docs
recommend for many small messages of one kind (``zstd --train``; python-zstandard
``train_dictionary``), the codec trains one for each tenant from what it sent:

1. After each store-backed `SigmaCodec.compress`, the message's *new* bytes (the chunks its tenant's
   store did not hold, the part a dictionary can still help: the context covers the rest) join the
   tenant's sample buffer, grouped per message, at most `SigmaConfig.auto_dictionary_sample_max_bytes`
   (the oldest messages dropped first; a message's new bytes beyond it are not kept); at most
   `MAX_COLLECTING_TENANTS` tenants collect at once.
2. Once the tenant's new bytes reach `SigmaConfig.auto_dictionary_min_new_bytes` (and again each time
   they double, up to `auto_dictionary_retrain_max_new_bytes`; then every
   `auto_dictionary_drift_period_bytes`, so a tenant whose traffic changes gets a dictionary of its
   new traffic), a background thread trains a dictionary on the buffer (zstd's fastCover trainer).
3. The check: a dictionary trained on all but the last eighth of the messages must code that last
   eighth (each new chunk alone, zstd level `small_input_level`) in fewer bytes than the dictionary the
   tenant uses now (the generic one, or its previous automatic one), counting the 4-byte dictionary id
   a trained dictionary adds to every frame (the generic one is named by a flag). If it does not, the
   tenant keeps what it has; if it does, that same dictionary (the one checked, not trained again on
   all of them) is registered as the tenant's (`DictionaryRegistry.add`: written to the registry's
   directory, published to its `DictionarySource`, marked `Dictionary.automatic`) and names the
   tenant's later frames. Earlier frames keep their dictionary ids; the registry keeps the tenant's
   `auto_dictionary_max_kept` latest automatic dictionaries (`DictionaryRegistry.prune_automatic`).

A tenant whose own dictionary came from elsewhere (`SigmaCodec.train_dictionary(..., tenant=T)`, or
one added to the registry without the automatic mark) is left alone: automatic training never
replaces it. A tenant whose active dictionary is automatic (e.g. loaded from the registry's directory
after a restart) is trained again after `auto_dictionary_drift_period_bytes` of new bytes.
`forget` drops a tenant's buffer and any training in progress (its result is discarded).

Measured in docs/sigmalang.md, "Dictionaries trained from a tenant's own traffic".
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import zstandard
from cachetools import LRUCache

from sigmalang.config import SigmaConfig
from sigmalang.dictionary import Dictionary, DictionaryRegistry, train_dictionary

__all__ = ("MAX_COLLECTING_TENANTS", "AutoDictionaryStatus", "AutoTrainer")

MAX_COLLECTING_TENANTS = 256
"""Tenants whose samples are kept at once (least recently active dropped: it starts collecting again)."""
_MAX_SETTLED_TENANTS = 65536  # tenants remembered as done (no more training) or with their own dictionary
_PIECE_BYTES = 8192  # a sample longer than this (a message stored whole) is cut into pieces of it
_HELD_BACK = 8  # the last 1/8 of the messages checks the dictionary trained on the others
_DICT_ID_BYTES = 4  # what naming a trained dictionary adds to each frame (the generic one: a flag)
_MIN_SAMPLES = 8
_COVER = (512, 6, 14, 4)
"""zstd fastCover (k, d, f, accel) for automatic dictionaries. Against zstd's own search of k and d,
about a sixth of the training CPU for ratios within -0.6% / +0.5% on the benchmark draws; f 14 (a
16 Ki-entry d-mer frequency table, against 18) halves what is left (~1.1-1.5 ms per dictionary on
56-224 KiB of new chunks) for ratios within -0.11% / +0.33% (docs/sigmalang.md, "Training for less
CPU")."""
_SPLIT_POINT = 0.99
"""Share of the samples zstd's fastCover trains on; it codes the rest to score its one (k, d) pair.
The held-back check scores the dictionary, so zstd keeps only a piece or two (its default, 0.75, left
the newest quarter of the samples out of the dictionary and spent CPU coding them)."""

log = logging.getLogger(__name__)

State = Literal["collecting", "training", "trained", "own"]


@dataclass(frozen=True, slots=True)
class AutoDictionaryStatus:
    """Where a tenant's automatic dictionary stands.

    Attributes:
        state: ``collecting`` (samples being gathered for the next training: a scheduled one, or a
            retraining after `SigmaConfig.auto_dictionary_drift_period_bytes`), ``training`` (a
            training queued or running), ``trained`` (no more trainings: the last threshold passed and
            drift retraining is off), ``own`` (the tenant's active dictionary is one a user chose:
            left alone).
        new_bytes: New bytes seen for the tenant since it started collecting (in this process), bytes.
        sample_bytes: Bytes held in its sample buffer now.
        trainings: Trainings run in this process (kept or not).
        kept: Trainings whose dictionary passed the check and was registered.
        dict_id: Id of the tenant's active automatic dictionary (registered here, or found in the
            registry, e.g. loaded from its directory at start), or None.
    """

    state: State
    new_bytes: int = 0
    sample_bytes: int = 0
    trainings: int = 0
    kept: int = 0
    dict_id: int | None = None


class _Tenant:
    __slots__ = (
        "dict_id",
        "drifting",
        "kept",
        "messages",
        "new_bytes",
        "next_at",
        "pending",
        "queued_at",
        "sample_bytes",
        "trainings",
    )

    def __init__(self, next_at: int) -> None:
        self.messages: deque[tuple[bytes, ...]] = deque()
        self.sample_bytes = 0
        self.new_bytes = 0
        self.next_at: int = next_at
        self.queued_at = 0  # new_bytes when its training was queued
        self.pending = False
        self.trainings = 0
        self.kept = 0
        self.dict_id: int | None = None
        self.drifting = False  # past the scheduled trainings: retrained every drift period


class AutoTrainer:
    """Per-tenant sample buffers and a background thread that trains each tenant's dictionary.

    Thread-safe. The thread starts with the first training and stops in `close`.

    Args:
        registry: Where dictionaries are registered (and thereby written and published).
        config: Thresholds, bounds and sizes (`SigmaConfig.auto_dictionary_*`);
            ``auto_dictionary_min_new_bytes == 0`` turns it off.
        fallback: The dictionary a tenant without its own uses (the generic one), or None.
    """

    def __init__(
        self, registry: DictionaryRegistry, config: SigmaConfig, *, fallback: Dictionary | None
    ) -> None:
        self._registry = registry
        self._config = config
        self._fallback = fallback
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._commit = threading.Lock()  # held while a result is registered, and by forget/claim
        self._collecting: LRUCache[str, _Tenant] = LRUCache(MAX_COLLECTING_TENANTS)
        self._settled: LRUCache[str, AutoDictionaryStatus] = LRUCache(_MAX_SETTLED_TENANTS)
        self._jobs: deque[tuple[str, _Tenant, list[tuple[bytes, ...]]]] = deque()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        """Whether tenants' dictionaries are trained automatically."""
        return self._config.auto_dictionary_min_new_bytes > 0

    def observe(self, tenant: str, new: Sequence[bytes | memoryview]) -> None:
        """Add one message's new bytes to ``tenant``'s samples; queue a training at a threshold.

        Args:
            tenant: The message's tenant.
            new: Its new bytes (the chunks its store did not hold), in order.
        """
        cfg = self._config
        if not cfg.auto_dictionary_min_new_bytes or not new:
            return
        with self._lock:
            if self._closed or tenant in self._settled:
                return
            state = self._collecting.get(tenant)
            if state is None:
                state = self._start(tenant)
                if state is None:
                    return
            state.new_bytes += sum(map(len, new))
            pieces = _pieces(new, cfg.auto_dictionary_sample_max_bytes)
            state.messages.append(pieces)
            state.sample_bytes += sum(map(len, pieces))
            while state.sample_bytes > cfg.auto_dictionary_sample_max_bytes:  # the new one alone fits
                state.sample_bytes -= sum(map(len, state.messages.popleft()))
            if state.pending or state.new_bytes < state.next_at:
                return
            state.pending = True
            state.queued_at = state.new_bytes
            self._jobs.append((tenant, state, list(state.messages)))
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sigma-autotrain", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def _start(self, tenant: str) -> _Tenant | None:
        """``tenant``'s new state from its active dictionary in the registry (or None: settled). Locked."""
        cfg = self._config
        current = self._registry.own_active(tenant)
        settled = _settled(current, cfg)
        if settled is not None:
            self._settled[tenant] = settled
            return None
        if current is None:
            state = _Tenant(cfg.auto_dictionary_min_new_bytes)
        else:  # an automatic one from before (a restart, or dropped from the collecting tenants)
            state = _Tenant(cfg.auto_dictionary_drift_period_bytes)
            state.dict_id = current.dict_id
            state.drifting = True
        self._collecting[tenant] = state
        return state

    def claim(self, tenant: str) -> None:
        """Mark ``tenant`` as having its own dictionary: no automatic training (and drop its samples)."""
        with self._commit, self._lock:
            self._settle_own(tenant)

    def _settle_own(self, tenant: str) -> None:
        """Drop ``tenant``'s samples and mark it ``own`` (no automatic training). Locked."""
        self._collecting.pop(tenant, None)
        self._settled[tenant] = AutoDictionaryStatus("own")

    def forget(self, tenant: str) -> None:
        """Drop ``tenant``'s samples and state; a training in progress for it is discarded."""
        with self._commit, self._lock:
            self._collecting.pop(tenant, None)
            self._settled.pop(tenant, None)

    def status(self, tenant: str) -> AutoDictionaryStatus | None:
        """Where ``tenant``'s automatic dictionary stands.

        A tenant not seen in this process is reported from its active dictionary in the registry
        (``own``; ``collecting`` or ``trained`` for an automatic one, with its id), or None if it has
        none (and the process has seen no new bytes of it).
        """
        with self._lock:
            settled = self._settled.get(tenant)
            if settled is not None:
                return settled
            state = self._collecting.get(tenant)
            if state is None:
                current = self._registry.own_active(tenant)
                if current is None or not self.enabled:
                    return None
                found = _settled(current, self._config)
                return found or AutoDictionaryStatus("collecting", dict_id=current.dict_id)
            return AutoDictionaryStatus(
                "training" if state.pending else "collecting",
                state.new_bytes,
                state.sample_bytes,
                state.trainings,
                state.kept,
                state.dict_id,
            )

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until no training is queued or running.

        Args:
            timeout_s: Give up after this many seconds (None: wait as long as it takes).

        Returns:
            Whether it is idle (False: timed out).
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._busy == 0, timeout_s)

    def close(self) -> None:
        """Stop the background thread (a training in progress finishes first; queued ones are dropped).

        Idempotent. Later messages are not sampled.
        """
        with self._changed:
            self._closed = True
            dropped = len(self._jobs)
            self._jobs.clear()
            self._busy -= dropped
            thread = self._thread
            self._changed.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._jobs) or self._closed)
                if not self._jobs:
                    return
                tenant, state, messages = self._jobs.popleft()
            try:
                self._train(tenant, state, messages)
            except Exception:  # a failed publish or training must not stop later tenants'
                log.exception("sigmalang: automatic dictionary training failed for a tenant")
                with self._lock:
                    state.pending = False
                    period = self._config.auto_dictionary_drift_period_bytes
                    state.next_at = state.new_bytes + period if state.drifting else state.new_bytes * 2
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()

    def _train(self, tenant: str, state: _Tenant, messages: list[tuple[bytes, ...]]) -> None:
        cfg = self._config
        held_n = max(1, len(messages) // _HELD_BACK)
        train_part, held = messages[:-held_n], messages[-held_n:]
        current = self._registry.own_active(tenant)
        if current is not None and not current.automatic:  # a user's choice, added meanwhile
            self.claim(tenant)
            return
        candidate = self._trained([p for m in train_part for p in m])
        in_use = current if current is not None else self._registry.active_for(tenant) or self._fallback
        better = candidate is not None and (
            _cost(candidate, held, cfg.small_input_level) + _DICT_ID_BYTES * len(held)
            < _cost(in_use, held, cfg.small_input_level)
            + (_DICT_ID_BYTES * len(held) if in_use is not self._fallback else 0)
        )
        final = candidate if better else None  # the dictionary checked is the one registered
        doubled = state.next_at * 2
        with self._commit:  # claim and forget wait for this block, so neither is undone by it
            current = self._registry.own_active(tenant)
            with self._lock:
                if self._collecting.get(tenant) is not state:  # forgotten (or dropped) meanwhile
                    return
                if current is not None and not current.automatic:  # a user's choice, added meanwhile
                    self._settle_own(tenant)
                    return
            if final is not None:
                self._registry.add(final, tenant=tenant)
                self._registry.prune_automatic(tenant, cfg.auto_dictionary_max_kept)
            with self._lock:
                state.trainings += 1
                state.pending = False
                if final is not None:
                    state.kept += 1
                    state.dict_id = final.dict_id
                if not state.drifting and doubled <= cfg.auto_dictionary_retrain_max_new_bytes:
                    state.next_at = doubled
                elif cfg.auto_dictionary_drift_period_bytes:
                    state.drifting = True
                    state.next_at = state.queued_at + cfg.auto_dictionary_drift_period_bytes
                else:
                    self._collecting.pop(tenant, None)
                    self._settled[tenant] = AutoDictionaryStatus(
                        "trained", state.new_bytes, 0, state.trainings, state.kept, state.dict_id
                    )

    def _trained(self, samples: list[bytes]) -> Dictionary | None:
        total = sum(map(len, samples))
        size = min(self._config.auto_dictionary_size_bytes, total // 2)
        if size < 256:
            return None
        trained = train_dictionary(
            samples,
            size_bytes=size,
            min_samples=_MIN_SAMPLES,
            level=self._config.small_input_level,
            cover=_COVER,
            split_point=_SPLIT_POINT,
        )
        return None if trained is None else Dictionary(trained.data, automatic=True)


def _settled(current: Dictionary | None, config: SigmaConfig) -> AutoDictionaryStatus | None:
    """The status of a tenant whose active dictionary is ``current`` when it trains no more, else None."""
    if current is None:
        return None
    if not current.automatic:
        return AutoDictionaryStatus("own")
    if not config.auto_dictionary_drift_period_bytes:
        return AutoDictionaryStatus("trained", dict_id=current.dict_id)
    return None


def _pieces(new: Sequence[bytes | memoryview], limit: int) -> tuple[bytes, ...]:
    """A message's new bytes as samples of at most `_PIECE_BYTES`, the first `limit` bytes only."""
    out: list[bytes] = []
    for part in new:
        for i in range(0, len(part), _PIECE_BYTES):
            piece = bytes(part[i : i + min(_PIECE_BYTES, limit)])
            out.append(piece)
            limit -= len(piece)
            if limit <= 0:
                return tuple(out)
    return tuple(out)


def _cost(dictionary: Dictionary | None, messages: list[tuple[bytes, ...]], level: int) -> int:
    """Bytes of each piece of ``messages`` compressed alone with ``dictionary`` (or none).

    One call for all pieces (`multi_compress_to_buffer`): each call into zstd releases the GIL, and
    taking it back waits for the compressing threads' switch interval (5 ms), so a call per piece
    made a training take 70 compress calls (145 ms) of the service's other threads to finish.
    """
    zdict = zstandard.ZstdCompressionDict(dictionary.data) if dictionary is not None else None
    compressor = zstandard.ZstdCompressor(level=level, dict_data=zdict)
    pieces: list[bytes | bytearray | memoryview] = [p for m in messages for p in m]
    return int(compressor.multi_compress_to_buffer(pieces).size()) if pieces else 0

"""The lossless ΣLANG codec: one-shot `compress`/`decompress` and the stateful `SigmaCodec`.

`SigmaCodec.compress` (store-backed, per tenant; details in `sigmalang._context`):

1. Split the input into content-defined chunks (FastCDC, `sigmalang.chunking`); store them as the
   tenant's RSUs (a present chunk keeps its sequence number).
2. Choose the context: the previous message of the same stream, the tenant's RSUs this message
   repeats, and RSUs sharing sentences with its new chunks; acquire a reference on each.
3. zstd-compress the whole message with that context as a raw-content dictionary (or with the trained
   dictionary, or stored raw: the smallest wins).
4. Write a version-2 frame naming the context by sequence-number runs, with a MAC keyed per tenant.

Bounded: the store keeps at most ``store_max_bytes`` per tenant and forgets RSUs unused for
``store_max_age_s``; a frame whose context was evicted fails with `MissingRSUError`, never wrong bytes.
Frames are decoded with the same store, secret and dictionaries; one store may serve many codecs,
threads or (with `DiskRSUStore`) processes. The one-shot `compress` never uses a store: its frames
(version 1) are self-contained.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from functools import partial

from cachetools import LRUCache

from sigmalang import _context, _engine
from sigmalang._anchors import AnchorIndex, anchors, words
from sigmalang._base import Previous, parse_manifest
from sigmalang.autotrain import AutoDictionaryStatus, AutoTrainer
from sigmalang.chunking import chunk_spans, rsu_id
from sigmalang.config import SigmaConfig
from sigmalang.dictionary import Dictionary, DictionaryRegistry, train_dictionary
from sigmalang.errors import MissingRSUError
from sigmalang.frame import F_GENERIC, STORE_VERSIONS, FrameInfo, inspect_frame, tenant_key
from sigmalang.generic import generic_dictionary
from sigmalang.memory_store import MemoryRSUStore
from sigmalang.report import CompressionReport, CompressionResult
from sigmalang.store import GCResult, Retention, RSUStore

__all__ = ("SigmaCodec", "compress", "decompress")

_DEFAULT_CONFIG = SigmaConfig()
_MAX_STREAMS = 4096  # streams remembered for context, least recently used dropped first
_MAX_TENANT_INDEXES = 1024  # tenants whose anchor index is kept in memory
_NONE = Previous(())


def compress(
    data: bytes,
    *,
    level: int | None = None,
    dictionary: Dictionary | None = None,
    config: SigmaConfig | None = None,
) -> bytes:
    """Compress bytes into a self-contained ΣLANG frame (no RSU store involved).

    Args:
        data: Any bytes, including empty.
        level: zstd level; default from `config` (`small_input_level` below `small_input_bytes`, else
            `level`).
        dictionary: A trained dictionary to use if it makes the frame smaller; the decoder needs it.
        config: Codec configuration; default `SigmaConfig()`.

    Returns:
        The frame; at most ``len(data)`` + about 20 bytes (incompressible data is stored RAW).
    """
    cfg = config or _DEFAULT_CONFIG
    return _engine.encode(data, config=cfg, dictionary=dictionary, level=level, count_tokens=None).frame


def decompress(
    frame: bytes,
    *,
    dictionaries: DictionaryRegistry | Iterable[Dictionary] | None = None,
    max_output_bytes: int | None = None,
) -> bytes:
    """Decode a self-contained ΣLANG frame (from `compress`) to exactly the bytes that were compressed.

    Store-backed frames (version 2, from `SigmaCodec.compress`) are decoded by `SigmaCodec.decompress`
    with their tenant.

    Args:
        frame: A frame from `compress`.
        dictionaries: Dictionaries the frame may name.
        max_output_bytes: Refuse frames declaring more content, bytes; default
            `SigmaConfig.max_output_bytes` (1 GiB).

    Returns:
        The original bytes.

    Raises:
        FrameError: Truncated, foreign, unknown-version, corrupted or inconsistent frame (subclasses:
            `TruncatedFrameError`, `BadMagicError`, `UnsupportedVersionError`,
            `ChecksumMismatchError`, `CorruptFrameError`).
        OutputTooLargeError: The frame declares more than `max_output_bytes`.
        MissingRSUError: The frame references RSUs (an old store-backed version-1 frame).
        MissingDictionaryError: The frame's dictionary is not among `dictionaries`.
    """
    registry = _registry(dictionaries)
    limit = _DEFAULT_CONFIG.max_output_bytes if max_output_bytes is None else max_output_bytes
    return _engine.decode(
        frame,
        dictionaries=registry.get if registry is not None else None,
        max_output_bytes=limit,
    )


def _registry(
    dictionaries: DictionaryRegistry | Iterable[Dictionary] | None,
) -> DictionaryRegistry | None:
    if dictionaries is None or isinstance(dictionaries, DictionaryRegistry):
        return dictionaries
    return DictionaryRegistry.of(dictionaries)


class SigmaCodec:
    """Stateful codec: a per-tenant RSU store, stream contexts and trained dictionaries.

    Frames are version 2 (`sigmalang.frame`): each is compressed against what its tenant's store
    already holds (`sigmalang._context`), names that context by sequence numbers, and carries a MAC
    keyed per tenant, so it decodes only for the tenant it was made for. Thread-safe when its store is
    (both provided stores are).

    Args:
        store: RSU store; default a new `MemoryRSUStore` with the config's retention.
        dictionaries: Dictionary registry; default an empty in-memory one.
        config: Codec configuration; default `SigmaConfig()`.
        count_tokens: Token counter for reports (e.g. the LLM's tokenizer); reports carry no token
            counts without it.
        secret: The service secret the tenants' MAC keys derive from (16-64 bytes); default a random
            one (frames then decode only in this process). A service whose store outlives the process
            keeps its secret with it.

    Example:
        >>> codec = SigmaCodec()
        >>> first = codec.compress(b"system prompt ... " * 100, tenant="acme")
        >>> codec.decompress(first.frame, tenant="acme") == b"system prompt ... " * 100
        True
    """

    def __init__(
        self,
        *,
        store: RSUStore | None = None,
        dictionaries: DictionaryRegistry | None = None,
        config: SigmaConfig | None = None,
        count_tokens: Callable[[str], int] | None = None,
        secret: bytes | None = None,
    ) -> None:
        self.config = config or _DEFAULT_CONFIG
        self.store: RSUStore = (
            store
            if store is not None
            else MemoryRSUStore(retention=Retention(self.config.store_max_bytes, self.config.store_max_age_s))
        )
        self.dictionaries = dictionaries if dictionaries is not None else DictionaryRegistry()
        self._generic: Dictionary | None = None
        if self.config.generic_dictionary:
            self._generic = generic_dictionary()
            self.dictionaries.add_builtin(self._generic)
        self.count_tokens = count_tokens
        if secret is not None and not 16 <= len(secret) <= 64:
            raise ValueError(f"the secret must be 16-64 bytes, got {len(secret)}")
        self._secret = secret if secret is not None else os.urandom(32)
        self._lock = threading.Lock()
        # Hints, least recently used out (cachetools; guarded by _lock): a lost one makes a frame larger,
        # never wrong (a frame names its context).
        self._streams: LRUCache[tuple[str, Hashable], Previous] = LRUCache(_MAX_STREAMS)
        self._indexes: LRUCache[str, AnchorIndex] = LRUCache(_MAX_TENANT_INDEXES)
        self._latest: LRUCache[str, Previous] = LRUCache(_MAX_TENANT_INDEXES)  # tenant -> its latest message
        self._keys: dict[str, bytes] = {}
        self._auto = AutoTrainer(self.dictionaries, self.config, fallback=self._generic)

    def key(self, tenant: str) -> bytes:
        """The MAC key of `tenant`'s frames (32 bytes, derived from the secret)."""
        found = self._keys.get(tenant)
        if found is None:
            found = tenant_key(self._secret, tenant)
            with self._lock:
                if len(self._keys) >= _MAX_STREAMS:
                    self._keys.clear()
                self._keys[tenant] = found
        return found

    def _index(self, tenant: str) -> AnchorIndex:
        with self._lock:
            try:  # item access: a hit is one look-up and the recency update (``get`` adds an ``in``)
                return self._indexes[tenant]
            except KeyError:
                index = self._indexes[tenant] = AnchorIndex()
                return index

    def compress(
        self,
        data: bytes,
        *,
        tenant: str = "default",
        dedup: bool = True,
        level: int | None = None,
        stream: Hashable = None,
    ) -> CompressionResult:
        """Compress one message of `tenant` against what the tenant's store already holds.

        The frame holds one reference on each context RSU until `release` is called with it.

        Args:
            data: The message bytes.
            tenant: Whose store, contexts and key to use; frames of one tenant never reveal or use
                another tenant's content.
            dedup: Use and feed the store (a version-2 frame); False makes a self-contained version-1
                frame that any ΣLANG decoder with the same dictionary reads.
            level: zstd level; default from the config.
            stream: Names the conversation the message belongs to (e.g. a session id); the previous
                message of the same tenant and stream is the first part of the context, and for the
                first message of a stream, the tenant's latest message of any stream (a new session
                re-sends the system prompt and tools of the last one).

        Returns:
            The frame and its `CompressionReport`.

        Raises:
            RSUStoreError: The store is closed or broken.
        """
        if not dedup:
            return _engine.encode(
                data,
                config=self.config,
                dictionary=self.dictionaries.active_for(tenant),
                level=level,
                count_tokens=self.count_tokens,
            )
        with self._lock:
            previous = self._streams.get((tenant, stream), _NONE) if stream is not None else _NONE
            if stream is not None and not previous.seqs:  # a new conversation: the tenant's latest message
                previous = self._latest.get(tenant, _NONE)
        active = self.dictionaries.active_for(tenant)
        result, own = _context.encode(
            data,
            tenant=tenant,
            key=self.key(tenant),
            store=self.store,
            index=self._index(tenant),
            previous=previous.seqs,
            previous_record=previous,
            config=self.config,
            dictionary=active or self._generic,
            generic=active is None and self._generic is not None,
            level=level,
            count_tokens=self.count_tokens,
        )
        if stream is not None and own.seqs:
            with self._lock:
                self._streams[(tenant, stream)] = own
                self._latest[tenant] = own
        if self._auto.enabled:
            self._auto.observe(tenant, _new_bytes(result.report, data))
        return result

    def decompress(
        self, frame: bytes, *, tenant: str = "default", max_output_bytes: int | None = None
    ) -> bytes:
        """Decode a frame of `tenant` (or any self-contained version-1 frame).

        Raises:
            FrameAuthenticationError: The frame was made for another tenant, or altered.
            FrameError: Malformed frame (see `decompress`).
            OutputTooLargeError: More content than `max_output_bytes` (default from the config).
            MissingRSUError: A context RSU is no longer in the tenant's store (evicted or collected).
            MissingDictionaryError: The frame's dictionary is neither registered (for `tenant`, or
                shared) nor in the registry's source.
        """
        limit = self.config.max_output_bytes if max_output_bytes is None else max_output_bytes
        lookup = partial(self.dictionaries.get, tenant=tenant)
        if frame[2:3] and frame[2] in STORE_VERSIONS:
            return _context.decode(
                frame,
                tenant=tenant,
                key=self.key(tenant),
                store=self.store,
                dictionaries=lookup,
                generic=self._generic_dictionary,
                max_output_bytes=limit,
            )
        return _engine.decode(frame, dictionaries=lookup, max_output_bytes=limit)

    def _generic_dictionary(self) -> Dictionary:
        return self._generic if self._generic is not None else generic_dictionary()

    def inspect(self, frame: bytes, *, tenant: str = "default") -> FrameInfo:
        """A frame's header, its MAC verified for `tenant` (see `inspect_frame`).

        For a version-3 frame with a base, `FrameInfo.context` also lists the base message's RSUs,
        read from the base's manifest in the tenant's store (when the manifest is gone, only the
        manifest's own sequence number is listed: the frame cannot decode), and a generic-dictionary
        frame's `dict_id` is the generic dictionary's id.

        Raises:
            FrameError: Malformed frame, or not `tenant`'s (`FrameAuthenticationError`).
        """
        info = inspect_frame(frame, key=self.key(tenant))
        if info.flags & F_GENERIC:
            info = dataclasses.replace(info, dict_id=self._generic_dictionary().dict_id)
        if info.base is None:
            return info
        try:
            listed = parse_manifest(self.store.get_many(tenant, [info.base])[0])
        except MissingRSUError:
            return info
        return dataclasses.replace(info, context=tuple(dict.fromkeys([*info.context, *listed])))

    def release(self, frame: bytes, *, tenant: str = "default") -> None:
        """Drop the references a frame of `tenant` holds, once the frame is deleted.

        Context RSUs already evicted are skipped (their counts went with them).

        Raises:
            FrameError: Malformed frame, or not `tenant`'s (`FrameAuthenticationError`).
            RSUStoreError: The frame was already released (a count would go below zero).
        """
        info = self.inspect(frame, tenant=tenant)
        if info.context:
            self.store.release(tenant, info.context)

    def forget_tenant(self, tenant: str) -> GCResult:
        """Remove every RSU, stream context, anchor and trained dictionary of `tenant`.

        Its frames stop decoding. The dictionaries go from the registry's memory and directory
        (`DictionaryRegistry.forget_tenant`); its automatic-training samples are dropped and a training
        in progress for it is discarded.
        """
        self._auto.forget(tenant)
        with self._lock:
            self._indexes.pop(tenant, None)
            self._latest.pop(tenant, None)
            for key in [k for k in self._streams if k[0] == tenant]:
                del self._streams[key]
        self.dictionaries.forget_tenant(tenant)
        return self.store.drop_tenant(tenant)

    def train_dictionary(
        self, samples: Sequence[bytes], *, activate: bool = True, tenant: str | None = None
    ) -> Dictionary | None:
        """Train a dictionary on sample messages, register it and (by default) use it for new frames.

        Args:
            samples: Typical messages.
            activate: Make it the active dictionary (of `tenant`).
            tenant: Whose dictionary it is: used for, and decodable by, that tenant's frames only;
                None makes it shared by every tenant without one of its own.

        Returns:
            The dictionary, or None when there were too few samples (`dictionary_min_samples`); the
            codec then keeps compressing without one. A tenant's dictionary trained here is never
            replaced by automatic training (`SigmaConfig.auto_dictionary_min_new_bytes`).
        """
        dictionary = train_dictionary(
            samples,
            size_bytes=self.config.dictionary_size_bytes,
            min_samples=self.config.dictionary_min_samples,
            level=self.config.small_input_level,
        )
        if dictionary is not None:
            if tenant is not None and activate:  # before `add`: no automatic one is registered after it
                self._auto.claim(tenant)
            self.dictionaries.add(dictionary, activate=activate, tenant=tenant)
        return dictionary

    def auto_dictionary_status(self, tenant: str) -> AutoDictionaryStatus | None:
        """Where `tenant`'s automatically trained dictionary stands (`sigmalang.autotrain`).

        A tenant this codec has not seen yet is reported from its active dictionary in the registry
        (e.g. loaded from the registry's directory at start): ``own`` for one a user chose, else
        ``collecting`` (retrained after `SigmaConfig.auto_dictionary_drift_period_bytes` of new
        bytes) or ``trained`` (drift retraining off) with its id.

        Returns:
            Its status, or None if the tenant has no dictionary of its own and the codec has seen no new
            bytes of it (or automatic training is off).
        """
        return self._auto.status(tenant)

    def wait_auto_dictionaries(self, timeout_s: float | None = None) -> bool:
        """Block until no automatic dictionary training is queued or running.

        Args:
            timeout_s: Give up after this many seconds (None: no limit).

        Returns:
            Whether none is (False: timed out).
        """
        return self._auto.wait_idle(timeout_s)

    def close(self) -> None:
        """Stop automatic dictionary training (one in progress finishes first). Idempotent.

        The store is not closed: whoever made it closes it.
        """
        self._auto.close()

    def pin(self, data: bytes, *, tenant: str = "default") -> tuple[bytes, ...]:
        """Store `data` as RSUs of `tenant` and pin them, e.g. a system prompt every session starts with.

        Pinned RSUs survive garbage collection and retention.

        Returns:
            The ids of the pinned RSUs (16 bytes each), in order.
        """
        view = memoryview(bytes(data))
        chunks = [bytes(view[o : o + n]) for o, n in chunk_spans(view, self.config)]
        items = [(rsu_id(c), c) for c in chunks]
        put = self.store.put_many(tenant, items)
        index = self._index(tenant)
        with_words = self.config.word_context_per_new_chunk > 0
        for (seq, fresh), (cid, chunk) in zip(put, items, strict=True):
            if fresh:
                index.add(seq, anchors(chunk), words(chunk) if with_words else None)
            self.store.pin(tenant, cid)
        return tuple(cid for cid, _ in items)


def _new_bytes(report: CompressionReport, data: bytes) -> Sequence[bytes | memoryview]:
    """The message's new bytes (chunks its tenant did not hold), as the report's attribution keeps them."""
    basis = report.alone
    if basis.parts is not None:
        return basis.parts
    return (data,) if basis.measured_bytes == len(data) else ()

"""The lossless ΣLANG codec: one-shot `compress`/`decompress` and the stateful `SigmaCodec`.

Pipeline of `SigmaCodec.compress`:

1. Split the input into content-defined chunks (FastCDC, `sigmalang.chunking`) and hash each one.
2. Every chunk the RSU store already holds becomes a *glyph* (a reference by id); the store count of
   each referenced RSU is incremented, so it outlives garbage collection while the frame is in use.
   The other chunks stay in the frame as literal bytes and are added to the store, so the next message
   that repeats them (the same system prompt, tool schemas, documents or history) references them.
3. The literal bytes are zstd-compressed with whichever is smallest: no dictionary, the referenced
   RSUs' content as a raw dictionary (catches near-duplicates: an edited turn, a grown history), or
   the active trained dictionary (helps short messages).
4. Everything goes into a versioned, checksummed frame (`sigmalang.frame`).

Frames are decoded with the same store and dictionaries; one store may serve many codecs, threads or
(with `DiskRSUStore`) processes. The one-shot `compress` never uses a store, so its frames are
self-contained.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence

from sigmalang import _engine
from sigmalang.chunking import chunk_spans, rsu_id
from sigmalang.config import SigmaConfig
from sigmalang.dictionary import Dictionary, DictionaryRegistry, train_dictionary
from sigmalang.frame import inspect_frame
from sigmalang.memory_store import MemoryRSUStore
from sigmalang.report import CompressionResult
from sigmalang.store import RSUStore

__all__ = ("SigmaCodec", "compress", "decompress")

_DEFAULT_CONFIG = SigmaConfig()
_MAX_STREAMS = 4096  # streams remembered for context, least recently used dropped first


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
    result, _ = _engine.encode(
        data, config=cfg, store=None, dictionary=dictionary, level=level, count_tokens=None
    )
    return result.frame


def decompress(
    frame: bytes,
    *,
    dictionaries: DictionaryRegistry | Iterable[Dictionary] | None = None,
    store: RSUStore | None = None,
    max_output_bytes: int | None = None,
) -> bytes:
    """Decode a ΣLANG frame to exactly the bytes that were compressed.

    Args:
        frame: A frame from `compress` or `SigmaCodec.compress`.
        dictionaries: Dictionaries the frame may name.
        store: RSU store for frames that reference RSUs.
        max_output_bytes: Refuse frames declaring more content, bytes; default
            `SigmaConfig.max_output_bytes` (1 GiB).

    Returns:
        The original bytes.

    Raises:
        FrameError: Truncated, foreign, unknown-version, corrupted or inconsistent frame (subclasses:
            `TruncatedFrameError`, `BadMagicError`, `UnsupportedVersionError`,
            `ChecksumMismatchError`, `CorruptFrameError`).
        OutputTooLargeError: The frame declares more than `max_output_bytes`.
        MissingRSUError: A referenced RSU is not in `store` (the error carries its id).
        MissingDictionaryError: The frame's dictionary is not among `dictionaries`.
    """
    registry = _registry(dictionaries)
    limit = _DEFAULT_CONFIG.max_output_bytes if max_output_bytes is None else max_output_bytes
    return _engine.decode(
        frame,
        store=store,
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
    """Stateful codec: an RSU store for cross-message dedup plus trained dictionaries.

    Thread-safe when its store is (both provided stores are).

    Args:
        store: Shared RSU store; default a new `MemoryRSUStore`.
        dictionaries: Dictionary registry; default an empty in-memory one.
        config: Codec configuration; default `SigmaConfig()`.
        count_tokens: Token counter for reports (e.g. the LLM's tokenizer); reports carry no token
            counts without it.

    Example:
        >>> codec = SigmaCodec()
        >>> first = codec.compress(b"system prompt ... " * 100)
        >>> codec.decompress(first.frame) == b"system prompt ... " * 100
        True
    """

    def __init__(
        self,
        *,
        store: RSUStore | None = None,
        dictionaries: DictionaryRegistry | None = None,
        config: SigmaConfig | None = None,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        self.store: RSUStore = store if store is not None else MemoryRSUStore()
        self.dictionaries = dictionaries if dictionaries is not None else DictionaryRegistry()
        self.config = config or _DEFAULT_CONFIG
        self.count_tokens = count_tokens
        self._lock = threading.Lock()
        self._streams: OrderedDict[Hashable, tuple[bytes, ...]] = OrderedDict()

    def compress(
        self,
        data: bytes,
        *,
        dedup: bool = True,
        level: int | None = None,
        stream: Hashable = None,
    ) -> CompressionResult:
        """Compress one message, referencing RSUs the store already holds.

        The frame holds one reference on each RSU it points to until `release` is called with it.

        Args:
            data: The message bytes.
            dedup: Use and feed the RSU store; False makes a self-contained frame.
            level: zstd level; default from the config.
            stream: Names the conversation the message belongs to (e.g. a session id). The RSUs
                the previous message of the same stream added are offered to zstd as context,
                which catches content that changed chunk boundaries (a history that grew by a
                turn). Messages of unrelated conversations should use different streams.

        Returns:
            The frame and its `CompressionReport`.

        Raises:
            RSUStoreError: The store is closed or broken.
        """
        with self._lock:
            context = self._streams.get(stream, ())
        result, fresh = _engine.encode(
            data,
            config=self.config,
            store=self.store if dedup else None,
            dictionary=self.dictionaries.active,
            level=level,
            count_tokens=self.count_tokens,
            context_ids=context,
        )
        if dedup and fresh:
            with self._lock:
                self._streams[stream] = fresh[-self.config.context_rsus :] if self.config.context_rsus else ()
                self._streams.move_to_end(stream)
                while len(self._streams) > _MAX_STREAMS:
                    self._streams.popitem(last=False)
        return result

    def decompress(self, frame: bytes, *, max_output_bytes: int | None = None) -> bytes:
        """Decode a frame made by this codec (or any codec sharing its store and dictionaries).

        Raises:
            FrameError: Malformed frame (see `decompress`).
            OutputTooLargeError: More content than `max_output_bytes` (default from the config).
            MissingRSUError: A referenced RSU is not in the store.
            MissingDictionaryError: The frame's dictionary is not registered.
        """
        limit = self.config.max_output_bytes if max_output_bytes is None else max_output_bytes
        return _engine.decode(
            frame, store=self.store, dictionaries=self.dictionaries.get, max_output_bytes=limit
        )

    def release(self, frame: bytes) -> None:
        """Drop the references a frame holds, once the frame is deleted; then GC may free its RSUs.

        Raises:
            FrameError: Malformed frame.
            MissingRSUError: A referenced RSU is already gone.
            RSUStoreError: The frame was already released (a count would go below zero).
        """
        info = inspect_frame(frame)
        if info.rsu_ids:
            self.store.release(info.rsu_ids)

    def train_dictionary(self, samples: Sequence[bytes], *, activate: bool = True) -> Dictionary | None:
        """Train a dictionary on sample messages, register it and (by default) use it for new frames.

        Args:
            samples: Typical messages.
            activate: Make it the active dictionary.

        Returns:
            The dictionary, or None when there were too few samples (`dictionary_min_samples`); the
            codec then keeps compressing without one.
        """
        dictionary = train_dictionary(
            samples,
            size_bytes=self.config.dictionary_size_bytes,
            min_samples=self.config.dictionary_min_samples,
            level=self.config.small_input_level,
        )
        if dictionary is not None:
            self.dictionaries.add(dictionary, activate=activate)
        return dictionary

    def pin(self, data: bytes) -> tuple[bytes, ...]:
        """Store `data` as RSUs and pin them, e.g. a system prompt every session starts with.

        Pinned RSUs survive garbage collection, so frames can always reference them.

        Returns:
            The ids of the pinned RSUs (16 bytes each), in order.
        """
        view = memoryview(bytes(data))
        chunks = [bytes(view[o : o + n]) for o, n in chunk_spans(view, self.config)]
        items = [(rsu_id(c), c) for c in chunks if len(c) >= _engine.MIN_REF_BYTES]
        self.store.put_many(items)
        for cid, _ in items:
            self.store.pin(cid)
        return tuple(cid for cid, _ in items)

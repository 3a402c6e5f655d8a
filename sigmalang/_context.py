"""Encoder and decoder of store-backed, tenant-bound (version-2) frames.

Each message is compressed **whole**, by zstd, with a raw-content dictionary made of RSUs its tenant's
store already holds (the *context*), chosen in three ways:

1. the RSUs of the previous message of the same stream, in order (a conversation re-sends its system
   prompt, tool schemas, documents and history: nearly all of the next turn is in the previous one;
   zstd finds the moved and grown parts too, patch-from style);
2. the RSUs of this message that the tenant already holds (content-defined chunks with the same id:
   a system prompt or tool schema another session of the tenant sent);
3. RSUs sharing an *anchor* with this message's new chunks: a sentence or line of at least
   `ANCHOR_MIN_BYTES` bytes seen in an earlier message of the tenant (a document retrieved again in
   another session, even when its chunk boundaries differ).

The context is capped at `SigmaConfig.context_max_bytes` (the stream's previous message is kept
first). With an active trained dictionary, the context is appended to its content, so its entropy
tables and boilerplate apply too (or, without a context, the trained dictionary alone). The generic
dictionary, and a trained one, lend only their header and entropy tables (frame flag TABLES,
`sigmalang._dict_header`) unless the message brings enough new bytes for their content to pay
(`SigmaConfig.generic_content_min_new_bytes`, `trained_content_min_new_bytes`). The payload is
stored raw when zstd does not make it smaller. The frame names its context by
sequence-number runs (a few bytes), so it decodes on its own given the tenant's store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sigmalang import _varint, _zstd
from sigmalang.chunking import chunk_spans, rsu_id
from sigmalang.config import SigmaConfig
from sigmalang.dictionary import Dictionary
from sigmalang.errors import CorruptFrameError, MissingDictionaryError, MissingRSUError, OutputTooLargeError
from sigmalang.frame import F_RAW, F_TABLES, TAG_BYTES, encode_store_frame, inspect_frame
from sigmalang.report import CompressionReport, CompressionResult
from sigmalang.store import RSUStore

ANCHOR_MIN_BYTES = 32
"""Shortest sentence or line used as an anchor, bytes."""
_SENTENCE_ENDS = (b"\\n", b". ", b"! ", b"? ", b"; ", b": ")  # each becomes a newline, then split
ATTRIBUTION_LEVEL = 1
"""zstd level at which a frame with a context or a dictionary measures its new bytes compressed alone,
for the report's `entropy_saved`: a cheaper estimate than the frame's own level (which saves a few
percent more; that difference is counted with the context, `dedup_saved`, or the dictionary,
`dictionary_saved`). Measuring at the frame's level cost 10% of compression time."""
_MAX_ANCHORS = 1 << 18  # per tenant; the oldest half is forgotten beyond this


def anchors(chunk: bytes | memoryview) -> list[int]:
    r"""Hashes of the sentences and lines of at least `ANCHOR_MIN_BYTES` bytes in `chunk`.

    Lines end at a newline or at an escaped one (``\\n`` inside a JSON string); sentences at
    ``.``, ``!``, ``?``, ``;`` or ``:`` followed by a space. The hashes are Python's `hash` of the
    bytes (SipHash, keyed per process): the index lives in one process's memory only.
    """
    text = bytes(chunk)
    for end in _SENTENCE_ENDS:  # a few C-speed passes: twice as fast as a regular expression
        text = text.replace(end, b"\n")
    return [hash(piece) for piece in text.split(b"\n") if len(piece) >= ANCHOR_MIN_BYTES]


class AnchorIndex:
    """Anchor hash → the sequence number of the latest RSU holding it, for one tenant (in memory).

    A hint only: a lost or stale entry makes a frame larger, never wrong (the frame names its context).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seqs: dict[int, int] = {}  # insertion order = recency (an entry re-seen moves last)

    def add(self, seq: int, hashes: list[int]) -> None:
        """Remember the anchors (`anchors`) of a newly stored RSU."""
        with self._lock:
            seqs = self._seqs
            for anchor in hashes:
                seqs.pop(anchor, None)
                seqs[anchor] = seq
            if len(seqs) > _MAX_ANCHORS:
                self._seqs = dict(list(seqs.items())[len(seqs) // 2 :])

    def lookup(self, hashes: list[int]) -> dict[int, int]:
        """RSUs holding these anchors (`anchors`): sequence number → anchors shared."""
        hits: dict[int, int] = {}
        with self._lock:
            get = self._seqs.get
            for anchor in hashes:
                seq = get(anchor)
                if seq is not None:
                    hits[seq] = hits.get(seq, 0) + 1
        return hits


def _context(
    *,
    store: RSUStore,
    tenant: str,
    candidates: Sequence[int],
    cap: int,
) -> tuple[list[int], bytes]:
    """Acquire the held `candidates` (earliest first dropped beyond `cap` bytes) and fetch them."""
    order = list(dict.fromkeys(candidates))
    held = store.acquire(tenant, order)
    order = [s for s in order if s in held]
    try:
        contents = store.get_many(tenant, order)
    except MissingRSUError:  # evicted between acquire and read by another writer: go without
        store.release(tenant, held)
        return [], b""
    total = sum(map(len, contents))
    drop = 0
    while total > cap and drop < len(order):
        total -= len(contents[drop])
        drop += 1
    if drop:
        store.release(tenant, order[:drop])
    return order[drop:], b"".join(contents[drop:])


def encode(
    data: bytes,
    *,
    tenant: str,
    key: bytes,
    store: RSUStore,
    index: AnchorIndex,
    previous: Sequence[int],
    config: SigmaConfig,
    dictionary: Dictionary | None,
    level: int | None,
    count_tokens: Callable[[str], int] | None,
    generic: bool = False,
) -> tuple[CompressionResult, tuple[int, ...]]:
    """Compress one message of `tenant` into a version-2 frame (see the module docstring).

    The frame holds one reference on each context RSU until `SigmaCodec.release` is called with it.

    Args:
        data: The message.
        tenant: Its tenant.
        key: The tenant's MAC key (`sigmalang.frame.tenant_key`).
        store: The RSU store.
        index: The tenant's anchor index.
        previous: Sequence numbers of the previous message of the stream, in order (or empty).
        config: Codec configuration.
        dictionary: Trained dictionary to try, or None.
        level: zstd level, or None for the config's choice.
        count_tokens: Token counter for the report, or None.
        generic: `dictionary` is the generic one (`sigmalang.generic`), not one trained on the traffic.

    Returns:
        The result and the sequence numbers of this message's RSUs, in order (the next message's
        `previous`).
    """
    data = bytes(data)
    n = len(data)
    explicit_level = level is not None
    if level is None:
        level = config.small_input_level if n < config.small_input_bytes else config.level
    view = memoryview(data)
    spans = chunk_spans(view, config) if n >= config.rsu_min_input_bytes else []
    chunks = [view[o : o + ln] for o, ln in spans]
    with store.transaction():  # one commit for storing the chunks and acquiring the context
        put = store.put_many(tenant, [(rsu_id(c), c) for c in chunks]) if chunks else []
        own = [seq for seq, _ in put]
        new = [(seq, c) for (seq, fresh), c in zip(put, chunks, strict=True) if fresh]
        known = [seq for seq, fresh in put if not fresh]
        literal_n = sum(len(c) for _, c in new) if chunks else n
        prev_set = set(previous)
        hits: dict[int, int] = {}
        new_anchors = [anchors(c) for _, c in new]
        for hashes in new_anchors:
            for seq, count in index.lookup(hashes).items():
                hits[seq] = hits.get(seq, 0) + count
        own_new = {seq for seq, _ in new}
        extra = sorted({s for s in [*known, *hits] if s not in prev_set and s not in own_new})
        context, ctx = _context(
            store=store, tenant=tenant, candidates=[*extra, *previous], cap=config.context_max_bytes
        )
    trained = dictionary.data if dictionary is not None and n else None
    # With a context, a dictionary lends only its entropy tables unless the message brings many new
    # bytes: hashing its 32 KiB of content for every message cost a third of the compression time,
    # and the content pays only on new text (the context covers the rest). A dictionary trained on
    # the traffic (its boilerplate) pays from fewer new bytes than the generic one, and is always
    # used whole on small messages (it often halves them).
    content_from = config.generic_content_min_new_bytes if generic else config.trained_content_min_new_bytes
    tables = (
        bool(context)
        and trained is not None
        and literal_n < content_from
        and (generic or n >= config.small_input_bytes)
    )
    zdict = _zstd.context_dict(ctx, trained, tables=tables) if context else None
    if zdict is None and context:
        store.release(tenant, context)
        context = []
        tables = False
    if context and not explicit_level and n >= config.small_input_bytes:
        level = config.context_level
    used_dict = dictionary.dict_id if dictionary is not None and trained is not None else None
    if zdict is not None:
        payload = _zstd.compress_checked(data, level, zdict)
    elif dictionary is not None and trained is not None:  # no context: the dictionary alone
        zd = _zstd.trained_dict(dictionary.data, dictionary.dict_id)
        payload = _zstd.compress(data, level, zd, dictionary.dict_id)
    else:
        payload = _zstd.compress(data, level, None, None)
    plain = payload if used_dict is None and not context else None  # the message compressed alone
    raw = len(payload) >= n
    if raw:
        payload, used_dict, tables = data, None, False
        if context:
            store.release(tenant, context)
            context = []
    frame = encode_store_frame(
        key=key,
        content_size=n,
        payload=payload,
        raw=raw,
        dict_id=used_dict,
        context=tuple(context),
        tables=tables,
    )
    for (seq, _), hashes in zip(new, new_anchors, strict=True):
        index.add(seq, hashes)

    # Attribution without compressing the message twice: only the new bytes are compressed alone, at
    # zstd's fastest standard level when the frame used a context or dictionary (an estimate, see
    # `ATTRIBUTION_LEVEL`); a frame with neither is its own measure.
    literal = b"".join(c for _, c in new) if chunks else data
    if plain is not None and len(literal) == n:
        alone = min(len(plain), n)
    else:
        alone_level = ATTRIBUTION_LEVEL if context or used_dict is not None else level
        alone = min(len(_zstd.compress(literal, alone_level, None, None)), len(literal)) if literal else 0
    runs_start = _runs_start(n, used_dict)
    framing = runs_start + TAG_BYTES
    entropy = len(literal) - alone
    dictionary_saved = alone - len(payload) if used_dict is not None and not context else 0
    # (with a context, the trained dictionary's share is counted in dedup_saved: measuring it apart
    # would mean compressing the message twice)
    dedup = n - len(frame) - entropy - dictionary_saved + framing
    tokens_in = tokens_out = None
    if count_tokens is not None:
        tokens_in = count_tokens(data.decode("utf-8", errors="replace"))
        tokens_out = (count_tokens(literal.decode("utf-8", errors="replace")) if literal else 0) + len(
            context
        )
    report = CompressionReport(
        bytes_in=n,
        bytes_out=len(frame),
        referenced_bytes=n - literal_n,
        literal_bytes=literal_n,
        glyphs=len(context),
        new_rsus=len(new),
        dedup_saved=dedup,
        dictionary_saved=dictionary_saved,
        entropy_saved=entropy,
        framing=framing,
        dict_id=used_dict,
        level=level,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
    )
    return CompressionResult(frame=frame, report=report), tuple(own)


def _runs_start(content_size: int, dict_id: int | None) -> int:
    """Offset where a version-2 frame's context runs start: after magic, version, flags, size, dict id."""
    out = bytearray()
    _varint.encode(content_size, out)
    return 4 + len(out) + (4 if dict_id is not None else 0)


def decode(
    frame: bytes | memoryview,
    *,
    tenant: str,
    key: bytes,
    store: RSUStore,
    dictionaries: Callable[[int], Dictionary] | None,
    max_output_bytes: int,
) -> bytes:
    """Decode a version-2 frame of `tenant` to the exact bytes that were compressed.

    Raises:
        FrameAuthenticationError: The MAC fails under `key` (altered, or another tenant's frame).
        FrameError: The frame is otherwise malformed, or its payload does not decode to its checksum.
        OutputTooLargeError: It declares more than `max_output_bytes`.
        MissingRSUError: A context RSU is no longer in the tenant's store (evicted or collected).
        MissingDictionaryError: Its dictionary is not available.
    """
    info = inspect_frame(frame, key=key)
    if info.version != 2:
        raise CorruptFrameError("not a store-backed (version 2) frame")
    if info.content_size > max_output_bytes:
        raise OutputTooLargeError(info.content_size, max_output_bytes)
    view = memoryview(frame)
    payload = bytes(view[info.payload_offset : info.payload_offset + info.payload_size])
    if info.flags & F_RAW:
        return payload
    trained: bytes | None = None
    tables = bool(info.flags & F_TABLES)
    if info.dict_id is not None:
        if dictionaries is None:
            raise MissingDictionaryError(info.dict_id)
        dictionary = dictionaries(info.dict_id)
        if not info.context:
            zdict = _zstd.trained_dict(dictionary.data, dictionary.dict_id)
            return _zstd.decompress(payload, info.content_size, zdict, dictionary.dict_id)
        trained = dictionary.data
    if info.context:
        ctx = b"".join(store.get_many(tenant, info.context))
        ctx_dict = _zstd.context_dict(ctx, trained, tables=tables)
        return _zstd.decompress(payload, info.content_size, ctx_dict, None)
    return _zstd.decompress(payload, info.content_size, None, None)

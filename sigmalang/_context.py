"""Encoder of store-backed, tenant-bound frames (version 3) and decoder of versions 2 and 3.

Each message is compressed by zstd with a raw-content dictionary made of RSUs its tenant's store
already holds (the *context*), chosen in three ways:

1. the previous message of the same stream, the frame's **base** (a conversation re-sends its system
   prompt, tool schemas, documents and history: nearly all of the next turn is in the previous one).
   The frame names it by its manifest RSU (`sigmalang._base`) and copies the longest prefix and
   suffix the message shares with it; zstd codes only the middle, with the base as dictionary, so
   it finds the moved and grown parts there, patch-from style;
2. the RSUs of this message that the tenant already holds (content-defined chunks with the same id:
   a system prompt or tool schema another session of the tenant sent);
3. RSUs sharing an *anchor* with this message's new chunks: a sentence or line of at least
   `ANCHOR_MIN_BYTES` bytes seen in an earlier message of the tenant (a document retrieved again in
   another session, even when its chunk boundaries differ);
4. if enabled (`SigmaConfig.word_context_per_new_chunk`, off by default), the RSUs sharing most
   *words* (identifiers, long words: `sigmalang._anchors.words`) with this message's new chunks:
   new code and text repeat few whole lines of what the tenant sent before but many of its words,
   where zstd finds short matches.

The base's leading chunks that open the message too are reused, not cut, hashed or stored again
(`sigmalang._base.shared_chunks`). The context is capped at `SigmaConfig.context_max_bytes`. With
an active trained dictionary, the context is appended to its content, so its entropy tables and
boilerplate apply too (or, without a context, the trained dictionary alone). The generic
dictionary, and a trained one, lend only their header and entropy tables (frame flag TABLES,
`sigmalang._dict_header`) unless the message brings enough new bytes for their content to pay
(`SigmaConfig.generic_content_min_new_bytes`, `trained_content_min_new_bytes`). The payload is
stored raw when zstd does not make it smaller. The frame names its other context RSUs by
sequence-number runs (a few bytes), so it decodes on its own given the tenant's store.

On sessions of 60-80 turns (`benchmarks/sigmalang.py --seed 31 --tenants 2 --sessions-per-tenant 2
--turns 60 80`) naming the base by its manifest and coding only the middle took ΣLANG (generic
dictionary) from 283× to 412× (0.86 → 1.25 of whole-session zstd-19), 102 to 132 MB/s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sigmalang import _base, _libzstd, _varint, _zstd, _zstd_block
from sigmalang._anchors import AnchorIndex, anchors, words_of
from sigmalang._frame_header import MAGIC, FrameInfo
from sigmalang._frame_v2 import V2
from sigmalang._frame_v3 import V3, V3Header, content_hash, parse_v3
from sigmalang.chunking import chunk_views, rsu_id, rsu_ids
from sigmalang.config import SigmaConfig
from sigmalang.dictionary import Dictionary
from sigmalang.errors import CorruptFrameError, MissingDictionaryError, MissingRSUError, OutputTooLargeError
from sigmalang.frame import (
    F_BARE,
    F_GENERIC,
    F_RAW,
    F_TABLES,
    STORE_VERSIONS,
    TRAILER_BYTES,
    encode_frame_v3,
    inspect_frame,
)
from sigmalang.report import ATTRIBUTION_LEVEL, AttributionBasis, CompressionReport, CompressionResult
from sigmalang.store import RSUStore

_WORD_CONTEXT_MAX_RSUS = 16
"""Most RSUs a frame's context adds for the words they share (`SigmaConfig.word_context_per_new_chunk`)."""


def _acquire(
    *,
    store: RSUStore,
    tenant: str,
    extra: Sequence[int],
    base: int | None,
    previous: Sequence[int],
    cap: int,
    have: dict[int, bytes],
) -> tuple[list[int], dict[int, bytes], bool]:
    """Acquire the held context candidates and fetch their content (not the manifest's, nor `have`'s).

    The earliest candidates are dropped beyond `cap` bytes. The base is used only when its manifest and
    every RSU of `previous` are held and kept.

    Returns:
        The acquired sequence numbers (deduplicated, in order: `extra`, the manifest, `previous`), their
        contents by sequence number (all but the manifest's), and whether the base is used.
    """
    order = list(dict.fromkeys([*extra, *([base] if base is not None else []), *previous]))
    held = store.acquire(tenant, order)
    if len(held) < len(order):
        order = [s for s in order if s in held]
    wanted = [s for s in order if s not in have and s != base]
    try:
        contents = dict(zip(wanted, store.get_many(tenant, wanted), strict=True))
    except MissingRSUError:  # evicted between acquire and read by another writer: go without
        store.release(tenant, order)
        return [], {}, False
    if have:
        contents.update((s, have[s]) for s in order if s in have)
    total = sum(map(len, contents.values()))
    drop = 0
    while total > cap and drop < len(order):
        total -= len(contents.get(order[drop], b""))
        drop += 1
    if drop:
        store.release(tenant, order[:drop])
        order = order[drop:]
    kept: frozenset[int] = frozenset(order) if drop else held  # (`held`: `order`'s set unless some dropped)
    use_base = base is not None and base in kept and kept.issuperset(previous)
    if base is not None and base in kept and not use_base:
        store.release(tenant, [base])
        order.remove(base)
    return order, contents, use_base


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
    previous_record: _base.Previous | None = None,
) -> tuple[CompressionResult, _base.Previous]:
    """Compress one message of `tenant` into a version-3 frame (see the module docstring).

    The frame holds one reference on each context RSU (and on its base's manifest) until
    `SigmaCodec.release` is called with it.

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
        previous_record: What the stream remembers of the previous message (its chunks are read early
            only if `data` starts with its first one), or None.

    Returns:
        The result, and this message's RSUs in order and first bytes (the next message's base).
    """
    data = bytes(data)
    n = len(data)
    explicit_level = level is not None
    if level is None:
        level = config.small_input_level if n < config.small_input_bytes else config.level
    view = memoryview(data)
    chunked = n >= config.rsu_min_input_bytes
    with store.transaction():  # one commit for storing the chunks and acquiring the context
        # The base's chunks, read first: those the message opens with are its own (`shared_chunks`)
        early = previous and chunked and previous_record is not None and previous_record.opens(data)
        have = _base.read_chunks(store, tenant, previous) if early else {}
        base_parts = [have[s] for s in previous] if have else []
        reused, cut = _base.shared_chunks(data, base_parts, avg_bytes=config.chunk_avg_bytes)
        chunks = chunk_views(view[cut:], config) if chunked else []
        items: list[tuple[bytes, bytes | memoryview]] = list(zip(rsu_ids(chunks), chunks, strict=True))
        base: int | None = None
        if previous:  # the previous message's manifest, stored with this message's chunks (one call)
            listed = _base.manifest(previous)
            items.insert(0, (rsu_id(listed), listed))
        put = store.put_many(tenant, items) if items else []
        if previous:
            base = put.pop(0)[0]
        own = [*previous[:reused], *(seq for seq, _ in put)]
        new = [(seq, c) for (seq, fresh), c in zip(put, chunks, strict=True) if fresh]
        known = [seq for seq, fresh in put if not fresh]
        literal_n = sum(len(c) for _, c in new) if chunks else n
        prev_set = set(previous)
        new_anchors = [anchors(c) for _, c in new]
        hits = index.lookup([h for hashes in new_anchors for h in hashes])  # one call, one lock
        limit = min(_WORD_CONTEXT_MAX_RSUS, config.word_context_per_new_chunk * len(new))
        new_words = words_of([c for _, c in new]) if limit else None
        related = index.related(new_words, limit) if new_words else []
        own_new = {seq for seq, _ in new}
        skip = prev_set | own_new | {base}
        extra = sorted({s for s in [*known, *hits, *related] if s not in skip})
        acquired, contents, use_base = _acquire(
            store=store,
            tenant=tenant,
            extra=extra,
            base=base if previous else None,
            previous=previous,
            cap=config.context_max_bytes,
            have=have,
        )
    runs = [s for s in acquired if s not in prev_set and s != base] if use_base else list(acquired)
    run_parts = [contents[s] for s in runs]
    parts = run_parts + [contents[s] for s in previous] if use_base else run_parts
    trained = dictionary.data if dictionary is not None and n else None
    # With a context, a dictionary lends only its entropy tables unless the message brings many new
    # bytes: hashing its 32 KiB of content for every message cost a third of the compression time,
    # and the content pays only on new text (the context covers the rest). A dictionary trained on
    # the traffic (its boilerplate) pays from fewer new bytes than the generic one, and is always
    # used whole on small messages (it often halves them).
    content_from = config.generic_content_min_new_bytes if generic else config.trained_content_min_new_bytes
    tables = (
        bool(acquired)
        and trained is not None
        and literal_n < content_from
        and (generic or n >= config.small_input_bytes)
    )
    # The context joined once, after the dictionary's content or header (the frame's zstd dictionary)
    zdict, ctx = _zstd.context_dict(parts, trained, tables=tables) if acquired else (None, memoryview(b""))
    base_content = ctx[sum(map(len, run_parts)) :]
    if zdict is None and acquired:
        store.release(tenant, acquired)
        acquired, runs, use_base, tables = [], [], False, False
    prefix = suffix = 0
    if use_base:
        prefix = _base.common_prefix(data, base_content)
        suffix = _base.common_suffix(data, base_content, min(n, len(base_content)) - prefix)
    middle = data[prefix : n - suffix] if prefix or suffix else data
    search = _libzstd.LEVEL_SEARCH
    if acquired and not explicit_level and n >= config.small_input_bytes:
        level = config.context_level
        search = _search(config, mostly_new=literal_n >= config.mostly_new_min_share * n)
    used_dict = dictionary.dict_id if dictionary is not None and trained is not None else None
    if zdict is not None:
        payload = _zstd.compress(middle, level, zdict, None, search)
    elif dictionary is not None and trained is not None:  # no context: the dictionary alone
        zd = _zstd.trained_dict(dictionary.data, dictionary.dict_id)
        payload = _zstd.compress(middle, level, zd, dictionary.dict_id)
    else:
        payload = _zstd.compress(middle, level, None, None)
    bare = _zstd_block.bare_block(payload)  # its frame and block headers are implied (flag BARE)
    payload = bare if bare is not None else payload
    plain = payload if used_dict is None and not acquired else None  # the message compressed alone
    raw = len(payload) >= len(middle)
    if raw:
        payload, used_dict, tables, bare = middle, None, False, None
        unneeded = runs if use_base and (prefix or suffix) else acquired
        if unneeded:
            store.release(tenant, unneeded)
            acquired = [s for s in acquired if s not in set(unneeded)]
            runs = []
            use_base = bool(acquired)
    frame = encode_frame_v3(
        key=key,
        content_size=n,
        content_hash=content_hash(data),
        payload=payload,
        raw=raw,
        dict_id=used_dict if not generic else None,
        generic=generic and used_dict is not None,
        tables=tables,
        context=runs,
        base=base if use_base else None,
        base_prefix=prefix if use_base else 0,
        base_suffix=suffix if use_base else 0,
        bare=bare is not None,
    )
    index.add_many([seq for seq, _ in new], new_anchors, new_words)

    # Attribution without compressing the message twice: only the new bytes are compressed alone, at
    # zstd's fastest standard level when the frame used a context or dictionary (an estimate, see
    # `ATTRIBUTION_LEVEL`), and only when the report's savings are first read (`CompressionReport`);
    # a frame with neither is its own measure.
    literal_parts = [c for _, c in new] if chunks else [data]
    measured = sum(map(len, literal_parts))
    alone_size: int | None = None
    if plain is not None and measured == n:
        alone_size = min(len(plain), n)
    elif not measured:
        alone_size = 0
    alone = AttributionBasis(
        measured_bytes=measured,
        payload_bytes=len(payload),
        dictionary_only=used_dict is not None and not acquired,
        known=alone_size,
        parts=literal_parts if alone_size is None else None,
        level=ATTRIBUTION_LEVEL if acquired or used_dict is not None else level,
    )
    framing = _fixed_bytes(n, used_dict if not generic else None) + TRAILER_BYTES
    tokens_in = tokens_out = None
    if count_tokens is not None:
        tokens_in = count_tokens(data.decode("utf-8", errors="replace"))
        literal = b"".join(literal_parts)
        tokens_out = (count_tokens(literal.decode("utf-8", errors="replace")) if literal else 0) + len(
            acquired
        )
    report = CompressionReport(
        bytes_in=n,
        bytes_out=len(frame),
        referenced_bytes=n - literal_n,
        literal_bytes=literal_n,
        glyphs=len(acquired),
        new_rsus=len(new),
        framing=framing,
        dict_id=used_dict,
        level=level,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        alone=alone,
    )
    first = len(base_parts[0]) if reused else (len(chunks[0]) if chunks else n)
    return CompressionResult(frame=frame, report=report), _base.Previous.of(data, own, first)


def _search(config: SigmaConfig, *, mostly_new: bool) -> _libzstd.Search:
    """How hard zstd searches a frame's context at `context_level` (`SigmaConfig.context_search_log`)."""
    if mostly_new:
        return _libzstd.Search(config.mostly_new_search_log, config.mostly_new_min_match)
    return _libzstd.Search(config.context_search_log, config.context_min_match)


def _fixed_bytes(content_size: int, dict_id: int | None) -> int:
    """Bytes of a frame's fixed header: magic, version, flags, size, dictionary id (if written)."""
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
    generic: Callable[[], Dictionary],
    max_output_bytes: int,
) -> bytes:
    """Decode a version-2 or -3 frame of `tenant` to the exact bytes that were compressed.

    Args:
        frame: The frame.
        tenant: Whose frame it must be (its key, its store).
        key: The tenant's MAC key.
        store: The RSU store.
        dictionaries: Finds a trained dictionary by id, or None.
        generic: Returns the generic dictionary (frames with flag GENERIC).
        max_output_bytes: Refuse frames declaring more content, bytes.

    Raises:
        FrameAuthenticationError: The MAC fails under `key` (altered, or another tenant's frame).
        FrameError: The frame is otherwise malformed, or its payload does not decode to its checksum.
        OutputTooLargeError: It declares more than `max_output_bytes`.
        MissingRSUError: A context RSU is no longer in the tenant's store (evicted or collected).
        MissingDictionaryError: Its dictionary is not available.
    """
    view = memoryview(frame)
    info: V3Header | FrameInfo
    if len(view) > len(MAGIC) and view[len(MAGIC)] == V3 and view[: len(MAGIC)] == MAGIC:
        info = parse_v3(view, key)  # the per-frame path: no `FrameInfo` (what `inspect_frame` does)
    else:
        info = inspect_frame(frame, key=key)
        if info.version not in STORE_VERSIONS:
            raise CorruptFrameError("not a store-backed (version 2 or 3) frame")
    if info.content_size > max_output_bytes:
        raise OutputTooLargeError(info.content_size, max_output_bytes)
    flags = int(info.flags)  # (IntFlag arithmetic is slow on this path)
    coded = view[info.payload_offset : info.payload_offset + info.payload_size]
    runs = list(info.context[:-1] if info.base is not None else info.context)
    found_dict: Dictionary | None = None
    if not flags & F_RAW:
        if flags & F_GENERIC:
            found_dict = generic()
        elif info.dict_id is not None:
            if dictionaries is None:
                raise MissingDictionaryError(info.dict_id)
            found_dict = dictionaries(info.dict_id)
    # The context: the runs' RSUs, then the base message (the decoded middle goes between the base's
    # prefix and suffix, read through a view of it), joined once, inside the zstd dictionary when the
    # payload is compressed with one.
    parts: list[bytes] = []
    base_at = 0
    if info.base is not None:
        listed = _base.parse_manifest(store.get_many(tenant, [info.base])[0])
        unique = list(dict.fromkeys(listed))
        found = store.get_many(tenant, [*runs, *unique])  # one call: a store call has a fixed cost
        parts = found
        if len(unique) < len(listed):  # the base repeats an RSU
            by_seq = dict(zip(unique, found[len(runs) :], strict=True))
            parts = found[: len(runs)] + [by_seq[s] for s in listed]
        base_at = sum(map(len, found[: len(runs)]))
    elif runs and not flags & F_RAW:
        parts = store.get_many(tenant, runs)
    middle_size = info.content_size - info.base_prefix - info.base_suffix
    trained = found_dict.data if found_dict is not None else None
    tables = bool(flags & F_TABLES)
    # One compressed block (BARE, nearly every frame with a context) is decoded right after the context
    # in one buffer, the dictionary's entropy tables made once (`_zstd_block.decompress_after`); other
    # frames through the dictionary built for the frame.
    after = (
        _zstd_block.BLOCK_API
        and bool(flags & F_BARE)
        and middle_size > 0
        and bool(runs or info.base is not None)
    )
    zdict: _zstd.ContextDict | None = None
    ctx = memoryview(b"")
    if after:  # the context is joined into the block's output buffer
        held = sum(map(len, parts))
        if held < _zstd.context_floor(trained, tables=tables):
            raise CorruptFrameError("context too short for a zstd dictionary")
    elif flags & F_RAW or not (runs or info.base is not None):
        ctx = memoryview(b"".join(parts))
        held = len(ctx)
    else:
        zdict, ctx = _zstd.context_dict(parts, trained, tables=tables)
        if zdict is None:
            raise CorruptFrameError("context too short for a zstd dictionary")
        held = len(ctx)
    if info.base is not None and info.base_prefix + info.base_suffix > held - base_at:
        raise CorruptFrameError("base prefix and suffix longer than the base message")
    middle: bytes | memoryview
    if after:
        whole = _zstd_block.decompress_after(coded, middle_size, parts, trained)
        ctx, middle = whole[:held], whole[held:]
    else:
        payload = _zstd_block.dress_block(coded) if flags & F_BARE else bytes(coded)
        if flags & F_RAW:
            middle = payload
        elif zdict is not None:
            middle = _zstd.decompress(payload, middle_size, zdict, None)
        elif found_dict is not None:
            zd = _zstd.trained_dict(found_dict.data, found_dict.dict_id)
            middle = _zstd.decompress(payload, middle_size, zd, found_dict.dict_id)
        else:
            middle = _zstd.decompress(payload, middle_size, None, None)
    base = ctx[base_at:]
    if info.version == V2:
        return bytes(middle)  # zstd checked its content checksum (frames with a context)
    if info.base_prefix or info.base_suffix:
        out = b"".join((base[: info.base_prefix], middle, base[len(base) - info.base_suffix :]))
    else:
        out = middle if isinstance(middle, bytes) else middle.tobytes()
    if content_hash(out) != info.content_hash:
        raise CorruptFrameError(
            "decoded content fails its content hash: the context RSUs differ from those the frame was made "
            "with (a store reset or restored from elsewhere)"
        )
    return out

"""Encoder and decoder behind `sigmalang.codec`: RSU references + zstd, into and out of frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sigmalang import _varint, _zstd
from sigmalang.chunking import chunk_spans, rsu_id
from sigmalang.config import SigmaConfig
from sigmalang.dictionary import Dictionary
from sigmalang.errors import CorruptFrameError, MissingDictionaryError, MissingRSUError, OutputTooLargeError
from sigmalang.frame import F_RAW, F_REF_PREFIX, RSU_ID_BYTES, encode_frame, inspect_frame
from sigmalang.report import CompressionReport, CompressionResult
from sigmalang.store import RSUStore

MIN_REF_BYTES = 64
"""Chunks shorter than this are always carried literally (a glyph costs about 17 bytes)."""

DictLookup = Callable[[int], Dictionary]


def _varint_len(value: int) -> int:
    out = bytearray()
    _varint.encode(value, out)
    return len(out)


def encode(
    data: bytes,
    *,
    config: SigmaConfig,
    store: RSUStore | None,
    dictionary: Dictionary | None,
    level: int | None,
    count_tokens: Callable[[str], int] | None,
    context_ids: Sequence[bytes] = (),
) -> tuple[CompressionResult, tuple[bytes, ...]]:
    """Compress `data` into a frame; acquire references on the RSUs it points to (see `SigmaCodec`).

    Args:
        data: The message.
        config: Codec configuration.
        store: RSU store, or None for a self-contained frame.
        dictionary: Trained dictionary to try, or None.
        level: zstd level, or None for the config's choice.
        count_tokens: Token counter for the report, or None.
        context_ids: RSUs (e.g. the previous turn's new ones) offered as extra zstd context; they are
            put in the frame's RSU table only if the frame uses the RSU prefix and has glyphs.

    Returns:
        The result and the ids of the RSUs this input added to the store, in order.
    """
    data = bytes(data)
    n = len(data)
    if level is None:
        level = config.small_input_level if n < config.small_input_bytes else config.level
    view = memoryview(data)
    table: list[bytes] = []
    ops: list[int] = []
    literal_parts: list[memoryview] = []
    prefix_parts: list[bytes | memoryview] = []
    referenced = 0
    new_rsus = 0
    fresh: dict[bytes, bytes] = {}
    acquired: frozenset[bytes] = frozenset()
    n_context = 0
    if store is not None and n >= config.rsu_min_input_bytes:
        spans = chunk_spans(view, config)
        ids = [rsu_id(view[o : o + ln]) if ln >= MIN_REF_BYTES else None for o, ln in spans]
        acquired = store.acquire([i for i in ids if i is not None] + list(context_ids))
        try:
            index: dict[bytes, int] = {}
            pending = 0
            for (off, ln), cid in zip(spans, ids, strict=True):
                chunk = view[off : off + ln]
                if cid is not None and cid in acquired:
                    if pending:
                        ops.append(pending << 1)
                        pending = 0
                    slot = index.get(cid)
                    if slot is None:
                        slot = index[cid] = len(table)
                        table.append(cid)
                        prefix_parts.append(chunk)
                    ops.append(slot << 1 | 1)
                    referenced += ln
                else:
                    literal_parts.append(chunk)
                    pending += ln
                    if cid is not None:
                        fresh.setdefault(cid, bytes(chunk))
            if pending:
                ops.append(pending << 1)
            if table and pending + sum(op >> 1 for op in ops if not op & 1):
                extra = [i for i in dict.fromkeys(context_ids) if i in acquired and i not in index]
                if extra:
                    contents = store.get_many(extra)
                    table.extend(extra)
                    prefix_parts.extend(contents[i] for i in extra)
                    n_context = len(extra)
            new_rsus = store.put_many(fresh.items())
        except BaseException:
            if acquired:
                store.release(acquired)
            raise
    if not table:
        ops = []
        literal = data
    else:
        literal = b"".join(literal_parts)
    lit_n = len(literal)

    plain = _zstd.compress(literal, level, None, None) if lit_n else b""
    best, flags, used_dict, prefix_size = plain, 0, None, 0
    if table and lit_n and config.ref_prefix_max_bytes:
        prefix = b"".join(prefix_parts)[-config.ref_prefix_max_bytes :]
        zdict = _zstd.raw_dict(prefix)
        if zdict is not None:
            candidate = _zstd.compress(literal, level, zdict, None)
            if len(candidate) < len(best):
                best, flags, prefix_size = candidate, F_REF_PREFIX, len(prefix)
    if dictionary is not None and lit_n:
        zdict = _zstd.trained_dict(dictionary.data, dictionary.dict_id)
        candidate = _zstd.compress(literal, level, zdict, dictionary.dict_id)
        if len(candidate) < len(best):
            best, flags, used_dict, prefix_size = candidate, 0, dictionary.dict_id, 0
    if len(best) >= lit_n:
        best, flags, used_dict, prefix_size = literal, F_RAW, None, 0
    if n_context and not flags & F_REF_PREFIX:
        del table[-n_context:]  # context RSUs did not help: do not pay 16 bytes for each
    if acquired and store is not None:
        unused = acquired.difference(table)
        if unused:
            store.release(unused)
    frame = encode_frame(
        content_size=n,
        payload=best,
        flags=flags,
        dict_id=used_dict,
        rsu_ids=tuple(table),
        ops=tuple(ops),
        prefix_size=prefix_size,
    )

    plain_n = min(len(plain), lit_n)
    context_gain = plain_n - len(best)  # from the RSU prefix or from the trained dictionary
    refs_section = 0
    if ops:
        refs_section = _varint_len(len(table)) + RSU_ID_BYTES * len(table) + _varint_len(len(ops))
        refs_section += sum(_varint_len(op) for op in ops)
        if prefix_size:
            refs_section += _varint_len(prefix_size)
    dedup = referenced - refs_section + (context_gain if flags & F_REF_PREFIX else 0)
    glyphs = sum(op & 1 for op in ops)
    tokens_in = tokens_out = None
    if count_tokens is not None:
        tokens_in = count_tokens(data.decode("utf-8", errors="replace"))
        literal_tokens = count_tokens(literal.decode("utf-8", errors="replace")) if lit_n else 0
        tokens_out = literal_tokens + glyphs
    report = CompressionReport(
        bytes_in=n,
        bytes_out=len(frame),
        referenced_bytes=referenced,
        literal_bytes=lit_n,
        glyphs=glyphs,
        new_rsus=new_rsus,
        dedup_saved=dedup,
        dictionary_saved=context_gain if used_dict is not None else 0,
        entropy_saved=lit_n - plain_n,
        framing=len(frame) - len(best) - refs_section,
        dict_id=used_dict,
        level=level,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
    )
    return CompressionResult(frame=frame, report=report), tuple(fresh)


def decode(
    frame: bytes | memoryview,
    *,
    store: RSUStore | None,
    dictionaries: DictLookup | None,
    max_output_bytes: int,
) -> bytes:
    """Decode a frame to the exact bytes that were compressed.

    Raises:
        FrameError: The frame is malformed (see `inspect_frame`).
        OutputTooLargeError: It declares more than `max_output_bytes`.
        MissingRSUError: It references an RSU that `store` lacks (or no store was given).
        MissingDictionaryError: Its dictionary is not available.
    """
    info = inspect_frame(frame)
    if info.content_size > max_output_bytes:
        raise OutputTooLargeError(info.content_size, max_output_bytes)
    view = memoryview(frame)
    payload = bytes(view[info.payload_offset : info.payload_offset + info.payload_size])
    contents: dict[bytes, bytes] = {}
    if info.rsu_ids:
        if store is None:
            raise MissingRSUError(info.rsu_ids[0])
        contents = dict(store.get_many(info.rsu_ids))
    lit_n = info.literal_size
    glyph_bytes = sum(len(contents[info.rsu_ids[op >> 1]]) for op in info.ops if op & 1)
    if lit_n + glyph_bytes != info.content_size:
        raise CorruptFrameError(
            f"recipe yields {lit_n + glyph_bytes} bytes but the header declares {info.content_size}"
        )
    if info.flags & F_RAW:
        literal = payload
        if len(literal) != lit_n:
            raise CorruptFrameError(f"raw payload is {len(literal)} bytes, the recipe needs {lit_n}")
    elif info.flags & F_REF_PREFIX:
        prefix = b"".join(contents[i] for i in info.rsu_ids)
        if not _zstd.MIN_RAW_DICT <= info.prefix_size <= len(prefix):
            raise CorruptFrameError(f"prefix of {info.prefix_size} bytes out of range 8..{len(prefix)}")
        literal = _zstd.decompress(
            payload, lit_n, _zstd.raw_dict(prefix[len(prefix) - info.prefix_size :]), None
        )
    elif info.dict_id is not None:
        if dictionaries is None:
            raise MissingDictionaryError(info.dict_id)
        dictionary = dictionaries(info.dict_id)
        zdict = _zstd.trained_dict(dictionary.data, dictionary.dict_id)
        literal = _zstd.decompress(payload, lit_n, zdict, dictionary.dict_id)
    else:
        literal = _zstd.decompress(payload, lit_n, None, None)
    if not info.ops:
        return literal
    out = bytearray()
    pos = 0
    for op in info.ops:
        if op & 1:
            out += contents[info.rsu_ids[op >> 1]]
        else:
            out += literal[pos : pos + (op >> 1)]
            pos += op >> 1
    return bytes(out)

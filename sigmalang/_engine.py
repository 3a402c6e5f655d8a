"""Encoder and decoder of self-contained (version-1) frames: zstd alone or with a trained dictionary."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sigmalang import _zstd
from sigmalang.config import SigmaConfig
from sigmalang.dictionary import Dictionary
from sigmalang.errors import CorruptFrameError, MissingDictionaryError, MissingRSUError, OutputTooLargeError
from sigmalang.frame import F_RAW, encode_frame, inspect_frame
from sigmalang.report import AttributionBasis, CompressionReport, CompressionResult

MIN_REF_BYTES = 64
"""Chunks shorter than this are always carried literally (a glyph costs about 17 bytes)."""

DictLookup = Callable[[int], Dictionary]


def encode(
    data: bytes,
    *,
    config: SigmaConfig,
    dictionary: Dictionary | None,
    level: int | None,
    count_tokens: Callable[[str], int] | None,
) -> CompressionResult:
    """Compress `data` into a self-contained version-1 frame (no RSU store).

    Args:
        data: The message.
        config: Codec configuration.
        dictionary: Trained dictionary to try, or None.
        level: zstd level, or None for the config's choice.
        count_tokens: Token counter for the report, or None.

    Returns:
        The frame and its report.
    """
    data = bytes(data)
    n = len(data)
    if level is None:
        level = config.small_input_level if n < config.small_input_bytes else config.level
    plain = _zstd.compress(data, level, None, None) if n else b""
    best, flags, used_dict = plain, 0, None
    if dictionary is not None and n:
        zdict = _zstd.trained_dict(dictionary.data, dictionary.dict_id)
        candidate = _zstd.compress(data, level, zdict, dictionary.dict_id)
        if len(candidate) < len(best):
            best, used_dict = candidate, dictionary.dict_id
    if len(best) >= n:
        best, flags, used_dict = data, F_RAW, None
    frame = encode_frame(content_size=n, payload=best, flags=flags, dict_id=used_dict)
    plain_n = min(len(plain), n)
    report = CompressionReport(
        bytes_in=n,
        bytes_out=len(frame),
        referenced_bytes=0,
        literal_bytes=n,
        glyphs=0,
        new_rsus=0,
        framing=len(frame) - len(best),
        dict_id=used_dict,
        level=level,
        tokens_in=count_tokens(data.decode("utf-8", errors="replace")) if count_tokens else None,
        tokens_out=None,
        alone=AttributionBasis(
            measured_bytes=n, payload_bytes=len(best), dictionary_only=used_dict is not None, known=plain_n
        ),
    )
    if count_tokens is not None:
        report = dataclasses.replace(report, tokens_out=report.tokens_in)
    return CompressionResult(frame=frame, report=report)


def decode(
    frame: bytes | memoryview,
    *,
    dictionaries: DictLookup | None,
    max_output_bytes: int,
) -> bytes:
    """Decode a self-contained version-1 frame to the exact bytes that were compressed.

    Version-1 frames with RSU references (written by ΣLANG before stores became per tenant) cannot be
    decoded any more: their RSUs are not in any tenant's store (`MissingRSUError`).

    Raises:
        FrameError: The frame is malformed (see `inspect_frame`).
        OutputTooLargeError: It declares more than `max_output_bytes`.
        MissingRSUError: It references RSUs (an old store-backed version-1 frame).
        MissingDictionaryError: Its dictionary is not available.
    """
    info = inspect_frame(frame)
    if info.content_size > max_output_bytes:
        raise OutputTooLargeError(info.content_size, max_output_bytes)
    if info.version != 1:
        raise CorruptFrameError("a store-backed frame (version 2 or 3) is decoded by SigmaCodec")
    if info.rsu_ids:
        raise MissingRSUError(info.rsu_ids[0])
    view = memoryview(frame)
    payload = bytes(view[info.payload_offset : info.payload_offset + info.payload_size])
    n = info.content_size
    if info.flags & F_RAW:
        if len(payload) != n:
            raise CorruptFrameError(f"raw payload is {len(payload)} bytes, the header declares {n}")
        return payload
    if info.dict_id is not None:
        if dictionaries is None:
            raise MissingDictionaryError(info.dict_id)
        dictionary = dictionaries(info.dict_id)
        zdict = _zstd.trained_dict(dictionary.data, dictionary.dict_id)
        return _zstd.decompress(payload, n, zdict, dictionary.dict_id)
    return _zstd.decompress(payload, n, None, None)

"""The ΣLANG endpoints' HTTP requests and answers as the SDK sends and reads them, and its result types.

Part of `neurectomy.sdk._sigma` (``client.sigma``), shared by the sync and async resources there.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import TypeAdapter

from api.sigma.schemas import (
    MAX_BATCH_MESSAGES,
    REPORT_HEADER,
    SigmaCompressBatchResponse,
    SigmaCompressionReport,
    SigmaCompressResponse,
    SigmaDecompressBatchResponse,
    SigmaDecompressReport,
    SigmaDecompressResponse,
    pack_parts,
    unpack_parts,
)

__all__ = ("BINARY", "CompressResult", "DecompressResult")

BINARY = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class CompressResult:
    """A ΣLANG frame and its report.

    Attributes:
        frame: The frame bytes (decode with ``client.sigma.decompress``; frames made with
            ``dedup=True`` need the server's RSU store).
        report: Bytes, tokens, ratio and where the saving came from.
    """

    frame: bytes
    report: SigmaCompressionReport


@dataclass(frozen=True, slots=True)
class DecompressResult:
    """Decoded bytes and what the frame held.

    Attributes:
        data: Exactly the bytes that were compressed.
        report: Sizes, glyphs and tokens.
    """

    data: bytes
    report: SigmaDecompressReport


def _bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _compress_request(
    data: bytes, level: int | None, dedup: bool, stream: str | None, binary: bool, timeout_s: float | None
) -> dict[str, Any]:
    if binary:
        params = {"level": level, "dedup": str(dedup).lower(), "stream": stream, "timeout_s": timeout_s}
        return {
            "content": data,
            "headers": {"content-type": BINARY},
            "params": {k: v for k, v in params.items() if v is not None},
        }
    body = {"data": _b64(data), "level": level, "dedup": dedup, "stream": stream, "timeout_s": timeout_s}
    return {"json": {k: v for k, v in body.items() if v is not None}}


def _decompress_request(frame: bytes, binary: bool, timeout_s: float | None) -> dict[str, Any]:
    params = {"timeout_s": timeout_s} if timeout_s is not None else {}
    if binary:
        return {"content": frame, "headers": {"content-type": BINARY}, "params": params}
    return {"json": {"frame": _b64(frame), **params}}


def _compress_result(response: httpx.Response, binary: bool) -> CompressResult:
    if binary:
        report = SigmaCompressionReport.model_validate_json(response.headers[REPORT_HEADER])
        return CompressResult(response.content, report)
    parsed = SigmaCompressResponse.model_validate_json(response.content)
    return CompressResult(base64.b64decode(parsed.frame), parsed.report)


def _decompress_result(response: httpx.Response, binary: bool) -> DecompressResult:
    if binary:
        report = SigmaDecompressReport.model_validate_json(response.headers[REPORT_HEADER])
        return DecompressResult(response.content, report)
    parsed = SigmaDecompressResponse.model_validate_json(response.content)
    return DecompressResult(base64.b64decode(parsed.data), parsed.report)


def _compress_batch_request(
    messages: Sequence[bytes | str],
    level: int | None,
    dedup: bool,
    stream: str | None,
    streams: Sequence[str] | None,
    binary: bool,
    timeout_s: float | None,
) -> dict[str, Any]:
    many = list(streams) if streams is not None else None
    if binary:
        params = {
            "level": level,
            "dedup": str(dedup).lower(),
            "stream": stream,
            "streams": many,
            "timeout_s": timeout_s,
        }
        return {
            "content": pack_parts(_bytes(m) for m in messages),
            "headers": {"content-type": BINARY, "accept": BINARY},
            "params": {k: v for k, v in params.items() if v is not None},
        }
    body = {
        "messages": [_b64(_bytes(m)) for m in messages],
        "level": level,
        "dedup": dedup,
        "stream": stream,
        "streams": many,
        "timeout_s": timeout_s,
    }
    return {"json": {k: v for k, v in body.items() if v is not None}}


_REPORTS: TypeAdapter[list[SigmaCompressionReport]] = TypeAdapter(list[SigmaCompressionReport])


def _compress_batch_result(response: httpx.Response) -> list[CompressResult]:
    if response.headers.get("content-type", "").startswith(BINARY):
        reports_json, *frames = unpack_parts(response.content, MAX_BATCH_MESSAGES + 1)
        reports = _REPORTS.validate_json(reports_json)
        if len(reports) != len(frames):
            raise ValueError(f"binary batch answer: {len(reports)} reports for {len(frames)} frames")
        return [CompressResult(f, r) for f, r in zip(frames, reports, strict=True)]
    parsed = SigmaCompressBatchResponse.model_validate_json(response.content)
    return [CompressResult(base64.b64decode(r.frame), r.report) for r in parsed.results]


def _decompress_batch_request(
    frames: Sequence[bytes], binary: bool, timeout_s: float | None
) -> dict[str, Any]:
    if binary:
        return {
            "content": pack_parts(bytes(f) for f in frames),
            "headers": {"content-type": BINARY, "accept": BINARY},
            "params": {} if timeout_s is None else {"timeout_s": timeout_s},
        }
    body: dict[str, Any] = {"frames": [_b64(bytes(f)) for f in frames]}
    if timeout_s is not None:
        body["timeout_s"] = timeout_s
    return {"json": body}


def _decompress_batch_result(response: httpx.Response) -> list[bytes]:
    if response.headers.get("content-type", "").startswith(BINARY):
        return unpack_parts(response.content, MAX_BATCH_MESSAGES)
    return [
        base64.b64decode(d) for d in SigmaDecompressBatchResponse.model_validate_json(response.content).datas
    ]


def _optimize_body(
    text: str,
    budget_tokens: int,
    query: str,
    protected: Sequence[tuple[int, int]],
    by_paragraph: bool,
    timeout_s: float | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": text,
        "budget_tokens": budget_tokens,
        "query": query,
        "protected": [list(span) for span in protected],
        "by_paragraph": by_paragraph,
    }
    if timeout_s is not None:
        body["timeout_s"] = timeout_s
    return body


def _train_body(samples: Sequence[bytes | str], activate: bool) -> dict[str, Any]:
    return {
        "samples": [_b64(s) for s in samples if not isinstance(s, str)],
        "texts": [s for s in samples if isinstance(s, str)],
        "activate": activate,
    }

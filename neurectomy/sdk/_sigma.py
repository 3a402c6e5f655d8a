"""``client.sigma``: the ΣLANG endpoints in the SDK (compress, decompress, optimize, dictionaries, stats).

::

    with Client() as client:
        packed = client.sigma.compress(payload)              # raw bytes over HTTP by default
        assert client.sigma.decompress(packed.frame).data == payload
        frames = client.sigma.compress_batch(session_turns, stream="session-1")  # one request
        print(packed.report.ratio, packed.report.shares)
        fitted = client.sigma.optimize(context, budget_tokens=512, query=question)
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
    SigmaOptimizeResponse,
    SigmaStats,
    SigmaTrainResponse,
    pack_parts,
    unpack_parts,
)
from neurectomy.sdk._send import AsyncSend, Send

__all__ = ("AsyncSigmaResource", "CompressResult", "DecompressResult", "SigmaResource")

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


class SigmaResource:
    """ΣLANG through the HTTP API (``Client.sigma``).

    Args:
        send: The client's ``_send(method, path, **httpx_kwargs)``, which raises typed errors.
    """

    def __init__(self, send: Send) -> None:
        self._send = send

    def compress(
        self,
        data: bytes | str,
        *,
        level: int | None = None,
        dedup: bool = True,
        stream: str | None = None,
        binary: bool = True,
        timeout_s: float | None = None,
    ) -> CompressResult:
        """Compress ``data`` (text is UTF-8 encoded) into a ΣLANG frame.

        Args:
            data: The message.
            level: zstd level (-7..22); default from the server's settings.
            dedup: Reference RSUs in the server's store; False makes a self-contained frame.
            stream: Conversation id: the previous message of the stream helps compress this one.
            binary: Send raw bytes (True) or base64 JSON (False); the result is the same.
            timeout_s: Deadline of the request, in seconds.

        Raises:
            BadRequestError: An option is invalid (``field`` names it).
            TooLargeError: ``data`` exceeds the server's limit (the message states it).
            APIError: 503 no compressor running, 504 deadline passed, ...
        """
        kwargs = _compress_request(_bytes(data), level, dedup, stream, binary, timeout_s)
        return _compress_result(self._send("POST", "/v1/sigma/compress", **kwargs), binary)

    def decompress(
        self, frame: bytes, *, binary: bool = True, timeout_s: float | None = None
    ) -> DecompressResult:
        """Decode a frame to exactly the bytes that were compressed.

        Raises:
            BadRequestError: The frame is corrupted, truncated or not a ΣLANG frame.
            NotFoundError: The server's store lacks a referenced RSU, or the frame's dictionary.
            TooLargeError: The frame, or its content, exceeds the server's limit.
        """
        kwargs = _decompress_request(bytes(frame), binary, timeout_s)
        return _decompress_result(self._send("POST", "/v1/sigma/decompress", **kwargs), binary)

    def compress_batch(
        self,
        messages: Sequence[bytes | str],
        *,
        level: int | None = None,
        dedup: bool = True,
        stream: str | None = None,
        streams: Sequence[str] | None = None,
        binary: bool = True,
        timeout_s: float | None = None,
    ) -> list[CompressResult]:
        """Compress many messages of one stream in one request (``POST /v1/sigma/compress/batch``).

        Args:
            messages: 1-4096 messages, compressed in order (each may use the previous as context).
            level: zstd level (-7..22); default from the server's settings.
            dedup: Store-backed frames; False makes self-contained frames.
            stream: Conversation id of the messages.
            streams: Instead of ``stream``: each message's conversation id, in order (one per
                message), to batch the turns of many conversations in one request.
            binary: Send the messages and receive the frames as length-prefixed binary bodies
                (``application/octet-stream``, no base64; True), or as base64 JSON (False); the
                result is the same.
            timeout_s: Deadline of the request, in seconds.

        Returns:
            One frame and report per message, in order.

        Raises:
            BadRequestError: An option or message is invalid (``field`` names it).
            TooLargeError: The messages exceed the server's limit.
        """
        kwargs = _compress_batch_request(messages, level, dedup, stream, streams, binary, timeout_s)
        return _compress_batch_result(self._send("POST", "/v1/sigma/compress/batch", **kwargs))

    def decompress_batch(
        self, frames: Sequence[bytes], *, binary: bool = True, timeout_s: float | None = None
    ) -> list[bytes]:
        """Decode many frames in one request (``POST /v1/sigma/decompress/batch``), in order.

        Args:
            frames: 1-4096 frames of the caller's tenant.
            binary: Send the frames and receive the messages as length-prefixed binary bodies
                (``application/octet-stream``, no base64; True), or as base64 JSON (False); the
                result is the same.
            timeout_s: Deadline of the request, in seconds.

        Raises:
            BadRequestError: A frame is corrupted, truncated or another tenant's (``field`` names it).
            NotFoundError: The server's store lacks a referenced RSU, or a frame's dictionary.
        """
        kwargs = _decompress_batch_request(frames, binary, timeout_s)
        return _decompress_batch_result(self._send("POST", "/v1/sigma/decompress/batch", **kwargs))

    def optimize(
        self,
        text: str,
        *,
        budget_tokens: int,
        query: str = "",
        protected: Sequence[tuple[int, int]] = (),
        by_paragraph: bool = False,
        timeout_s: float | None = None,
    ) -> SigmaOptimizeResponse:
        """Fit ``text`` into ``budget_tokens`` (the served model's tokens) keeping what fits ``query``.

        Lossy: sentences or paragraphs are dropped; code blocks, JSON, numbers and ``protected``
        ``(start, end)`` character spans are never altered.

        Raises:
            BadRequestError: Invalid arguments, or the protected spans alone exceed the budget.
            TooLargeError: ``text`` is longer than the server accepts.
        """
        body = _optimize_body(text, budget_tokens, query, protected, by_paragraph, timeout_s)
        return SigmaOptimizeResponse.model_validate_json(
            self._send("POST", "/v1/sigma/optimize", json=body).content
        )

    def train_dictionary(
        self, samples: Sequence[bytes | str], *, activate: bool = True
    ) -> SigmaTrainResponse:
        """Train a zstd dictionary on typical messages; new frames use it when ``activate``.

        Returns ``trained=False`` with a ``reason`` when there are too few samples.
        """
        response = self._send("POST", "/v1/sigma/dictionaries", json=_train_body(samples, activate))
        return SigmaTrainResponse.model_validate_json(response.content)

    def stats(self) -> SigmaStats:
        """RSU store size, dictionaries, the token counter in use and compression counters."""
        return SigmaStats.model_validate_json(self._send("GET", "/v1/sigma/stats").content)


class AsyncSigmaResource:
    """ΣLANG through the HTTP API (``AsyncClient.sigma``); see :class:`SigmaResource`."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send

    async def compress(
        self,
        data: bytes | str,
        *,
        level: int | None = None,
        dedup: bool = True,
        stream: str | None = None,
        binary: bool = True,
        timeout_s: float | None = None,
    ) -> CompressResult:
        """See :meth:`SigmaResource.compress`."""
        kwargs = _compress_request(_bytes(data), level, dedup, stream, binary, timeout_s)
        return _compress_result(await self._send("POST", "/v1/sigma/compress", **kwargs), binary)

    async def decompress(
        self, frame: bytes, *, binary: bool = True, timeout_s: float | None = None
    ) -> DecompressResult:
        """See :meth:`SigmaResource.decompress`."""
        kwargs = _decompress_request(bytes(frame), binary, timeout_s)
        return _decompress_result(await self._send("POST", "/v1/sigma/decompress", **kwargs), binary)

    async def compress_batch(
        self,
        messages: Sequence[bytes | str],
        *,
        level: int | None = None,
        dedup: bool = True,
        stream: str | None = None,
        streams: Sequence[str] | None = None,
        binary: bool = True,
        timeout_s: float | None = None,
    ) -> list[CompressResult]:
        """See :meth:`SigmaResource.compress_batch`."""
        kwargs = _compress_batch_request(messages, level, dedup, stream, streams, binary, timeout_s)
        return _compress_batch_result(await self._send("POST", "/v1/sigma/compress/batch", **kwargs))

    async def decompress_batch(
        self, frames: Sequence[bytes], *, binary: bool = True, timeout_s: float | None = None
    ) -> list[bytes]:
        """See :meth:`SigmaResource.decompress_batch`."""
        kwargs = _decompress_batch_request(frames, binary, timeout_s)
        return _decompress_batch_result(await self._send("POST", "/v1/sigma/decompress/batch", **kwargs))

    async def optimize(
        self,
        text: str,
        *,
        budget_tokens: int,
        query: str = "",
        protected: Sequence[tuple[int, int]] = (),
        by_paragraph: bool = False,
        timeout_s: float | None = None,
    ) -> SigmaOptimizeResponse:
        """See :meth:`SigmaResource.optimize`."""
        body = _optimize_body(text, budget_tokens, query, protected, by_paragraph, timeout_s)
        response = await self._send("POST", "/v1/sigma/optimize", json=body)
        return SigmaOptimizeResponse.model_validate_json(response.content)

    async def train_dictionary(
        self, samples: Sequence[bytes | str], *, activate: bool = True
    ) -> SigmaTrainResponse:
        """See :meth:`SigmaResource.train_dictionary`."""
        response = await self._send("POST", "/v1/sigma/dictionaries", json=_train_body(samples, activate))
        return SigmaTrainResponse.model_validate_json(response.content)

    async def stats(self) -> SigmaStats:
        """See :meth:`SigmaResource.stats`."""
        return SigmaStats.model_validate_json((await self._send("GET", "/v1/sigma/stats")).content)

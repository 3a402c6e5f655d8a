"""``/v1/sigma/*``: ΣLANG compression, decompression, context optimisation, dictionaries and statistics.

``compress`` and ``decompress`` take JSON (binary data as base64) or a raw ``application/octet-stream``
body (options as query parameters); a raw request gets a raw answer with the report as JSON in the
``X-Sigma-Report`` header. Messages and frames go on to the agents raw, as a binary attachment after
the JSON (`agents.protocol.Attached`, `agents.compression.wire.pack_parts`), and frames and decoded
data come back the same way: a binary batch body passes to the compressor, and its answer back to
the client, as they are. Binary data is limited to ``MAX_DATA_BYTES`` (one NATS message, whichever
way it travels); larger is 413 naming the limit. Every route works on the caller's tenant only: frames are
made against, and decoded with, that tenant's store and MAC key. A corrupted frame, or one made for
another tenant, is 400 (``field: frame``); a frame whose context RSUs were evicted from the tenant's
store, or whose dictionary this service lacks, is 404. The ``/batch`` routes take many messages or
frames per request.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, TypeVar

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from pydantic import BaseModel, TypeAdapter, ValidationError

from agents.compression import MAX_DATA_BYTES
from agents.compression._wire import ENVELOPE_RESERVE_BYTES, Base64Data, check_size
from agents.errors import BadInputError
from agents.protocol import Attached
from api._bodies import validate_json
from api._request import call_context
from api.sigma._coalesce import (
    COALESCER_STATE,
    TEAM,
    CompressCoalescer,
    CompressedMessage,
    attachment_of,
    call_compressor,
    compress_messages,
)
from api.sigma._raw_response import BINARY, RawResponse
from api.sigma.schemas import (
    MAX_BATCH_MESSAGES,
    REPORT_HEADER,
    SigmaCompressBatchRequest,
    SigmaCompressBatchResponse,
    SigmaCompressionReport,
    SigmaCompressRequest,
    SigmaCompressResponse,
    SigmaDecompressBatchRequest,
    SigmaDecompressBatchResponse,
    SigmaDecompressRequest,
    SigmaDecompressResponse,
    SigmaOptimizeRequest,
    SigmaOptimizeResponse,
    SigmaStats,
    SigmaTrainRequest,
    SigmaTrainResponse,
    base64_decoded_size,
    pack_parts,
    unpack_parts,
)
from orchestrator import CallContext, Orchestrator

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"
_REPORTS: TypeAdapter[list[SigmaCompressionReport]] = TypeAdapter(list[SigmaCompressionReport])
MAX_BODY_BYTES = (MAX_DATA_BYTES + 2) // 3 * 4 + ENVELOPE_RESERVE_BYTES
"""Largest request body of the binary-carrying routes, bytes (base64 of `MAX_DATA_BYTES` plus JSON)."""

Level = Annotated[int | None, Parameter(ge=-7, le=22, description="zstd level (raw bodies).")]
Timeout = Annotated[
    float | None, Parameter(gt=0.0, le=3600.0, description="Deadline in seconds (raw bodies).")
]


def _parse(model: type[M], body: bytes) -> M:
    """Validate a JSON body; errors name the first offending field (400)."""
    try:
        return validate_json(model, body)  # the garbage collector paused if the body is large
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise BadInputError(first["msg"], field=field) from None


def _b64_decoded(values: list[str]) -> bytes:
    """Base64 strings (checked by the request model) as one `pack_parts` body."""
    return pack_parts(binascii.a2b_base64(v) for v in values)


class _CompressBody(SigmaCompressRequest):
    """`SigmaCompressRequest` with ``data`` decoded while it is validated (one base64 pass)."""

    data: Base64Data  # type: ignore[assignment]


async def _compress_one(
    state: State, message: bytes, ctx: CallContext, *, stream: str | None, level: int | None, dedup: bool
) -> CompressedMessage:
    """One message through the app's coalescer, or alone when the app has none.

    An in-process app whose lifespan did not run has no coalescer.
    """
    coalescer: CompressCoalescer | None = state.get(COALESCER_STATE)
    if coalescer is not None:
        return await coalescer.compress(message, ctx, stream=stream, level=level, dedup=dedup)
    (one,) = await compress_messages(state.orchestrator, [message], [stream], ctx, level=level, dedup=dedup)
    return one


def _is_binary(request: Request[Any, Any, Any]) -> bool:
    return request.content_type[0] == BINARY


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _raw(content: str, report: BaseModel) -> Response[bytes]:
    return RawResponse(base64.b64decode(content), headers={REPORT_HEADER: report.model_dump_json()})


@post(
    "/v1/sigma/compress",
    status_code=200,
    request_max_body_size=MAX_BODY_BYTES,
    summary="Compress bytes into a ΣLANG frame (JSON with base64, or a raw octet-stream body)",
)
async def compress(
    request: Request[Any, Any, Any],
    state: State,
    level: Level = None,
    dedup: Annotated[bool, Parameter(description="Use the RSU store (raw bodies).")] = True,
    stream: Annotated[
        str | None, Parameter(max_length=256, description="Conversation id (raw bodies).")
    ] = None,
    timeout_s: Timeout = None,
) -> Response[Any]:
    """Compress a message with the compressor agent; the answer reports bytes, tokens and shares.

    Body: :class:`api.sigma.schemas.SigmaCompressRequest`, or the raw bytes. Errors: 400 invalid body
    (names the field), 413 data above the limit, 503 no compressor running, 504 deadline passed.
    """
    orchestrator: Orchestrator = state.orchestrator
    body = await request.body()
    binary = _is_binary(request)
    if binary:
        check_size("data", len(body))
        message = body
    else:
        req = _parse(_CompressBody, body)
        check_size("data", len(req.data))
        message, level, dedup, stream, timeout_s = req.data, req.level, req.dedup, req.stream, req.timeout_s
    ctx = call_context(orchestrator, request, timeout_s=timeout_s)
    report, frame = await _compress_one(state, message, ctx, stream=stream, level=level, dedup=dedup)
    if binary:
        return RawResponse(frame, headers={REPORT_HEADER: report.decode()})
    return Response(
        SigmaCompressResponse(frame=_b64(frame), report=SigmaCompressionReport.model_validate_json(report))
    )


@post(
    "/v1/sigma/decompress",
    status_code=200,
    request_max_body_size=MAX_BODY_BYTES,
    summary="Decode a ΣLANG frame to the exact original bytes (JSON with base64, or raw octet-stream)",
)
async def decompress(
    request: Request[Any, Any, Any], state: State, timeout_s: Timeout = None
) -> Response[Any]:
    """Decode a frame with the decompressor agent.

    Body: :class:`api.sigma.schemas.SigmaDecompressRequest`, or the raw frame. Errors: 400 corrupted,
    truncated or foreign frame (``field: frame``), 404 a referenced RSU or dictionary is missing, 413
    frame or decoded content above the limit.
    """
    orchestrator: Orchestrator = state.orchestrator
    body = await request.body()
    if _is_binary(request):
        check_size("frame", len(body))
        payload: dict[str, Any] = {"frame": _b64(body)}
    else:
        req = _parse(SigmaDecompressRequest, body)
        check_size("frame", base64_decoded_size(req.frame))
        payload = {"frame": req.frame}
        timeout_s = req.timeout_s
    out = await orchestrator.call(
        TEAM,
        "decompressor",
        payload,
        call_context(orchestrator, request, timeout_s=timeout_s),
        idempotent=True,
    )
    result = SigmaDecompressResponse.model_validate(out)
    return _raw(result.data, result.report) if _is_binary(request) else Response(result)


@post(
    "/v1/sigma/compress/batch",
    status_code=200,
    request_max_body_size=MAX_BODY_BYTES,
    summary="Compress many messages of one stream per request (JSON with base64, or length-prefixed)",
    responses={
        200: ResponseSpec(
            data_container=SigmaCompressBatchResponse,
            description=(
                "JSON (one frame, base64, and report per message); with `Accept: application/octet-stream`"
                " an `application/octet-stream` body of length-prefixed parts (each a u32 little-endian"
                " length, then its bytes): first the reports as one JSON array, then one raw frame per"
                " message, in order."
            ),
        )
    },
)
async def compress_batch(
    request: Request[Any, Any, Any],
    state: State,
    level: Level = None,
    dedup: Annotated[bool, Parameter(description="Use the RSU store (binary bodies).")] = True,
    stream: Annotated[
        str | None, Parameter(max_length=256, description="Conversation id (binary bodies).")
    ] = None,
    streams: Annotated[
        list[str] | None,
        Parameter(
            max_items=MAX_BATCH_MESSAGES,
            description="Instead of stream: each message's conversation id, in order (binary bodies).",
        ),
    ] = None,
    timeout_s: Timeout = None,
) -> Response[Any]:
    """Compress ``messages`` in order with one compressor call: one frame and report per message.

    Body: :class:`api.sigma.schemas.SigmaCompressBatchRequest`, or ``application/octet-stream``: each
    message as a u32 little-endian length then its bytes (`api.sigma.schemas.pack_parts`), options as query
    parameters. The answer is JSON, or with ``Accept: application/octet-stream`` the same framing:
    the reports as one JSON array, then the raw frames (`api.sigma.schemas.pack_parts`). Errors: 400
    invalid body (names the field), 413 messages above the limit in total.
    """
    orchestrator: Orchestrator = state.orchestrator
    body = await request.body()
    if _is_binary(request):  # already the attachment's layout: passed on as it is (the agent splits it)
        check_size("messages", len(body))
        options: dict[str, Any] = {"level": level, "dedup": dedup, "stream": stream}
        if streams:
            options["streams"] = streams
        messages = body
    else:
        req = _parse(SigmaCompressBatchRequest, body)
        check_size("messages", sum(base64_decoded_size(m) for m in req.messages))
        options = req.model_dump(exclude={"timeout_s", "messages"}, exclude_none=True)
        messages = _b64_decoded(req.messages)
        timeout_s = req.timeout_s
    answer = await call_compressor(
        orchestrator, options, messages, call_context(orchestrator, request, timeout_s=timeout_s)
    )
    if request.accept.best_match([JSON, BINARY], default=JSON) == BINARY:
        return Response(answer, media_type=BINARY)
    reports, *frames = unpack_parts(answer, MAX_BATCH_MESSAGES + 1)
    return Response(
        SigmaCompressBatchResponse(
            results=[
                SigmaCompressResponse(frame=_b64(f), report=r)
                for f, r in zip(frames, _REPORTS.validate_json(reports), strict=True)
            ]
        )
    )


@post(
    "/v1/sigma/decompress/batch",
    status_code=200,
    request_max_body_size=MAX_BODY_BYTES,
    summary="Decode many frames of the caller's tenant in one request (JSON with base64, or length-prefixed)",
    responses={
        200: ResponseSpec(
            data_container=SigmaDecompressBatchResponse,
            description=(
                "JSON (the original bytes of each frame, base64); with `Accept: application/octet-stream`"
                " an `application/octet-stream` body of length-prefixed parts (each a u32 little-endian"
                " length, then its bytes): the original bytes of each frame, in order."
            ),
        )
    },
)
async def decompress_batch(
    request: Request[Any, Any, Any], state: State, timeout_s: Timeout = None
) -> Response[Any]:
    """Decode ``frames`` in order with one decompressor call (one thread hop for the batch).

    Body: :class:`api.sigma.schemas.SigmaDecompressBatchRequest`, or ``application/octet-stream``: each
    frame as a u32 little-endian length then its bytes (`api.sigma.schemas.pack_parts`). The answer is
    JSON, or with ``Accept: application/octet-stream`` the decoded messages in the same framing.
    Errors: 400 a corrupted frame, or another tenant's (``field: frames``); 404 a frame whose context
    was evicted from the tenant's store; 413 frames or decoded content above the limit.
    """
    orchestrator: Orchestrator = state.orchestrator
    body = await request.body()
    if _is_binary(request):  # already the attachment's layout: passed on as it is
        check_size("frames", len(body))
        frames = body
    else:
        req = _parse(SigmaDecompressBatchRequest, body)
        check_size("frames", sum(base64_decoded_size(f) for f in req.frames))
        frames = _b64_decoded(req.frames)
        timeout_s = req.timeout_s
    out = await orchestrator.call(
        TEAM,
        "decompressor",
        Attached({}, frames),
        call_context(orchestrator, request, timeout_s=timeout_s),
        idempotent=True,
    )
    answer = attachment_of(out, "decompressor")
    if request.accept.best_match([JSON, BINARY], default=JSON) == BINARY:
        return Response(answer, media_type=BINARY)
    datas = unpack_parts(answer, MAX_BATCH_MESSAGES)
    return Response(SigmaDecompressBatchResponse(datas=[_b64(d) for d in datas]))


@post(
    "/v1/sigma/optimize",
    status_code=200,
    request_max_body_size=MAX_BODY_BYTES,
    summary="Fit a text into a token budget, keeping what is relevant to a query (lossy)",
)
async def optimize(
    data: JSONBody[SigmaOptimizeRequest], request: Request[Any, Any, Any], state: State
) -> SigmaOptimizeResponse:
    """Extractive context optimisation by the context-optimizer agent; code, JSON and numbers intact.

    Errors: 400 invalid body, or protected spans alone above the budget (``field: budget_tokens``);
    413 text above 262,144 characters.
    """
    orchestrator: Orchestrator = state.orchestrator
    out = await orchestrator.call(
        TEAM,
        "context-optimizer",
        data.model_dump(exclude={"timeout_s"}),
        call_context(orchestrator, request, timeout_s=data.timeout_s),
    )
    return SigmaOptimizeResponse.model_validate(out)


@post(
    "/v1/sigma/dictionaries",
    status_code=200,
    request_max_body_size=MAX_BODY_BYTES,
    summary="Train a zstd dictionary on sample messages and use it for new frames",
)
async def train_dictionary(
    data: JSONBody[SigmaTrainRequest], request: Request[Any, Any, Any], state: State
) -> SigmaTrainResponse:
    """Train with the dictionary-trainer agent (``trained: false`` with a reason if too few samples)."""
    orchestrator: Orchestrator = state.orchestrator
    check_size("samples", sum(base64_decoded_size(s) for s in data.samples) + sum(len(t) for t in data.texts))
    out = await orchestrator.call(
        TEAM,
        "dictionary-trainer",
        data.model_dump(exclude={"timeout_s"}),
        call_context(orchestrator, request, timeout_s=data.timeout_s),
    )
    return SigmaTrainResponse.model_validate(out)


@get("/v1/sigma/stats", summary="RSU store, dictionaries and compression counters")
async def stats(request: Request[Any, Any, Any], state: State) -> SigmaStats:
    """Statistics from the rsu-manager agent (the counters are those of the instance that answered)."""
    orchestrator: Orchestrator = state.orchestrator
    out = await orchestrator.call(
        TEAM, "rsu-manager", {"action": "stats"}, call_context(orchestrator, request), idempotent=True
    )
    return SigmaStats.model_validate(out["store"])


ROUTES = (compress, decompress, compress_batch, decompress_batch, optimize, train_dictionary, stats)

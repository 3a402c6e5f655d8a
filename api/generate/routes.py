"""``POST /v1/generate``: text generation, as JSON or as Server-Sent Events."""

from __future__ import annotations

import json
from contextlib import aclosing
from json.encoder import encode_basestring_ascii
from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.params import JSONBody

from agents.errors import AgentError, BadInputError, StreamBrokenError
from agents.protocol import ChatMessageIn, GenerateInput, GenerateOutput, Sampling
from api._push import EventFormat
from api._request import call_context, request_id_of
from api._sse import SSE_END, sse_data_prefix, sse_event, sse_push_response
from api.errors import error_body
from api.generate.schemas import GenerateRequest, GenerateResponse, Timings, Usage
from orchestrator import Orchestrator, TextDelta


def _to_input(body: GenerateRequest) -> GenerateInput:
    if (body.prompt is None) == (body.messages is None):
        raise BadInputError("give exactly one of prompt and messages", field="prompt")
    return GenerateInput(
        prompt=body.prompt,
        messages=[ChatMessageIn(role=m.role, content=m.content) for m in body.messages]
        if body.messages
        else None,
        grammar=body.grammar,
        json_schema=body.json_schema,
        speculative=body.speculative,
        model=body.model,
        **body.model_dump(include=set(Sampling.model_fields)),
    )


def _response(request_id: str, out: GenerateOutput) -> GenerateResponse:
    t = out.timings
    return GenerateResponse(
        id=request_id,
        model=out.model,
        text=out.text,
        finish_reason=out.finish_reason,
        usage=Usage(
            prompt_tokens=out.usage.prompt_tokens,
            completion_tokens=out.usage.completion_tokens,
            cached_tokens=out.usage.cached_tokens,
            total_tokens=out.usage.prompt_tokens + out.usage.completion_tokens,
        ),
        timings=Timings(
            queue_s=t.queue_s,
            ttft_s=t.ttft_s,
            decode_s=t.decode_s,
            decode_tokens_per_s=(t.decode_tokens / t.decode_s)
            if t.decode_tokens and t.decode_s > 0
            else None,
        ),
    )


@post("/v1/generate", status_code=200, summary="Generate text (JSON, or Server-Sent Events with stream=true)")
async def generate(
    data: JSONBody[GenerateRequest], request: Request[Any, Any, Any], state: State
) -> Response[Any]:
    """Generate a completion with the Inference team's generator agent.

    ``model`` chooses one of the configured models by name (the default model when absent); the
    response names the model used.

    Errors: 400 invalid body (names the field), 404 unknown ``model`` (the message lists the configured
    ones), 429 busy (Retry-After), 503 no generator running, 504 deadline passed.
    """
    orchestrator: Orchestrator = state.orchestrator
    request_id = request_id_of(request)
    ctx = call_context(orchestrator, request, timeout_s=data.timeout_s)
    if not data.stream:
        events = orchestrator.generate_stream(_to_input(data), ctx)
        async with aclosing(events):
            async for event in events:
                if isinstance(event, GenerateOutput):
                    return Response(_response(request_id, event))
        raise StreamBrokenError("generator stream ended without an output")
    # The first event is in before the response starts, so refusals (400/429/503/504) are real statuses.
    stream = await orchestrator.open_generation(_to_input(data), ctx)
    return sse_push_response(stream, _format(request, request_id))


_TOKEN_HEAD = sse_data_prefix("token") + b'{"text": '
"""``event: token``, ``data: {"text": `` (a JSON string and :data:`_TOKEN_END` end the event)."""
_TOKEN_END = b"}" + SSE_END


def _token(delta: TextDelta) -> bytes:
    """``sse_event(json.dumps({"text": delta.text}), "token")``, encoded once.

    ``encode_basestring_ascii`` is what ``json.dumps`` runs for a string (``ensure_ascii``), without
    the encoder object around it.
    """
    return _TOKEN_HEAD + encode_basestring_ascii(delta.text).encode() + _TOKEN_END


def _format(request: Request[Any, Any, Any], request_id: str) -> EventFormat:
    """``token`` events (``{"text": ...}``), then ``done`` (the response body) or ``error``."""

    def done(out: GenerateOutput) -> bytes:
        return sse_event(_response(request_id, out).model_dump_json(), "done")

    def error(exc: AgentError) -> bytes:
        return sse_event(json.dumps(error_body(exc.code, exc.message, exc.field, request)), "error")

    return EventFormat(delta=_token, end=done, error=error)


ROUTES = (generate,)

"""The Litestar application: routes, error mapping, request ids, OpenAPI at ``/schema``."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.middleware import ASGIMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.params import JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.types import ASGIApp, Receive, Scope, Send

from agents.errors import AgentError, BadInputError, StreamBrokenError
from agents.protocol import ChatMessageIn, GenerateInput, GenerateOutput
from api.errors import EXCEPTION_HANDLERS, error_body
from api.schemas import AgentOut, GenerateRequest, GenerateResponse, Health, Timings, Usage
from orchestrator import Orchestrator, TextDelta

log = structlog.get_logger("neurectomy.api")
REQUEST_ID_HEADER = "x-request-id"


class RequestIdMiddleware(ASGIMiddleware):
    """Takes ``X-Request-Id`` from the request (or makes one), binds it to every log line, echoes it."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Bind the request id around the rest of the app."""
        headers = dict(scope.get("headers") or [])
        raw = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = raw if raw and len(raw) <= 128 and raw.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await next_app(scope, receive, send_with_id)


def _request_id(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex)


def _to_input(body: GenerateRequest) -> GenerateInput:
    if (body.prompt is None) == (body.messages is None):
        raise BadInputError("give exactly one of prompt and messages", field="prompt")
    return GenerateInput(
        prompt=body.prompt,
        messages=[ChatMessageIn(role=m.role, content=m.content) for m in body.messages]
        if body.messages
        else None,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        min_p=body.min_p,
        repeat_penalty=body.repeat_penalty,
        seed=body.seed,
        stop=body.stop,
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

    Errors: 400 invalid body (names the field), 429 busy (Retry-After), 503 no generator running,
    504 deadline passed.
    """
    orchestrator: Orchestrator = state.orchestrator
    request_id = _request_id(request)
    ctx = orchestrator.context(timeout_s=data.timeout_s, request_id=request_id)
    events = orchestrator.generate_stream(_to_input(data), ctx)
    if not data.stream:
        async for event in events:
            if isinstance(event, GenerateOutput):
                return Response(_response(request_id, event))
        raise StreamBrokenError("generator stream ended without an output")
    # Wait for the first event so that refusals (400/429/503/504) are real HTTP statuses.
    first = await events.__anext__()
    return ServerSentEvent(_sse(request, request_id, first, events))


async def _sse(
    request: Request[Any, Any, Any],
    request_id: str,
    first: TextDelta | GenerateOutput,
    rest: AsyncIterator[TextDelta | GenerateOutput],
) -> AsyncIterator[ServerSentEventMessage]:
    try:
        event: TextDelta | GenerateOutput | None = first
        while event is not None:
            if isinstance(event, TextDelta):
                yield ServerSentEventMessage(data=json.dumps({"text": event.text}), event="token")
            else:
                yield ServerSentEventMessage(
                    data=_response(request_id, event).model_dump_json(), event="done"
                )
                return
            event = await anext(rest, None)
    except AgentError as exc:
        body = error_body(exc.code, exc.message, exc.field, request)
        yield ServerSentEventMessage(data=json.dumps(body), event="error")
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


@get("/v1/agents", summary="Agents running on the bus")
async def list_agents(state: State) -> list[AgentOut]:
    """Every agent answering ``$SRV.STATS`` now, with team, replicas and load."""
    orchestrator: Orchestrator = state.orchestrator
    return [
        AgentOut(
            name=a.name,
            team=a.team,
            description=a.description,
            subject=a.subject,
            capabilities=list(a.capabilities),
            replicas=a.replicas,
            in_flight=a.in_flight,
            mailbox_depth=a.mailbox_depth,
            requests=a.requests,
            metadata=a.metadata,
        )
        for a in await orchestrator.agents()
    ]


@get("/health", summary="NATS connected and model loaded")
async def health(state: State) -> Response[Health]:
    """200 when NATS is connected and a generator with a loaded model answers, 503 otherwise."""
    orchestrator: Orchestrator = state.orchestrator
    body = Health.model_validate(await orchestrator.health())
    return Response(body, status_code=200 if body.status == "ok" else 503)


def create_app(
    orchestrator: Orchestrator, *, max_body_bytes: int = 4 * 1024 * 1024, debug: bool = False
) -> Litestar:
    """The HTTP application over ``orchestrator``.

    Args:
        orchestrator: Dispatches requests to the agents.
        max_body_bytes: Larger request bodies are refused with 413.
        debug: Litestar debug mode (tracebacks in responses; never in production).
    """
    return Litestar(
        route_handlers=[generate, list_agents, health],
        state=State({"orchestrator": orchestrator}),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[RequestIdMiddleware()],
        openapi_config=OpenAPIConfig(title="Neurectomy", version="0.1.0", path="/schema"),
        request_max_body_size=max_body_bytes,
        debug=debug,
        logging_config=None,
    )

"""Ollama-compatible routes (https://github.com/ollama/ollama/blob/main/docs/api.md).

=========================  ====================================================================
``POST /api/chat``          chat, NDJSON chunks (default) or one JSON object; ``tools`` → ``tool_calls``
``POST /api/generate``      completion of ``prompt`` (as a user turn; ``raw``: continued as given)
``POST /api/embed``         all-MiniLM-L6-v2 vectors of ``input``; ``/api/embeddings``: the legacy form
``/api/tags`` ...            the model catalogue, version and probes: :mod:`api.ollama.models`
=========================  ====================================================================

A chat without ``messages`` or a generation without ``prompt`` loads the model, as Ollama's do (answered
with ``done_reason: "load"``); ``keep_alive`` has no effect (a model is freed after the service's
``idle_unload_s``, whoever asks), so ``keep_alive: 0`` does not unload it and is answered the same way.

Generations run like the OpenAI routes' (same generator agent, same model fallback, same tool-call
grammar: :mod:`api.openai.tools` with ``tool_choice`` ``auto``, as Ollama lets the model decide). A
streamed chat with ``tools`` sends its answer in one chunk once it is complete (a call is only known
whole at the end). Durations are nanoseconds, as Ollama's; ``load_duration`` is 0 (models load ahead
or on the first request, not per request). Errors are ``{"error": "..."}`` with the status the rest of
the API uses (400, 404, 429, 503, 504).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from litestar import Request, Response, Router, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import JSONBody
from pydantic import ValidationError

from agents.errors import AgentError, BadInputError
from agents.protocol import ChatMessageIn, GenerateInput, GenerateOutput
from agents.storage.wire import MAX_EMBED_TEXTS, EmbedOutput
from api._embedder import call_embedder
from api._push import EventFormat, push_response
from api._request import call_context
from api.errors import STATUS_BY_CODE, first_validation_error, internal_error_response
from api.ollama.models import MODEL_ROUTES, OLLAMA_VERSION, ROOT_ROUTES
from api.ollama.schemas import (
    OllamaChatRequest,
    OllamaEmbeddingsRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
    OllamaOptions,
)
from api.openai._errors import openai_param
from api.openai._generation import generate_all, generate_input, start_streams
from api.openai.schemas import ChatCompletionRequest
from api.openai.tools import ToolPlan, parse_call, plan_tools, render_messages
from orchestrator import CallContext, GenerationStream, Orchestrator, TextDelta

__all__ = ("OLLAMA_VERSION", "ROUTES")

_NDJSON = "application/x-ndjson"
_NS = 1_000_000_000


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


# ----------------------------------------------------------------- request → GenerateInput
_OPTION_NAMES = {
    "max_tokens": "options.num_predict",
    **{
        f: f"options.{f}"
        for f in ("stop", "seed", "temperature", "top_k", "top_p", "min_p", "repeat_penalty")
    },
    "json_schema": "format",
}
"""Our generator's fields → the Ollama request's names for them (for error messages)."""


def _fields(options: OllamaOptions | None, fmt: Any) -> dict[str, Any]:
    o = options or OllamaOptions()
    stop = [o.stop] if isinstance(o.stop, str) else list(o.stop or [])
    fields: dict[str, Any] = {
        "max_tokens": o.num_predict if o.num_predict is not None and o.num_predict > 0 else None,
        **o.sampling(),
        "seed": None if o.seed is None else o.seed % 2**32,
        "stop": [s for s in stop if s] or None,
    }
    if fmt == "json":
        fields["json_schema"] = {"type": "object"}
    elif isinstance(fmt, dict):
        fields["json_schema"] = fmt
    return {k: v for k, v in fields.items() if v is not None}


def _openai_messages(body: OllamaChatRequest) -> list[dict[str, Any]]:
    """Ollama's messages as OpenAI's.

    Tool calls get ids; a ``tool`` result answers the first open call of its ``tool_name``, or else the
    first open call.
    """
    out: list[dict[str, Any]] = []
    open_calls: list[tuple[str, str]] = []
    for i, m in enumerate(body.messages):
        if m.images:
            raise BadInputError("images are not served (text-only model)", field=f"messages[{i}].images")
        if m.role == "assistant" and m.tool_calls:
            calls = []
            for j, call in enumerate(m.tool_calls):
                call_id = call.id or f"call_{i}_{j}"
                open_calls.append((call_id, call.function.name))
                arguments = json.dumps(call.function.arguments, ensure_ascii=False)
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": arguments},
                    }
                )
            out.append({"role": "assistant", "content": m.content or None, "tool_calls": calls})
        elif m.role == "tool":
            match = next(
                (c for c in open_calls if c[1] == m.tool_name), open_calls[0] if open_calls else None
            )
            if match is None:
                out.append({"role": "user", "content": f"<tool_response>\n{m.content}\n</tool_response>"})
            else:
                open_calls.remove(match)
                out.append({"role": "tool", "tool_call_id": match[0], "content": m.content})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _chat(body: OllamaChatRequest) -> tuple[GenerateInput, ToolPlan | None]:
    if not body.messages:
        raise BadInputError("must hold at least one message", field="messages")
    try:
        openai_body = ChatCompletionRequest.model_validate(
            {"model": body.model, "messages": _openai_messages(body), "tools": body.tools or None}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = openai_param(".".join(str(p) for p in first["loc"])) or "messages"
        raise BadInputError(str(first["msg"]), field=where) from None
    plan = plan_tools(openai_body)
    fields = _fields(body.options, body.format)
    if plan is not None:
        fields.pop("json_schema", None)
        fields.update(tool_schema=plan.schema, tool_mode=plan.mode)
    return generate_input(_OPTION_NAMES, messages=render_messages(openai_body, plan), **fields), plan


def _generate_input(body: OllamaGenerateRequest) -> GenerateInput:
    if body.images:
        raise BadInputError("images are not served (text-only model)", field="images")
    if body.suffix:
        raise BadInputError("suffix (fill-in-the-middle) is not supported", field="suffix")
    fields = _fields(body.options, body.format)
    if body.raw:
        return generate_input(_OPTION_NAMES, prompt=body.prompt, **fields)
    messages = [ChatMessageIn(role="system", content=body.system)] if body.system else []
    messages.append(ChatMessageIn(role="user", content=body.prompt))
    return generate_input(_OPTION_NAMES, messages=messages, **fields)


# ----------------------------------------------------------------- GenerateOutput → Ollama JSON
def _final(out: GenerateOutput, model: str, started: float) -> dict[str, Any]:
    t = out.timings
    return {
        "done": True,
        "done_reason": "length" if out.finish_reason == "length" else "stop",
        "total_duration": int((time.perf_counter() - started) * _NS),
        "load_duration": 0,
        "prompt_eval_count": out.usage.prompt_tokens,
        "prompt_eval_duration": int(t.ttft_s * _NS),
        "eval_count": out.usage.completion_tokens,
        "eval_duration": int(t.decode_s * _NS),
    }


def _message(out: GenerateOutput, plan: ToolPlan | None) -> dict[str, Any]:
    if plan is not None:
        parsed = parse_call(plan, out.text)
        if parsed.call is not None:
            fn = parsed.call["function"]
            call = {
                "id": parsed.call["id"],
                "function": {"index": 0, "name": fn["name"], "arguments": json.loads(fn["arguments"])},
            }
            return {"role": "assistant", "content": "", "tool_calls": [call]}
    return {"role": "assistant", "content": out.text}


def _ndjson(stream: GenerationStream, model: str, started: float, *, chat: bool) -> Response[Any]:
    """NDJSON chunks of a streamed answer, written as they arrive (`api._push`).

    An error after the start is sent as ``{"error": ...}``.
    """

    def delta(event: TextDelta) -> bytes:
        if not event.text:
            return b""
        part = {"message": {"role": "assistant", "content": event.text}} if chat else {"response": event.text}
        return _line({"model": model, "created_at": _now(), **part, "done": False})

    def end(out: GenerateOutput) -> bytes:
        empty = {"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}
        return _line({"model": model, "created_at": _now(), **empty, **_final(out, model, started)})

    def error(exc: AgentError) -> bytes:
        return _line({"error": exc.message})

    return push_response(
        stream, EventFormat(delta=delta, end=end, error=error), media_type=_NDJSON, headers={}
    )


async def _load(
    request: Request[Any, Any, Any], orchestrator: Orchestrator, ctx: CallContext, model: str
) -> str:
    """Load the model ``model`` names (or the default one) with a one-token generation; its name.

    What Ollama does for a chat without messages or a generation without a prompt; a loaded model
    answers in one decode step.
    """
    warm = GenerateInput(prompt="\n", max_tokens=1)
    return (await generate_all(request, orchestrator, ctx, [warm], model))[0].model


def _loaded(model: str, *, chat: bool) -> dict[str, Any]:
    """Ollama's answer to a load request (``done_reason: "load"``, empty message or response)."""
    empty = {"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}
    return {"model": model, "created_at": _now(), **empty, "done": True, "done_reason": "load"}


# ----------------------------------------------------------------- routes
@post("/chat", status_code=200, summary="Ollama-compatible chat (NDJSON stream by default)")
async def chat(
    data: JSONBody[OllamaChatRequest], request: Request[Any, Any, Any], state: State
) -> Response[Any]:
    """Answer ``messages`` like Ollama's ``/api/chat`` (with ``tools``: text or ``message.tool_calls``)."""
    orchestrator: Orchestrator = state.orchestrator
    ctx = call_context(orchestrator, request)
    if not data.messages:
        return Response(_loaded(await _load(request, orchestrator, ctx, data.model), chat=True))
    started = time.perf_counter()
    inp, plan = _chat(data)
    if not data.stream or plan is not None:
        out = (await generate_all(request, orchestrator, ctx, [inp], data.model))[0]
        head = {"model": out.model, "created_at": _now(), "message": _message(out, plan)}
        if not data.stream:
            return Response({**head, **_final(out, out.model, started)})
        tail = {"model": out.model, "created_at": _now(), "message": {"role": "assistant", "content": ""}}
        lines = _line({**head, "done": False}) + _line({**tail, **_final(out, out.model, started)})
        return Response(lines, media_type=_NDJSON)
    streams, model = await start_streams(request, orchestrator, ctx, [inp], data.model)
    return _ndjson(streams[0][1], model, started, chat=True)


@post("/generate", status_code=200, summary="Ollama-compatible completion (NDJSON stream by default)")
async def generate(
    data: JSONBody[OllamaGenerateRequest], request: Request[Any, Any, Any], state: State
) -> Response[Any]:
    """Complete ``prompt`` like Ollama's ``/api/generate``; an empty prompt only loads the model."""
    orchestrator: Orchestrator = state.orchestrator
    ctx = call_context(orchestrator, request)
    if not data.prompt:
        return Response(_loaded(await _load(request, orchestrator, ctx, data.model), chat=False))
    started = time.perf_counter()
    inp = _generate_input(data)
    if not data.stream:
        out = (await generate_all(request, orchestrator, ctx, [inp], data.model))[0]
        body = {
            "model": out.model,
            "created_at": _now(),
            "response": out.text,
            **_final(out, out.model, started),
        }
        body["context"] = []
        return Response(body)
    streams, model = await start_streams(request, orchestrator, ctx, [inp], data.model)
    return _ndjson(streams[0][1], model, started, chat=False)


async def _embed(
    request: Request[Any, Any, Any], state: State, texts: list[str], *, truncate: bool
) -> EmbedOutput:
    if not texts:
        raise BadInputError("must hold at least one string", field="input")
    if len(texts) > MAX_EMBED_TEXTS:
        raise BadInputError(f"holds {len(texts)} strings, over the limit of {MAX_EMBED_TEXTS}", field="input")
    return await call_embedder(request, state, texts, truncate=truncate)


@post("/embed", status_code=200, summary="Ollama-compatible embeddings (all-MiniLM-L6-v2, 384-d)")
async def embed(
    data: JSONBody[OllamaEmbedRequest], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    """Embed ``input`` (a string or strings); ``truncate: false`` refuses an input over 256 tokens."""
    started = time.perf_counter()
    texts = [data.input] if isinstance(data.input, str) else list(data.input)
    out = await _embed(request, state, texts, truncate=data.truncate)
    if data.dimensions is not None and data.dimensions != out.dim:
        raise BadInputError(f"{out.model} only makes {out.dim}-dimensional vectors", field="dimensions")
    return {
        "model": out.model,
        "embeddings": out.vectors,
        "total_duration": int((time.perf_counter() - started) * _NS),
        "load_duration": 0,
        "prompt_eval_count": sum(out.tokens),
    }


@post("/embeddings", status_code=200, summary="Ollama's legacy embedding route (one prompt)")
async def embeddings(
    data: JSONBody[OllamaEmbeddingsRequest], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    """``{"embedding": [...]}`` of ``prompt`` (superseded by ``/api/embed``)."""
    out = await _embed(request, state, [data.prompt], truncate=True)
    return {"embedding": out.vectors[0]}


# ----------------------------------------------------------------- errors
def _error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Any error as Ollama's ``{"error": "..."}`` with the API's status for it."""
    if isinstance(exc, AgentError):
        status = STATUS_BY_CODE.get(exc.code, 500)
        where = f"{exc.field}: " if exc.field and exc.field not in exc.message else ""
        return Response({"error": f"{where}{exc.message}"}, status_code=status)
    if isinstance(exc, ValidationException):
        key, message = first_validation_error(exc)
        return Response({"error": f"{key}: {message}" if key else message}, status_code=400)
    if isinstance(exc, HTTPException):
        return Response({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)
    internal_error_response(request, exc)  # logs it
    return Response({"error": "internal error"}, status_code=500)


ROUTES = (
    Router(
        path="/api",
        route_handlers=[chat, generate, embed, embeddings, *MODEL_ROUTES],
        exception_handlers={
            AgentError: _error,
            ValidationException: _error,
            HTTPException: _error,
            Exception: _error,
        },
        tags=["Ollama-compatible"],
    ),
    *ROOT_ROUTES,
)
"""The Ollama-compatible router."""

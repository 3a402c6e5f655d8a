"""OpenAI-compatible routes, for IDE plugins and scripts that speak the OpenAI HTTP API.

=========================  ====================================================================
``GET  /v1/models``         every configured Ryot model (with its status) and the embedding model
``POST /v1/chat/completions``  chat, JSON or SSE chunks (``data: {...}`` … ``data: [DONE]``)
``POST /v1/completions``    text completion, JSON or SSE chunks
``POST /v1/embeddings``     all-MiniLM-L6-v2 vectors (384-d, L2-normalised), float or base64
=========================  ====================================================================

Everything goes through the orchestrator over NATS: generations to the Inference team's ``generator``,
embeddings to the Storage team's ``embedder``. Shapes follow OpenAI's API reference; ``response_format``
(``json_object`` or ``json_schema``) becomes grammar-constrained decoding. Refusals (400/429/503/504) are
real HTTP statuses, also for streams (the first event is awaited before the response starts); errors
have OpenAI's shape (:mod:`api.openai._errors`).

Model choice: a request's ``model`` that names a configured model selects it. Any other name (the
literal ``default`` or ``local``, or whatever an IDE plugin was set up with, e.g. ``gpt-4o``) gets the
default model, so that clients with a fixed model name keep working: the generator answers
``not_found`` on ``model``, the call is repeated without a model, and the name is remembered for a minute
(logged once) so that later requests skip the refused call. Responses name the model that served them.
(``POST /v1/generate`` and agent calls are strict: an unknown name is a 404.)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import numpy as np
import structlog
from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from agents.errors import AgentError, BadInputError, NotFoundError, StreamBrokenError
from agents.protocol import ChatMessageIn, GenerateInput, GenerateOutput
from agents.storage.wire import MAX_EMBED_TEXTS, EmbedInput, EmbedOutput
from api._request import call_context, request_id_of
from api.openai._errors import OPENAI_EXCEPTION_HANDLERS, agent_error_body
from api.openai.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    JsonObjectFormat,
    JsonSchemaFormat,
    ModelList,
    ModelObject,
)
from orchestrator import ModelInfo, Orchestrator, TextDelta

__all__ = ("ROUTES",)

Kind = Literal["chat", "text"]
OWNER = "neurectomy"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
FALLBACK_TTL_S = 60.0
"""How long a model name found unconfigured goes straight to the default model, in seconds."""
_QUIET_NAMES = frozenset({"default", "local"})
"""Names that mean "the default model" by convention: falling back for them is not logged."""
_MAX_FALLBACK_NAMES = 1024

log = structlog.get_logger("neurectomy.api")


# ----------------------------------------------------------------- request → GenerateInput
def _sampling(body: ChatCompletionRequest | CompletionRequest) -> dict[str, Any]:
    """Sampling fields of ``body`` for :class:`GenerateInput` (absent ones keep the agent's defaults).

    Raises:
        BadInputError: A field asks for something not served (``n`` ≠ 1, penalties, logprobs, ...).
    """
    if body.n != 1:
        raise BadInputError("only n=1 is supported", field="n")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(body, name) != 0:
            raise BadInputError("only 0 is supported (use repeat_penalty)", field=name)
    if body.logprobs:
        raise BadInputError("log probabilities are not supported", field="logprobs")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > 8:
        raise BadInputError(f"holds {len(stop)} sequences, over the limit of 8", field="stop")
    if any(not s for s in stop):
        raise BadInputError("stop sequences must not be empty", field="stop")
    fields: dict[str, Any] = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "top_k": body.top_k,
        "min_p": body.min_p,
        "repeat_penalty": body.repeat_penalty,
        "seed": body.seed,
        "stop": stop,
    }
    fmt = body.response_format
    if isinstance(fmt, JsonSchemaFormat):
        fields["json_schema"] = fmt.json_schema.schema_
    elif isinstance(fmt, JsonObjectFormat):
        fields["json_schema"] = {"type": "object"}
    return {k: v for k, v in fields.items() if v is not None}


def _chat_input(body: ChatCompletionRequest) -> GenerateInput:
    if body.top_logprobs is not None:
        raise BadInputError("log probabilities are not supported", field="top_logprobs")
    messages = [
        ChatMessageIn(role="system" if m.role == "developer" else m.role, content=m.text())
        for m in body.messages
    ]
    fields = _sampling(body)
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    return GenerateInput(messages=messages, **fields)


def _completion_input(body: CompletionRequest) -> GenerateInput:
    if body.echo:
        raise BadInputError("echo is not supported", field="echo")
    if body.suffix is not None:
        raise BadInputError("suffix (fill-in-the-middle) is not supported", field="suffix")
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) != 1:
        raise BadInputError("only one prompt per request is supported", field="prompt")
    return GenerateInput(prompt=prompts[0], max_tokens=body.max_tokens, **_sampling(body))


# ----------------------------------------------------------------- GenerateOutput → OpenAI JSON
def _usage(out: GenerateOutput) -> dict[str, Any]:
    u = out.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def _finish_reason(out: GenerateOutput) -> str:
    return "length" if out.finish_reason == "length" else "stop"


def _completion_body(kind: Kind, cid: str, created: int, out: GenerateOutput) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": _finish_reason(out)}
    if kind == "chat":
        choice["message"] = {"role": "assistant", "content": out.text, "refusal": None}
    else:
        choice["text"] = out.text
    return {
        "id": cid,
        "object": "chat.completion" if kind == "chat" else "text_completion",
        "created": created,
        "model": out.model,
        "system_fingerprint": None,
        "choices": [choice],
        "usage": _usage(out),
    }


class _Chunks:
    """Builds the SSE chunks of one streamed completion.

    OpenAI's ``chat.completion.chunk`` objects for chat, ``text_completion`` objects for completions.
    """

    def __init__(self, kind: Kind, cid: str, created: int, model: str, *, include_usage: bool) -> None:
        self.kind = kind
        self.cid = cid
        self.created = created
        self.model = model
        self.include_usage = include_usage

    def chunk(self, text: str | None, finish_reason: str | None = None, *, role: bool = False) -> bytes:
        """One chunk carrying ``text`` (or the assistant role, or only a finish reason)."""
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish_reason}
        if self.kind == "chat":
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if text is not None:
                delta["content"] = text
            choice["delta"] = delta
        else:
            choice["text"] = text or ""
        return self._data([choice], None)

    def usage(self, out: GenerateOutput) -> bytes:
        """The extra chunk of ``stream_options.include_usage``: empty ``choices``, the usage."""
        return self._data([], _usage(out))

    def _data(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
        obj: dict[str, Any] = {
            "id": self.cid,
            "object": "chat.completion.chunk" if self.kind == "chat" else "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            obj["usage"] = usage
        return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


async def _sse(
    chunks: _Chunks, first: TextDelta | GenerateOutput, rest: AsyncIterator[TextDelta | GenerateOutput]
) -> AsyncIterator[bytes]:
    """The SSE body: the role chunk (chat), text chunks, the finish chunk, the usage chunk, ``[DONE]``.

    An error after the response started is sent as ``data: {"error": {...}}`` (no ``[DONE]``).
    """
    try:
        if chunks.kind == "chat":
            yield chunks.chunk(None, role=True)
        event: TextDelta | GenerateOutput | None = first
        while event is not None:
            if isinstance(event, TextDelta):
                if event.text:
                    yield chunks.chunk(event.text)
            else:
                yield chunks.chunk(None if chunks.kind == "chat" else "", _finish_reason(event))
                if chunks.include_usage:
                    yield chunks.usage(event)
                yield b"data: [DONE]\n\n"
                return
            event = await anext(rest, None)
        raise StreamBrokenError("generator stream ended without an output")
    except AgentError as exc:
        yield b"data: " + json.dumps(agent_error_body(exc)).encode() + b"\n\n"
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


def _fallbacks(request: Request[Any, Any, Any]) -> dict[str, float]:
    """Model names found unconfigured → when (``time.monotonic()``), for this app."""
    found: dict[str, float] | None = getattr(request.app.state, "openai_model_fallbacks", None)
    if found is None:
        found = {}
        request.app.state.openai_model_fallbacks = found
    return found


def _asked_model(request: Request[Any, Any, Any], name: str) -> str | None:
    """The ``model`` to send to the generator: ``name``, or None (default) if it was just refused."""
    refused_at = _fallbacks(request).get(name)
    if refused_at is not None and time.monotonic() - refused_at < FALLBACK_TTL_S:
        return None
    return name


def _fall_back(request: Request[Any, Any, Any], exc: NotFoundError, asked: str | None) -> bool:
    """Whether ``exc`` refused the model name ``asked`` (then remember it, logging the first time)."""
    if asked is None or exc.field != "model":
        return False
    fallbacks = _fallbacks(request)
    if asked not in fallbacks:
        if len(fallbacks) >= _MAX_FALLBACK_NAMES:
            fallbacks.clear()
        if asked not in _QUIET_NAMES:
            log.info("model not configured; the default model answers", model=asked)
    fallbacks[asked] = time.monotonic()
    return True


async def _served_model(request: Request[Any, Any, Any], orchestrator: Orchestrator) -> str:
    """The default model's name (asked on the bus once, then refreshed from outputs of the default)."""
    cached = getattr(request.app.state, "openai_model", None)
    if cached:
        return str(cached)
    for agent in await orchestrator.agents():
        if agent.name == "generator" and agent.metadata.get("model"):
            request.app.state.openai_model = agent.metadata["model"]
            return agent.metadata["model"]
    return "unknown"


async def _complete(
    kind: Kind,
    inp: GenerateInput,
    body: ChatCompletionRequest | CompletionRequest,
    request: Request[Any, Any, Any],
    state: State,
) -> Response[Any]:
    orchestrator: Orchestrator = state.orchestrator
    request_id = request_id_of(request)
    cid = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{request_id}"
    created = int(time.time())
    ctx = call_context(orchestrator, request)
    asked = _asked_model(request, body.model)
    inp = inp.model_copy(update={"model": asked})
    if not body.stream:
        try:
            out = await orchestrator.generate(inp, ctx)
        except NotFoundError as exc:
            if not _fall_back(request, exc, asked):
                raise
            inp = inp.model_copy(update={"model": None})
            out = await orchestrator.generate(inp, ctx)
        if inp.model is None:
            request.app.state.openai_model = out.model
        return Response(_completion_body(kind, cid, created, out))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    events = orchestrator.generate_stream(inp, ctx)
    # Wait for the first event so that refusals (400/429/503/504) are real HTTP statuses.
    try:
        first = await events.__anext__()
    except NotFoundError as exc:
        if not _fall_back(request, exc, asked):
            raise
        inp = inp.model_copy(update={"model": None})
        events = orchestrator.generate_stream(inp, ctx)
        first = await events.__anext__()
    model = inp.model if inp.model is not None else await _served_model(request, orchestrator)
    chunks = _Chunks(kind, cid, created, model, include_usage=include_usage)
    return Stream(_sse(chunks, first, events), media_type="text/event-stream", headers=_SSE_HEADERS)


# ----------------------------------------------------------------- routes
@post("/chat/completions", status_code=200, summary="OpenAI-compatible chat completion (JSON or SSE)")
async def chat_completions(
    data: JSONBody[ChatCompletionRequest], request: Request[Any, Any, Any], state: State
) -> Response[Any]:
    """A chat completion by the ``generator`` agent, shaped like OpenAI's.

    ``model``: a configured model's name selects it; any other name gets the default model.

    Errors (OpenAI's shape): 400 invalid or unsupported field (``param`` names it), 429 busy
    (Retry-After), 503 no generator running, 504 deadline passed.
    """
    return await _complete("chat", _chat_input(data), data, request, state)


@post("/completions", status_code=200, summary="OpenAI-compatible text completion (JSON or SSE)")
async def completions(
    data: JSONBody[CompletionRequest], request: Request[Any, Any, Any], state: State
) -> Response[Any]:
    """A text completion of ``prompt`` by the ``generator`` agent, shaped like OpenAI's legacy API.

    Errors as for ``/v1/chat/completions``.
    """
    return await _complete("text", _completion_input(data), data, request, state)


@post("/embeddings", status_code=200, summary="OpenAI-compatible embeddings (all-MiniLM-L6-v2, 384-d)")
async def embeddings(
    data: JSONBody[EmbeddingRequest], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    """Embed ``input`` with the Storage team's ``embedder`` agent (nothing is stored).

    ``usage.prompt_tokens`` counts the embedding model's own tokens (after truncation to 256).
    Errors: 400 invalid field (empty string, over 256 inputs, ``dimensions`` ≠ 384), 429, 503, 504.
    """
    orchestrator: Orchestrator = state.orchestrator
    texts = [data.input] if isinstance(data.input, str) else data.input
    if not texts:
        raise BadInputError("must hold at least one string", field="input")
    if len(texts) > MAX_EMBED_TEXTS:
        raise BadInputError(f"holds {len(texts)} strings, over the limit of {MAX_EMBED_TEXTS}", field="input")
    payload = EmbedInput(texts=texts).model_dump()
    try:
        ctx = call_context(orchestrator, request)
        raw = await orchestrator.call("storage", "embedder", payload, ctx, idempotent=True)
    except BadInputError as exc:  # the agent names texts.<i>; the client sent input.<i>
        field = exc.field.replace("texts", "input", 1) if exc.field else "input"
        raise BadInputError(exc.message, field=field) from None
    out = EmbedOutput.model_validate(raw)
    if data.dimensions is not None and data.dimensions != out.dim:
        raise BadInputError(f"{out.model} only makes {out.dim}-dimensional vectors", field="dimensions")
    items: list[dict[str, Any]] = []
    for i, vector in enumerate(out.vectors):
        encoded: list[float] | str = vector
        if data.encoding_format == "base64":
            encoded = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        items.append({"object": "embedding", "index": i, "embedding": encoded})
    tokens = sum(out.tokens)
    return {
        "object": "list",
        "data": items,
        "model": out.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _model_entry(info: ModelInfo) -> ModelObject:
    """OpenAI's model object, plus our fields (OpenAI clients keep or ignore unknown fields)."""
    return ModelObject(
        id=info.id,
        owned_by=OWNER,
        kind="embedding" if info.kind == "embedding" else "generation",
        status=info.status,
        loaded=info.status == "loaded",
        default=info.default,
        n_ctx=info.n_ctx,
        parallel=info.parallel,
        memory_bytes=info.memory_bytes,
        active=info.active,
        queue_depth=info.queue_depth,
        loaded_at=info.loaded_at,
        last_used_at=info.last_used_at,
        idle_unload_s=info.idle_unload_s,
        replicas=info.replicas,
        loaded_replicas=info.loaded_replicas,
        error=info.error,
    )


async def _models(state: State) -> list[ModelObject]:
    orchestrator: Orchestrator = state.orchestrator
    return [_model_entry(m) for m in await orchestrator.models()]


@get("/models", summary="OpenAI-compatible list of the served models, with their status")
async def list_models(state: State) -> ModelList:
    """Every configured Ryot model and the embedding model, as the running agents report them.

    Besides OpenAI's fields (``id``, ``object``, ``created``, ``owned_by``), each entry has: ``kind``
    (``generation`` or ``embedding``), ``status`` (``loaded``, ``loading``, ``unloaded``: loads on the
    first request that names it, ``failed``: its last load failed, see ``error``), ``loaded``,
    ``default`` (requests naming no configured model get it), ``n_ctx`` and ``parallel``,
    ``memory_bytes`` (approximate: GGUF size + KV cache of the sequences + prefix cache in use, 0 when
    unloaded), ``active`` and ``queue_depth`` (requests decoding and waiting), ``loaded_at`` /
    ``last_used_at`` (Unix seconds), ``idle_unload_s``, ``replicas`` / ``loaded_replicas``.
    """
    return ModelList(data=await _models(state))


@get("/models/{model_id:str}", summary="One served model")
async def retrieve_model(model_id: FromPath[str], state: State) -> ModelObject:
    """One entry of ``GET /v1/models``; 404 when no running agent serves ``model_id``."""
    for entry in await _models(state):
        if entry.id == model_id:
            return entry
    raise NotFoundError(f"no running agent serves the model {model_id!r}", field="model")


ROUTES = (
    Router(
        path="/v1",
        route_handlers=[list_models, retrieve_model, chat_completions, completions, embeddings],
        exception_handlers=OPENAI_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        tags=["OpenAI-compatible"],
    ),
)
"""The OpenAI-compatible router (register with ``*_openai.ROUTES``)."""

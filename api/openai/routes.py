"""OpenAI-compatible routes, for IDE plugins and scripts that speak the OpenAI HTTP API.

=========================  ====================================================================
``GET  /v1/models``         every configured Ryot model (with its status) and the embedding model
``POST /v1/chat/completions``  chat, JSON or SSE chunks (``data: {...}`` … ``data: [DONE]``)
``POST /v1/completions``    text completion, JSON or SSE chunks
``POST /v1/embeddings``     all-MiniLM-L6-v2 vectors (384-d, L2-normalised), float or base64
``POST /v1/responses``      the Responses API, as a chat completion (:mod:`api.openai.responses`)
=========================  ====================================================================

``GET /models``, ``GET /models/{id}`` and ``POST /chat/completions`` are served without ``/v1`` too, as
llama-server serves them (same handlers: the same credentials, scopes, tenant and limits apply), for
clients configured with a llama-server base URL that has no ``/v1``. llama-server's ``/completions``
without ``/v1`` is its native completion (served by :mod:`api.llamacpp.completion`), and its
``/embeddings`` its native embeddings (:mod:`api.llamacpp.embeddings`).

Everything goes through the orchestrator over NATS: generations to the Inference team's ``generator``,
embeddings to the Storage team's ``embedder``. Shapes follow OpenAI's API reference; ``response_format``
(``json_object`` or ``json_schema``) becomes grammar-constrained decoding, and so do tool calls
(:mod:`api.openai.tools`). ``n`` choices (and the prompts of a multi-prompt completion) are generated
side by side, each its own sequence in the engine's batch; ``logprobs`` come from the model's raw
logits; ``logit_bias``, ``presence_penalty`` and ``frequency_penalty`` act in the sampler chain.
Refusals (400/429/503/504) are
real HTTP statuses, also for streams (the first event is awaited before the response starts); errors
have OpenAI's shape (:mod:`api.openai._errors`).

Model choice: see :mod:`api.openai._generation` (any unknown name gets the default model).
(``POST /v1/generate`` and agent calls are strict: an unknown name is a 404.)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from agents.errors import (
    AgentError,
    BadInputError,
    ContextLengthExceededError,
    NotFoundError,
    StreamBrokenError,
)
from agents.protocol import GenerateInput, GenerateOutput
from agents.storage.wire import MAX_EMBED_TEXTS
from api._embedder import call_embedder, input_index
from api._push import EventFormat
from api._request import call_context, request_id_of
from api._sse import sse_event, sse_push_response, sse_response
from api.openai._chat import chat_input, sampling
from api.openai._errors import OPENAI_EXCEPTION_HANDLERS, agent_error_body
from api.openai._generation import Event, generate_all, merged, start_streams
from api.openai._shape import (
    ChatChoiceStream,
    Chunks,
    Kind,
    TextChoiceStream,
    chat_choice,
    completion_body,
    text_choice,
    usage,
)
from api.openai.responses.routes import ROUTES as RESPONSES_ROUTES
from api.openai.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelList,
    ModelObject,
)
from orchestrator import GenerationStream, ModelInfo, Orchestrator, TextDelta

__all__ = ("ROUTES",)

OWNER = "neurectomy"


# ----------------------------------------------------------------- request → GenerateInput
def _prompts(body: CompletionRequest) -> list[str | list[int]]:
    prompt = body.prompt
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(t, int) for t in prompt):
        return [list(prompt)]  # type: ignore[arg-type]
    prompts: list[str | list[int]] = list(prompt)  # type: ignore[arg-type]
    if not prompts:
        raise BadInputError("must hold at least one prompt", field="prompt")
    return prompts


def _completion_inputs(body: CompletionRequest) -> list[tuple[GenerateInput, str | None]]:
    """One :class:`GenerateInput` per prompt, with the text to echo before its completions."""
    if body.suffix is not None:
        raise BadInputError("suffix (fill-in-the-middle) is not supported", field="suffix")
    if body.best_of is not None and body.best_of != (body.n or 1):
        raise BadInputError("only best_of equal to n is supported", field="best_of")
    fields = sampling(body)
    if body.logprobs is not None:
        fields["logprobs"] = body.logprobs
    fields["max_tokens"] = body.max_tokens or 16
    out: list[tuple[GenerateInput, str | None]] = []
    for i, prompt in enumerate(_prompts(body)):
        if isinstance(prompt, str):
            out.append((GenerateInput(prompt=prompt, **fields), prompt if body.echo else None))
        else:
            if body.echo:
                raise BadInputError("echo needs text prompts", field="echo")
            if not prompt:
                raise BadInputError("must hold at least one token id", field=f"prompt[{i}]")
            out.append((GenerateInput(prompt_tokens=prompt, **fields), None))
    return out


def _choices(inputs: list[GenerateInput], n: int) -> list[GenerateInput]:
    """``n`` inputs per prompt (choice ``j`` of a prompt samples with ``seed + j``)."""
    out: list[GenerateInput] = []
    for inp in inputs:
        for j in range(n):
            seed = None if inp.seed is None else (inp.seed + j) % 2**32
            out.append(inp.model_copy(update={"seed": seed}) if j else inp)
    return out


def _include_usage(body: ChatCompletionRequest | CompletionRequest) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


def _error_event(exc: AgentError) -> bytes:
    """An error after the response started: ``data: {"error": {...}}`` (no ``[DONE]`` follows)."""
    return sse_event(json.dumps(agent_error_body(exc)))


def _stream_response(
    chunks: Chunks,
    choices: list[ChatChoiceStream] | list[TextChoiceStream],
    streams: list[tuple[Event, GenerationStream]],
    prompt_choices: list[int],
) -> Response[Any]:
    """The SSE response: one choice's events written as they arrive (`api._push`), several merged."""
    if len(streams) != 1:
        return sse_response(_sse(chunks, choices, streams, prompt_choices))
    choice = choices[0]

    def delta(event: TextDelta) -> bytes:
        return b"".join(choice.delta(event.text, list(event.logprobs)))

    def end(out: GenerateOutput) -> bytes:
        parts = choice.finish(out)
        if chunks.include_usage:
            parts.append(chunks.usage(usage([out], prompt_choices)))
        return b"".join((*parts, _DONE))

    head = choice.start() or b""
    return sse_push_response(streams[0][1], EventFormat(delta=delta, end=end, error=_error_event, head=head))


_DONE = sse_event("[DONE]")


async def _sse(
    chunks: Chunks,
    choices: list[ChatChoiceStream] | list[TextChoiceStream],
    streams: list[tuple[Event, GenerationStream]],
    prompt_choices: list[int],
) -> AsyncIterator[bytes]:
    """The SSE body: per choice its first chunk, deltas and finish; the usage chunk; ``[DONE]``.

    An error after the response started is sent as ``data: {"error": {...}}`` (no ``[DONE]``).
    """
    outputs: dict[int, GenerateOutput] = {}
    try:
        for choice in choices:
            started = choice.start()
            if started:
                yield started
        async for i, event in merged(streams):
            if isinstance(event, TextDelta):
                for data in choices[i].delta(event.text, list(event.logprobs)):
                    yield data
            else:
                outputs[i] = event
                for data in choices[i].finish(event):
                    yield data
        if len(outputs) != len(choices):
            raise StreamBrokenError("generator stream ended without an output")
        if chunks.include_usage:
            ordered = [outputs[i] for i in range(len(choices))]
            yield chunks.usage(usage(ordered, prompt_choices))
        yield _DONE
    except AgentError as exc:
        yield _error_event(exc)
    finally:
        for _, rest in streams:
            await rest.aclose()


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
    inp, plan = chat_input(data)
    inputs = _choices([inp], data.n or 1)
    kind: Kind = "chat"
    orchestrator: Orchestrator = state.orchestrator
    ctx = call_context(orchestrator, request)
    cid, created = f"chatcmpl-{request_id_of(request)}", int(time.time())
    try:
        if not data.stream:
            outputs = await generate_all(request, orchestrator, ctx, inputs, data.model)
            choices = [chat_choice(i, out, plan, bool(data.logprobs)) for i, out in enumerate(outputs)]
            body = completion_body(kind, cid, created, choices, outputs[0].model, usage(outputs, [0]))
            return Response(body)
        streams, model = await start_streams(request, orchestrator, ctx, inputs, data.model)
    except ContextLengthExceededError as exc:  # OpenAI names the messages, not max_tokens
        raise ContextLengthExceededError(exc.message, field="messages") from None
    chunks = Chunks(kind, cid, created, model, include_usage=_include_usage(data))
    per_choice = [ChatChoiceStream(chunks, i, plan, logprobs=bool(data.logprobs)) for i in range(len(inputs))]
    return _stream_response(chunks, per_choice, streams, [0])


@post("/completions", status_code=200, summary="OpenAI-compatible text completion (JSON or SSE)")
async def completions(
    data: JSONBody[CompletionRequest], request: Request[Any, Any, Any], state: State
) -> Response[Any]:
    """A text completion of ``prompt`` by the ``generator`` agent, shaped like OpenAI's legacy API.

    Errors as for ``/v1/chat/completions``.
    """
    per_prompt = _completion_inputs(data)
    n = data.n or 1
    inputs = _choices([inp for inp, _ in per_prompt], n)
    echoes = [echo for _, echo in per_prompt for _ in range(n)]
    firsts = list(range(0, len(inputs), n))
    orchestrator: Orchestrator = state.orchestrator
    ctx = call_context(orchestrator, request)
    cid, created = f"cmpl-{request_id_of(request)}", int(time.time())
    logprobs = data.logprobs is not None
    try:
        if not data.stream:
            outputs = await generate_all(request, orchestrator, ctx, inputs, data.model)
            choices = [text_choice(i, out, echoes[i], logprobs) for i, out in enumerate(outputs)]
            body = completion_body("text", cid, created, choices, outputs[0].model, usage(outputs, firsts))
            return Response(body)
        streams, model = await start_streams(request, orchestrator, ctx, inputs, data.model)
    except ContextLengthExceededError as exc:
        raise ContextLengthExceededError(exc.message, field="prompt") from None
    chunks = Chunks("text", cid, created, model, include_usage=_include_usage(data))
    per_choice = [TextChoiceStream(chunks, i, echoes[i], logprobs=logprobs) for i in range(len(inputs))]
    return _stream_response(chunks, per_choice, streams, firsts)


def _input_param(field: str | None, *, single: bool) -> str:
    """OpenAI's ``param`` for the embedder's ``texts.<i>`` / ``token_ids.<i>``: ``input`` or ``input[i]``."""
    index = None if single else input_index(field)
    return "input" if index is None else f"input[{index}]"


@post("/embeddings", status_code=200, summary="OpenAI-compatible embeddings (all-MiniLM-L6-v2, 384-d)")
async def embeddings(
    data: JSONBody[EmbeddingRequest], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    """Embed ``input`` with the Storage team's ``embedder`` agent (nothing is stored).

    ``input``: text(s), or token ids of the embedding model's own WordPiece vocabulary. An input over
    the model's 256-token window is refused (400 ``context_length_exceeded``, ``param`` ``input[i]``)
    rather than silently truncated. ``usage.prompt_tokens`` counts the embedding model's tokens.
    Errors: 400 invalid field (empty string, over 256 inputs, ``dimensions`` ≠ 384), 429, 503, 504.
    """
    raw_input = data.input
    token_ids: list[list[int]] | None = None
    texts: list[str] = []
    if isinstance(raw_input, str):
        texts = [raw_input]
    elif raw_input and all(isinstance(t, int) for t in raw_input):
        token_ids = [list(raw_input)]  # type: ignore[arg-type]
    elif raw_input and all(isinstance(t, list) for t in raw_input):
        token_ids = [[int(x) for x in t] for t in raw_input if isinstance(t, list)]
    else:
        texts = list(raw_input)  # type: ignore[arg-type]
    count = len(token_ids) if token_ids is not None else len(texts)
    if not count:
        raise BadInputError("must hold at least one input", field="input")
    if count > MAX_EMBED_TEXTS:
        raise BadInputError(f"holds {count} inputs, over the limit of {MAX_EMBED_TEXTS}", field="input")
    try:
        out = await call_embedder(request, state, texts, truncate=False, token_ids=token_ids)
    except BadInputError as exc:  # the agent names texts.<i> / token_ids.<i>; the client sent input[<i>]
        single = isinstance(raw_input, str) or isinstance(raw_input[0], int)
        field = _input_param(exc.field, single=single)
        raise type(exc)(exc.message, field=field) from None
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
        created=int(info.file_mtime or 0),
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
        architecture=info.architecture,
        parameter_count=info.parameter_count,
        quantization=info.quantization,
        context_length_trained=info.context_length_trained,
        embedding_length=info.embedding_length,
        file_size=info.file_size,
    )


async def _models(state: State) -> list[ModelObject]:
    orchestrator: Orchestrator = state.orchestrator
    return [_model_entry(m) for m in await orchestrator.models()]


@get("/models", summary="OpenAI-compatible list of the served models, with their status")
async def list_models(state: State) -> ModelList:
    """Every configured Ryot model and the embedding model, as the running agents report them.

    Besides OpenAI's fields (``id``, ``object``, ``created``: the model file's modification time in Unix
    seconds, ``owned_by``), each entry has: ``kind``
    (``generation`` or ``embedding``), ``status`` (``loaded``, ``loading``, ``unloaded``: loads on the
    first request that names it, ``failed``: its last load failed, see ``error``), ``loaded``,
    ``default`` (requests naming no configured model get it), ``n_ctx`` and ``parallel``,
    ``memory_bytes`` (approximate: GGUF size + KV cache of the sequences + prefix cache in use, 0 when
    unloaded), ``active`` and ``queue_depth`` (requests decoding and waiting), ``loaded_at`` /
    ``last_used_at`` (Unix seconds), ``idle_unload_s``, ``replicas`` / ``loaded_replicas``, and what the
    model's file says: ``architecture``, ``parameter_count``, ``quantization``,
    ``context_length_trained``, ``embedding_length``, ``file_size`` (bytes).
    """
    return ModelList(data=await _models(state))


@get("/models/{model_id:str}", summary="One served model")
async def retrieve_model(model_id: FromPath[str], state: State) -> ModelObject:
    """One entry of ``GET /v1/models``; 404 when no running agent serves ``model_id``."""
    for entry in await _models(state):
        if entry.id == model_id:
            return entry
    raise NotFoundError(f"no running agent serves the model {model_id!r}", field="model")


ROOT_HANDLERS = (list_models, retrieve_model, chat_completions)
"""The handlers llama-server also serves without ``/v1`` with the same (OpenAI) answer: ``/models`` and
``/chat/completions`` (llama.cpp ``tools/server/server.cpp``); its ``/completions`` and ``/embeddings``
without ``/v1`` are its native routes, not OpenAI's (:mod:`api.llamacpp`)."""

ROUTES = (
    Router(
        path="/v1",
        route_handlers=[*ROOT_HANDLERS, completions, embeddings],
        exception_handlers=OPENAI_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        tags=["OpenAI-compatible"],
    ),
    Router(
        path="/",
        route_handlers=list(ROOT_HANDLERS),
        exception_handlers=OPENAI_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        include_in_schema=False,  # the same operations as under /v1, listed there once
    ),
    *RESPONSES_ROUTES,
)
"""The OpenAI-compatible router (register with ``*_openai.ROUTES``)."""

"""Running a request's generations: model fallback, several choices side by side, merged streams.

Shared by the OpenAI-compatible and the Ollama-compatible routes.

Model choice: a request's ``model`` that names a configured model selects it. Any other name (the
literal ``default`` or ``local``, or whatever a client was set up with, e.g. ``gpt-4o`` or
``llama3.2``) gets the default model, so that clients with a fixed model name keep working: the
generator answers ``not_found`` on ``model``, the call is repeated without a model, and the name is
remembered for a minute (logged once) so that later requests skip the refused call. Responses name the
model that served them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import structlog
from anyio.streams.memory import MemoryObjectSendStream
from litestar import Request
from pydantic import ValidationError

from agents.errors import AgentError, BadInputError, NotFoundError
from agents.protocol import GenerateInput, GenerateOutput
from orchestrator import CallContext, GenerationStream, Orchestrator, TextDelta

__all__ = ("Event", "generate_all", "generate_input", "merged", "start_streams")

FALLBACK_TTL_S = 60.0
"""How long a model name found unconfigured goes straight to the default model, in seconds."""
_QUIET_NAMES = frozenset({"default", "local"})
"""Names that mean "the default model" by convention: falling back for them is not logged."""
_MAX_FALLBACK_NAMES = 1024

log = structlog.get_logger("neurectomy.api")

Event = TextDelta | GenerateOutput


def generate_input(names: Mapping[str, str], /, **fields: Any) -> GenerateInput:
    """The generator's input of ``fields``, a value out of the service's ranges named as the client sent it.

    Args:
        names: Our field → the client's name for it (Ollama's ``{"max_tokens": "options.num_predict"}``).
        fields: :class:`GenerateInput` fields.

    Raises:
        BadInputError: A value out of range (``max_tokens`` over 32768, more than 8 ``stop`` strings, ...),
            with ``field`` the client's name.
    """
    try:
        return GenerateInput(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        ours = str(first["loc"][0]) if first["loc"] else ""
        raise BadInputError(str(first["msg"]), field=names.get(ours, ours) or None) from None


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


def _with_model(inputs: list[GenerateInput], model: str | None) -> list[GenerateInput]:
    return [inp.model_copy(update={"model": model}) for inp in inputs]


async def _outputs(
    orchestrator: Orchestrator, ctx: CallContext, inputs: list[GenerateInput]
) -> list[GenerateOutput]:
    """Every input's output, the generations running side by side (the engine batches them)."""
    outputs: list[GenerateOutput | None] = [None] * len(inputs)

    async def one(i: int) -> None:
        outputs[i] = await orchestrator.generate(inputs[i], ctx)

    if len(inputs) == 1:
        await one(0)
    else:
        try:
            async with anyio.create_task_group() as tg:
                for i in range(len(inputs)):
                    tg.start_soon(one, i)
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
    return [o for o in outputs if o is not None]


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf of an exception group (the error the caller would have seen alone)."""
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


async def generate_all(
    request: Request[Any, Any, Any],
    orchestrator: Orchestrator,
    ctx: CallContext,
    inputs: list[GenerateInput],
    model: str,
) -> list[GenerateOutput]:
    """The outputs of ``inputs`` with the model named ``model`` (or the default one, see above).

    Raises:
        AgentError: The first failure among the generations (the others are cancelled).
    """
    asked = _asked_model(request, model)
    try:
        outputs = await _outputs(orchestrator, ctx, _with_model(inputs, asked))
    except NotFoundError as exc:
        if not _fall_back(request, exc, asked):
            raise
        asked = None
        outputs = await _outputs(orchestrator, ctx, _with_model(inputs, None))
    if asked is None and outputs:
        request.app.state.openai_model = outputs[0].model
    return outputs


async def _first(
    orchestrator: Orchestrator, ctx: CallContext, inp: GenerateInput
) -> tuple[Event, GenerationStream]:
    stream = await orchestrator.open_generation(inp, ctx)
    return stream.first, stream


async def start_streams(
    request: Request[Any, Any, Any],
    orchestrator: Orchestrator,
    ctx: CallContext,
    inputs: list[GenerateInput],
    model: str,
) -> tuple[list[tuple[Event, GenerationStream]], str]:
    """Start one stream per input and wait for each one's first event; the streams and the model's name.

    Waiting for the first event makes a refusal a real HTTP status. Each stream's first event is also
    its ``first``; the caller closes the streams (``aclose``).

    Raises:
        AgentError: A refusal (the streams started so far are closed).
    """
    asked = _asked_model(request, model)
    streams: list[tuple[Event, GenerationStream]] = []
    try:
        for i, inp in enumerate(inputs):
            try:
                streams.append(await _first(orchestrator, ctx, inp.model_copy(update={"model": asked})))
            except NotFoundError as exc:
                if i or not _fall_back(request, exc, asked):
                    raise
                asked = None
                streams.append(await _first(orchestrator, ctx, inp.model_copy(update={"model": None})))
        # Still inside: a stream is closed by its response, so the streams are this function's until then.
        served = asked if asked is not None else await _served_model(request, orchestrator)
    except BaseException:
        for _, rest in streams:
            await rest.aclose()
        raise
    return streams, served


async def merged(streams: list[tuple[Event, GenerationStream]]) -> AsyncIterator[tuple[int, Event]]:
    """The events of several streams as they come, tagged with their stream's index.

    Raises:
        AgentError: The first failure of any stream (the others stop).
    """
    if len(streams) == 1:
        first, rest = streams[0]
        yield 0, first
        async for event in rest:
            yield 0, event
        return
    send, receive = anyio.create_memory_object_stream[tuple[int, Event | AgentError]](max_buffer_size=64)

    async def pump(
        i: int,
        first: Event,
        rest: AsyncIterator[Event],
        out: MemoryObjectSendStream[tuple[int, Event | AgentError]],
    ) -> None:
        async with out:
            try:
                await out.send((i, first))
                async for event in rest:
                    await out.send((i, event))
            except AgentError as exc:
                await out.send((i, exc))

    async with anyio.create_task_group() as tg, receive:
        with send:
            for i, (first, rest) in enumerate(streams):
                # cloned here: the tasks start after ``with send`` closed the original
                tg.start_soon(pump, i, first, rest, send.clone())
        async for i, item in receive:
            if isinstance(item, AgentError):
                tg.cancel_scope.cancel()
                error = item
                break
            yield i, item
        else:
            return
    raise error

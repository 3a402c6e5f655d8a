"""The Inference team's ``generator`` agent: text generation with Ryot, streamed token by token."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import aclosing
from typing import Any, ClassVar

from agents.actor import Agent, Call
from agents.errors import AgentBusyError, AgentError, AgentFailedError, BadInputError, DeadlineExceededError
from agents.protocol import GenerateInput, GenerateOutput, TimingsOut, UsageOut
from bridges import BridgeTimeoutError, RyotBridge
from ryot import (
    ChatMessage,
    EngineBusyError,
    EngineClosedError,
    Finished,
    InvalidRequestError,
    PromptTooLongError,
    RyotError,
    SamplingParams,
    grammar_from_json_schema,
)


def engine_error(exc: Exception) -> AgentError:
    """The wire error for a Ryot or bridge exception (the one place this mapping lives)."""
    if isinstance(exc, InvalidRequestError):
        return BadInputError(exc.reason, field=exc.field)
    if isinstance(exc, PromptTooLongError):
        return BadInputError(str(exc), field="max_tokens")
    if isinstance(exc, EngineBusyError | EngineClosedError):
        return AgentBusyError(str(exc))
    if isinstance(exc, BridgeTimeoutError):
        return DeadlineExceededError(str(exc))
    return AgentFailedError(f"{type(exc).__name__}: {exc}")


class GeneratorAgent(Agent):
    """Generates a completion for a prompt (or chat messages) and streams it as ``{"text": ...}`` chunks."""

    name = "generator"
    team = "inference"
    description = "Generates text from a prompt or a conversation with the local LLM, streaming tokens."
    capabilities = ("generate", "chat", "stream")
    input_model: ClassVar[type[GenerateInput]] = GenerateInput
    output_model = GenerateOutput
    bridges = ("ryot",)
    text_input = "prompt"

    def __init__(self, bridge: RyotBridge) -> None:
        self.bridge = bridge

    def metadata(self) -> dict[str, str]:
        """The model this instance serves."""
        return {"model": self.bridge.model_name, "model_loaded": str(not self.bridge.engine.closed).lower()}

    def stats(self) -> dict[str, Any]:
        """Bridge counters and the engine's queue depth."""
        return {"engine_queue_depth": self.bridge.engine.queue_depth, **self.bridge.metrics.as_dict()}

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Stream the completion of ``call.input`` (a :class:`GenerateInput`)."""
        inp: GenerateInput = call.input
        if (inp.prompt is None) == (inp.messages is None):
            raise BadInputError("give exactly one of prompt and messages", field="prompt")
        prompt: str | list[ChatMessage] = (
            inp.prompt
            if inp.prompt is not None
            else [ChatMessage(m.role, m.content) for m in inp.messages or []]
        )
        grammar = inp.grammar
        if inp.json_schema is not None:
            if grammar is not None:
                raise BadInputError("give at most one of grammar and json_schema", field="json_schema")
            try:
                grammar = grammar_from_json_schema(inp.json_schema)
            except RyotError as exc:
                raise engine_error(exc) from exc
        params = SamplingParams(
            max_tokens=inp.max_tokens,
            temperature=inp.temperature,
            top_p=inp.top_p,
            top_k=inp.top_k,
            min_p=inp.min_p,
            repeat_penalty=inp.repeat_penalty,
            seed=inp.seed,
            stop=tuple(inp.stop),
            grammar=grammar,
            speculative=inp.speculative,
        )
        finished: Finished | None = None
        try:
            # aclosing: if emitting a chunk is cancelled, the stream must still be closed now (which
            # cancels the engine request), not whenever the suspended generator is garbage collected.
            stream = self.bridge.stream(prompt, params, timeout_s=max(call.remaining_s(), 0.001))
            async with aclosing(stream) as events:
                async for event in events:
                    if isinstance(event, Finished):
                        finished = event
                    elif event.text:
                        await call.emit({"text": event.text})
        except (RyotError, BridgeTimeoutError) as exc:
            raise engine_error(exc) from exc
        if finished is None:  # pragma: no cover - the bridge always ends with Finished or raises
            raise AgentFailedError("generation ended without a result")
        output = GenerateOutput(
            text=finished.text,
            finish_reason=finished.finish_reason,
            usage=UsageOut(
                prompt_tokens=finished.usage.prompt_tokens,
                completion_tokens=finished.usage.completion_tokens,
                cached_tokens=finished.usage.cached_tokens,
            ),
            timings=TimingsOut(
                queue_s=finished.timings.queue_s,
                ttft_s=finished.timings.ttft_s,
                decode_s=finished.timings.decode_s,
                decode_tokens=finished.timings.decode_tokens,
            ),
            model=self.bridge.model_name,
        )
        return output.model_dump()

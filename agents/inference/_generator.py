"""The Inference team's ``generator`` agent, and what every Ryot-backed agent shares.

:class:`InferenceAgent` holds the bridge, reports the model and the bridge's counters, and runs one
generation through :meth:`RyotBridge.stream <bridges.RyotBridge.stream>`, streaming ``{"text": ...}``
chunks to the caller; :func:`engine_error` is the one place Ryot and bridge exceptions become wire errors.

Every generating agent takes an optional ``model`` (a configured model name; ``None`` is the default
model): an unknown name is ``not_found`` on the field ``model``, its message listing the configured names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from typing import Any, ClassVar

from anyio import to_thread

from agents.actor import Agent, Call
from agents.errors import (
    AgentBusyError,
    AgentError,
    AgentFailedError,
    BadInputError,
    ContextLengthExceededError,
    DeadlineExceededError,
    NotFoundError,
    TooLargeError,
)
from agents.limits import NATS_MAX_PAYLOAD_BYTES
from agents.protocol import (
    TOOL_CALL_TAG,
    GenerateInput,
    GenerateOutput,
    TimingsOut,
    TokenLogprobOut,
    TopLogprobOut,
    UsageOut,
)
from agents.tracing import engine_spans
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
    TokenChunk,
    TokenLogprob,
    TokenPrompt,
    UnknownModelError,
    grammar_from_json_schema,
)


def engine_error(exc: Exception) -> AgentError:
    """The wire error for a Ryot or bridge exception (the one place this mapping lives)."""
    if isinstance(exc, UnknownModelError):
        return NotFoundError(str(exc), field="model")
    if isinstance(exc, InvalidRequestError):
        return BadInputError(exc.reason, field=exc.field)
    if isinstance(exc, PromptTooLongError):
        return ContextLengthExceededError(
            f"this model's maximum context length is {exc.n_ctx} tokens; the prompt is "
            f"{exc.prompt_tokens} tokens and max_tokens {exc.max_tokens} "
            f"({exc.prompt_tokens + exc.max_tokens} in total): shorten the prompt or lower max_tokens",
            field="max_tokens",
        )
    if isinstance(exc, EngineBusyError | EngineClosedError):
        return AgentBusyError(str(exc))
    if isinstance(exc, BridgeTimeoutError):
        return DeadlineExceededError(str(exc))
    return AgentFailedError(f"{type(exc).__name__}: {exc}")


def logprob_out(lp: TokenLogprob) -> TokenLogprobOut:
    """The wire (OpenAI) shape of one sampled token's log probability and its alternatives."""
    return TokenLogprobOut(
        token=lp.token,
        logprob=lp.logprob,
        bytes=list(lp.bytes),
        top_logprobs=[TopLogprobOut(token=t.token, logprob=t.logprob, bytes=list(t.bytes)) for t in lp.top],
    )


def tool_grammar(schema: dict[str, Any], mode: str) -> str:
    """The GBNF grammar of a tool-calling answer.

    ``required``: exactly one JSON document valid for ``schema`` (the call). ``auto``: either
    :data:`~agents.protocol.TOOL_CALL_TAG` followed by that JSON, or a text answer whose first character
    is anything but ``<``: a constrained choice the model makes with its first token, by its own
    likelihoods, between calling and answering.

    Raises:
        RyotError: The schema cannot be turned into a grammar.
    """
    call = grammar_from_json_schema(schema)
    if mode == "required":
        return call
    renamed = "\n".join(
        "tool-call ::=" + line[len("root ::=") :] if line.startswith("root ::=") else line
        for line in call.splitlines()
    )
    tag = TOOL_CALL_TAG.replace('"', '\\"')
    return f'{renamed}\nroot ::= "{tag}" tool-call | text-answer\ntext-answer ::= [^<] [^\\x00]*\n'


def usage_out(finished: Finished) -> UsageOut:
    """The wire form of a generation's exact token counts."""
    u = finished.usage
    return UsageOut(
        prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, cached_tokens=u.cached_tokens
    )


class InferenceAgent(Agent):
    """Base of the Inference team: an agent that works through one shared :class:`RyotBridge`.

    Args:
        bridge: The bridge to the loaded model (shared by every agent of the team in a process).
    """

    team: ClassVar[str] = "inference"
    bridges: ClassVar[tuple[str, ...]] = ("ryot",)

    def __init__(self, bridge: RyotBridge) -> None:
        self.bridge = bridge

    def metadata(self) -> dict[str, str]:
        """The default model, whether it can serve, and every configured model (comma-separated).

        ``model_loaded`` is ``true`` unless the pool is closed or the default model's last load failed
        (a default model that is not preloaded loads on the first request).
        """
        pool = self.bridge.pool
        default = next(s for s in pool.status() if s.default)
        loaded = not pool.closed and default.state != "failed"
        return {
            "model": self.bridge.model_name,
            "model_loaded": str(loaded).lower(),
            "models": ",".join(self.bridge.model_names),
        }

    def stats(self) -> dict[str, Any]:
        """Bridge counters, the engines' queue depth, and every model's status.

        ``models`` is a list of :meth:`ryot.ModelStatus.as_dict`, one per configured model.
        """
        models = self.bridge.status()
        engine = self.bridge.pool.loaded()
        return {
            "prefix_cache": (engine.prefix_cache_stats if engine is not None else None) or {},
            "engine_queue_depth": sum(m["queue_depth"] for m in models),
            **self.bridge.metrics.as_dict(),
            "models": models,
        }

    def resolve_model(self, model: str | None) -> str:
        """The configured name a call's ``model`` field stands for (the default model for ``None``).

        Raises:
            NotFoundError: No model has that name (field ``model``; the message lists the names).
        """
        try:
            return self.bridge.resolve(model)
        except UnknownModelError as exc:
            raise engine_error(exc) from exc

    async def generate(
        self,
        call: Call,
        prompt: str | Sequence[ChatMessage] | TokenPrompt,
        params: SamplingParams,
        *,
        prompt_field: str | None = None,
        model: str | None = None,
        logprobs: list[TokenLogprobOut] | None = None,
    ) -> Finished:
        """Run one generation, streaming its text to the caller as ``{"text": ...}`` chunks.

        Text is published where it reaches the event loop (the bridge's ``on_text``), so a delivery wakes
        no task; what NATS does not take at once goes through this task, in order.

        Args:
            call: The call being served (its deadline bounds the generation).
            prompt: Prompt text, or chat messages rendered with the model's template.
            params: Sampling parameters.
            prompt_field: Input field to blame when the prompt does not fit the context window (as
                ``too_large``); by default the error is ``bad_request`` on ``max_tokens``.
            model: Name of the model to use (loaded first if needed); ``None`` is the default model.
            logprobs: Receives each sampled token's log probability (when ``params.logprobs`` asks);
                the chunks then carry them under ``logprobs`` too.

        Raises:
            AgentError: The mapped Ryot or bridge failure (see :func:`engine_error`).
        """
        finished: Finished | None = None
        # KV prefixes are shared within the caller's tenant only (cached_tokens and TTFT leak nothing).
        params = dataclasses.replace(params, prefix_namespace=call.tenant)

        def on_text(chunk: TokenChunk, alone: bool) -> bool:
            """Publish ``chunk`` where it reaches the event loop (no task wake-up), if NATS takes it now."""
            if chunk.logprobs:
                entries = [logprob_out(lp) for lp in chunk.logprobs]
                data = {"text": chunk.text, "logprobs": [e.model_dump() for e in entries]}
                if not call.emit_now(data, write=alone):
                    return False
                if logprobs is not None:
                    logprobs.extend(entries)
                return True
            return not chunk.text or call.emit_now({"text": chunk.text}, write=alone)

        try:
            # aclosing: if emitting a chunk is cancelled, the stream must still be closed now (which
            # cancels the engine request), not whenever the suspended generator is garbage collected.
            stream = self.bridge.stream(
                prompt, params, timeout_s=max(call.remaining_s(), 0.001), model=model, on_text=on_text
            )
            async with aclosing(stream) as events:
                async for event in events:
                    if isinstance(event, Finished):
                        finished = event
                    elif event.logprobs:
                        entries = [logprob_out(lp) for lp in event.logprobs]
                        if logprobs is not None:
                            logprobs.extend(entries)
                        await call.emit({"text": event.text, "logprobs": [e.model_dump() for e in entries]})
                    elif event.text:
                        await call.emit({"text": event.text})
        except PromptTooLongError as exc:
            if prompt_field is None:
                raise engine_error(exc) from exc
            raise TooLargeError(
                f"the prompt is {exc.prompt_tokens} tokens; with max_tokens {exc.max_tokens} it exceeds "
                f"the context window of {exc.n_ctx} tokens",
                field=prompt_field,
            ) from exc
        except (RyotError, BridgeTimeoutError) as exc:
            raise engine_error(exc) from exc
        if finished is None:  # pragma: no cover - the bridge always ends with Finished or raises
            raise AgentFailedError("generation ended without a result")
        t = finished.timings
        engine_spans(
            model or self.bridge.model_name,
            queue_s=t.queue_s,
            prefill_s=t.ttft_s,
            decode_s=t.decode_s,
            decode_tokens=t.decode_tokens,
        )
        return finished


class GeneratorAgent(InferenceAgent):
    """Generates a completion for a prompt (or chat messages) and streams it as ``{"text": ...}`` chunks."""

    name = "generator"
    team = "inference"
    description = "Generates text from a prompt or a conversation with the local LLM, streaming tokens."
    capabilities = (
        "generate", "chat", "stream", "creative", "poem", "poetry", "story", "tale", "fiction", "lyrics",
        "joke", "haiku", "limerick", "rhyme", "riddle", "slogan", "tagline",
    )  # fmt: skip
    input_model: ClassVar[type[GenerateInput]] = GenerateInput
    max_input_bytes = NATS_MAX_PAYLOAD_BYTES
    """Only the wire bounds its prompt and messages: the model's context window, in tokens, is checked
    after the decode (the API's bodies are bounded by ``api.max_body_bytes``)."""
    output_model = GenerateOutput
    text_input = "prompt"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Stream the completion of ``call.input`` (a :class:`GenerateInput`)."""
        inp: GenerateInput = call.input
        model = self.resolve_model(inp.model)
        given = [inp.prompt is not None, inp.prompt_tokens is not None, inp.messages is not None]
        if sum(given) != 1:
            raise BadInputError("give exactly one of prompt, prompt_tokens and messages", field="prompt")
        prompt: str | list[ChatMessage] | TokenPrompt
        if inp.prompt is not None:
            prompt = inp.prompt
        elif inp.prompt_tokens is not None:
            if not inp.prompt_tokens:
                raise BadInputError("must hold at least one token id", field="prompt_tokens")
            prompt = TokenPrompt(tuple(inp.prompt_tokens))
        else:
            prompt = [ChatMessage(m.role, m.content) for m in inp.messages or []]
        grammar = inp.grammar
        constraints = [
            name for name in ("grammar", "json_schema", "tool_schema") if getattr(inp, name) is not None
        ]
        if len(constraints) > 1:
            raise BadInputError(f"give at most one of {', '.join(constraints)}", field=constraints[-1])
        try:
            if inp.json_schema is not None:
                grammar = await to_thread.run_sync(grammar_from_json_schema, inp.json_schema)
            elif inp.tool_schema is not None:
                grammar = tool_grammar(inp.tool_schema, inp.tool_mode)
        except RyotError as exc:
            raise engine_error(exc) from exc
        for token, bias in inp.logit_bias.items():
            if not -100.0 <= bias <= 100.0:
                raise BadInputError(f"bias {bias} of token {token} is outside -100..100", field="logit_bias")
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
            presence_penalty=inp.presence_penalty,
            frequency_penalty=inp.frequency_penalty,
            logit_bias=tuple(inp.logit_bias.items()),
            logprobs=inp.logprobs,
        )
        logprobs: list[TokenLogprobOut] | None = [] if inp.logprobs is not None else None
        finished = await self.generate(call, prompt, params, model=model, logprobs=logprobs)
        output = GenerateOutput(
            text=finished.text,
            finish_reason=finished.finish_reason,
            usage=usage_out(finished),
            timings=TimingsOut(
                queue_s=finished.timings.queue_s,
                ttft_s=finished.timings.ttft_s,
                decode_s=finished.timings.decode_s,
                decode_tokens=finished.timings.decode_tokens,
            ),
            model=model,
            logprobs=logprobs,
        )
        return output.model_dump(exclude_none=True)

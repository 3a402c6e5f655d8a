"""llama-server's native ``POST /completion`` and its alias ``/completions`` (``/v1/completions``: OpenAI's).

What llama.cpp clients send (llama.cpp ``tools/server/README.md`` "POST /completion"; Continue's
``llama.cpp`` provider posts ``{"prompt", "stream": true, "n_predict", "temperature", "top_k", "top_p",
"min_p", "stop", ...}`` and reads ``content`` from each event):

- Served: ``prompt`` (text, or token ids of the model's vocabulary), ``n_predict`` (or, when absent,
  ``max_tokens``, as llama-server reads it; absent or negative, llama-server's "until done": 256),
  ``temperature``, ``top_k``, ``top_p``, ``min_p``, ``seed`` (-1: random), ``stop``, ``repeat_penalty``,
  ``presence_penalty``, ``frequency_penalty``, ``logit_bias``
  (``[[id, bias | false], ...]`` or ``{"id": bias}``), ``grammar`` (GBNF), ``json_schema``, ``stream``.
- Out-of-range sampling values are taken as llama.cpp's samplers take them (:mod:`api._sampling`:
  ``temperature`` ≤ 0 greedy, above 2 as given; ``top_k`` ≤ 0 off; penalties as given; ``repeat_penalty``
  ≤ 0 off, as Ollama takes it).
- Accepted, no effect: the other samplers and server settings (``mirostat``, ``typical_p``, ``dry_*``,
  ``xtc_*``, ``repeat_last_n``, ``n_keep``, ``cache_prompt``: prefixes are always reused, ``id_slot``,
  ...), as llama-server ignores what it does not know.
- Refused (400 naming it): ``n_probs`` above 0 (use ``/v1/completions`` ``logprobs``), ``image_data``,
  ``ignore_eos``, several prompts in one request.

The answer has llama-server's fields: ``content``, ``stop``, ``model``, ``tokens_predicted``,
``tokens_evaluated``, ``tokens_cached``, ``stop_type`` (``limit`` when ``n_predict`` ended it, ``word``
when stop strings were given, else ``eos``), ``timings`` (ms). A stream is SSE ``data: {"content": ...,
"stop": false}`` events, the last one ``stop: true`` with every field (no ``[DONE]``, as llama-server).
Generations run like the OpenAI routes' (the generator agent, the default model).
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.params import JSONBody
from pydantic import ConfigDict, Field

from agents.errors import AgentError, BadInputError
from agents.protocol import GenerateInput, GenerateOutput
from api._push import EventFormat
from api._request import call_context
from api._sampling import LenientSampling
from api._sse import sse_event, sse_push_response
from api.generate.schemas import MAX_PROMPT_CHARS
from api.openai._generation import generate_all, generate_input, start_streams
from orchestrator import Orchestrator, TextDelta

__all__ = ("LlamaCompletionRequest", "completion", "completions_alias")


class LlamaCompletionRequest(LenientSampling):
    """Body of ``POST /completion`` (unknown fields are ignored, as llama-server does)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | list[int] | list[Any] = Field(max_length=MAX_PROMPT_CHARS)
    """Text or token ids; a list of several prompts is refused."""
    n_predict: int | None = None
    max_tokens: int | None = None
    """llama-server's fallback name of ``n_predict`` (used when ``n_predict`` is absent)."""
    seed: int | None = None
    stop: list[str] | None = None
    logit_bias: list[list[Any]] | dict[str, float | bool] | None = None
    grammar: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    json_schema: dict[str, Any] | None = None
    stream: bool = False
    model: str = Field(default="default", max_length=256)
    """Not in llama-server's single-model API: a configured model's name selects it, any other the default."""
    n_probs: int | None = None
    image_data: list[Any] | None = None
    ignore_eos: bool | None = None


def _bias(raw: list[list[Any]] | dict[str, float | bool] | None) -> dict[int, float]:
    """llama-server's ``logit_bias`` as token id → bias (``false``: never this token, -100)."""
    pairs = list(raw.items()) if isinstance(raw, dict) else [tuple(p) for p in raw or []]
    out: dict[int, float] = {}
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not str(pair[0]).strip().lstrip("-").isdigit():
            raise BadInputError(
                "entries are [token id, bias or false] (token ids only)", field=f"logit_bias.{i}"
            )
        token, bias = int(pair[0]), pair[1]
        if bias is False:
            out[token] = -100.0
        elif isinstance(bias, int | float) and not isinstance(bias, bool) and -100.0 <= bias <= 100.0:
            out[token] = float(bias)
        else:
            raise BadInputError(
                f"bias of token {token} must be a number in -100..100 or false", field="logit_bias"
            )
    return out


def _input(body: LlamaCompletionRequest) -> GenerateInput:
    if body.n_probs:
        raise BadInputError("not served here (use POST /v1/completions with logprobs)", field="n_probs")
    if body.image_data:
        raise BadInputError("images are not served (text-only model)", field="image_data")
    if body.ignore_eos:
        raise BadInputError("only false is served", field="ignore_eos")
    n_predict = body.n_predict if body.n_predict is not None else body.max_tokens
    fields: dict[str, Any] = {
        "max_tokens": n_predict if n_predict and n_predict > 0 else None,
        **body.sampling(),
        "seed": None if body.seed is None or body.seed < 0 else body.seed % 2**32,
        "stop": [s for s in body.stop or [] if s] or None,
        "logit_bias": _bias(body.logit_bias) or None,
        "grammar": body.grammar,
        "json_schema": body.json_schema,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    names = {"max_tokens": "n_predict" if body.n_predict is not None else "max_tokens"}
    if isinstance(body.prompt, str):
        return generate_input(names, prompt=body.prompt, **fields)
    if body.prompt and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in body.prompt):
        return generate_input(names, prompt_tokens=list(body.prompt), **fields)
    raise BadInputError("must be a text or a list of token ids (one prompt per request)", field="prompt")


def _final(body: LlamaCompletionRequest, out: GenerateOutput, content: str) -> dict[str, Any]:
    """Every field of the last answer (``content``: the whole text, or ``""`` at the end of a stream)."""
    u, t = out.usage, out.timings
    stop_type = "limit" if out.finish_reason == "length" else ("word" if body.stop else "eos")
    prompt_ms, predicted_ms = t.ttft_s * 1000, t.decode_s * 1000
    evaluated = max(u.prompt_tokens - u.cached_tokens, 0)
    return {
        "index": 0,
        "content": content,
        "tokens": [],
        "id_slot": -1,
        "stop": True,
        "model": out.model,
        "tokens_predicted": u.completion_tokens,
        "tokens_evaluated": u.prompt_tokens,
        "tokens_cached": u.cached_tokens,
        "truncated": False,
        "has_new_line": "\n" in out.text,
        "stop_type": stop_type,
        "stopping_word": "",
        "timings": {
            "prompt_n": evaluated,
            "prompt_ms": prompt_ms,
            "prompt_per_token_ms": prompt_ms / evaluated if evaluated else 0.0,
            "prompt_per_second": evaluated / t.ttft_s if t.ttft_s > 0 else 0.0,
            "predicted_n": u.completion_tokens,
            "predicted_ms": predicted_ms,
            "predicted_per_token_ms": predicted_ms / u.completion_tokens if u.completion_tokens else 0.0,
            "predicted_per_second": u.completion_tokens / t.decode_s if t.decode_s > 0 else 0.0,
        },
    }


def _event(obj: dict[str, Any]) -> bytes:
    return sse_event(json.dumps(obj, ensure_ascii=False))


async def _completion(
    data: JSONBody[LlamaCompletionRequest], request: Request[Any, Any, Any], state: State
) -> Response[Any]:
    """Complete ``prompt`` like llama-server's ``POST /completion`` (see the module docstring).

    Errors: 400 invalid or unserved field, 429 busy, 503 no generator running, 504 deadline passed.
    """
    inp = _input(data)
    orchestrator: Orchestrator = state.orchestrator
    ctx = call_context(orchestrator, request)
    if not data.stream:
        out = (await generate_all(request, orchestrator, ctx, [inp], data.model))[0]
        return Response(_final(data, out, out.text))
    streams, _ = await start_streams(request, orchestrator, ctx, [inp], data.model)

    def delta(event: TextDelta) -> bytes:
        if not event.text:
            return b""
        return _event({"index": 0, "content": event.text, "tokens": [], "stop": False, "id_slot": -1})

    def end(out: GenerateOutput) -> bytes:
        return _event(_final(data, out, ""))

    def error(exc: AgentError) -> bytes:  # after the stream started: llama-server's error event
        return _event({"error": {"code": exc.code, "message": exc.message}})

    return sse_push_response(streams[0][1], EventFormat(delta=delta, end=end, error=error))


completion = post("/completion", status_code=200, summary="llama-server-compatible completion (JSON or SSE)")(
    _completion
)
completions_alias = post("/completions", status_code=200, include_in_schema=False)(_completion)
"""llama-server's ``POST /completions``: the same function (listed once in the schema, as ``/completion``)."""

"""The wire protocol between the orchestrator and the agents.

One call to an agent::

    orchestrator                                   agent instance (queue group = agent name)
      SUB <inbox>
      REQ neurectomy.agent.<team>.<agent>  ───────▶  (mailbox full? → Reply{ok=false, code="busy"})
            reply subject <inbox>.r;                 Reply{ok=true}  ◀── accepted into the mailbox
            headers: request id, deadline, scopes,
            tenant, trace id, stream inbox
      <inbox> ◀── Chunk{seq=0} … Chunk{seq=n} ◀──  work (e.g. tokens)
      <inbox> ◀── End{seq=n+1, output} | Error{…}
      PUB neurectomy.cancel.<request id>   ───────▶  stops the work (e.g. frees the LLM slot)

A call that ends before its accept went out (a worker was idle and the work never waited) answers
with its ``End``/``Error`` in the accept's place, on ``<inbox>.r``: two messages per call instead of
three. This needs the reply subject to be ``<stream inbox>.r``; a caller with another reply subject
always gets the accept first. The tenant, trace id and stream inbox headers may be left out when they
are the defaults (``default``, the request id, the reply subject without ``.r``).

A request that finds no subscriber gets NATS status 503 at once (no responders). Sequence numbers let
the receiver notice a lost chunk (core NATS delivers at most once). Payloads are JSON, optionally
followed by a binary *attachment* (a request's or an ``End``'s): a NUL byte, then raw bytes
(:func:`split_attachment`; JSON never holds a raw NUL), so bulk binary data (ΣLANG messages and
frames) travels without base64. Only agents that declare ``takes_attachment`` accept one.

This module imports nothing from the orchestrator or the agents but its leaf :mod:`agents._attachment`
(the attachment's three names, re-exported here, compiled with the call path).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agents._attachment import ATTACHMENT_SEPARATOR as ATTACHMENT_SEPARATOR
from agents._attachment import join_attachment as join_attachment
from agents._attachment import split_attachment as split_attachment

SUBJECT_PREFIX: Final = "neurectomy.agent"
CANCEL_PREFIX: Final = "neurectomy.cancel"
SERVICE_VERSION = "0.1.0"

HEADER_REQUEST_ID: Final = "Neurectomy-Request-Id"
HEADER_DEADLINE: Final = "Neurectomy-Deadline"
"""Absolute deadline as Unix time in seconds (float, wall clock)."""
HEADER_TENANT: Final = "Neurectomy-Tenant"
"""The tenant the call runs for (absent: :data:`DEFAULT_TENANT`)."""
DEFAULT_TENANT: Final = "default"
HEADER_TRACE_ID: Final = "Neurectomy-Trace-Id"
"""Trace id carried across hops (absent: the request id)."""
HEADER_STREAM_INBOX: Final = "Neurectomy-Stream-Inbox"
"""Where the call's stream goes (absent: the request's reply subject without its ``.r`` suffix)."""
HEADER_SCOPES: Final = "Neurectomy-Scopes"
"""The caller's scopes, comma-separated (``read,write``); the agent checks its operation against them."""
HEADER_SESSION: Final = "Neurectomy-Session"
"""Session key: calls with the same key are handled one after another, in the order they were accepted."""
HEADER_ERROR_FIELD: Final = "Neurectomy-Error-Field"
"""On a refusal (a NATS micro error reply: ``Nats-Service-Error-Code`` and ``Nats-Service-Error``), the
input field at fault, when there is one (e.g. ``input`` for a JSON input over the agent's limit)."""
HEADER_IDEMPOTENCY_KEY: Final = "Neurectomy-Idempotency-Key"
"""Names a call across its retries (the request id changes per attempt, this does not): a mutating agent
that sees a key again answers what it answered then instead of doing the work twice."""
HEARTBEAT_PREFIX = "neurectomy.heartbeat"
HEARTBEATS_SUBJECT = f"{HEARTBEAT_PREFIX}.batch"
"""Where one process's periodic heartbeats travel together, as one :class:`Heartbeats` message per
interval (a single instance's first and last beats go on :func:`heartbeat_subject`)."""

TEAMS = ("inference", "compression", "storage", "analysis", "synthesis")


def agent_subject(team: str, agent: str) -> str:
    """Subject of an agent: ``neurectomy.agent.<team>.<agent>`` (its queue group is ``agent``)."""
    return f"{SUBJECT_PREFIX}.{team}.{agent}"


def heartbeat_subject(team: str, agent: str) -> str:
    """Subject on which instances of an agent publish :class:`Heartbeat` messages."""
    return f"{HEARTBEAT_PREFIX}.{team}.{agent}"


def cancel_subject(request_id: str) -> str:
    """Subject on which a cancel for ``request_id`` is published."""
    return f"{CANCEL_PREFIX}.{request_id}"


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WireError(_Wire):
    """An error as it travels on the wire (see ``agents.errors`` for the codes)."""

    code: str
    message: str
    field: str | None = None


class Reply(_Wire):
    """The immediate answer to a request: accepted into the mailbox, or refused."""

    ok: bool
    instance: str = ""
    error: WireError | None = None


class Chunk(_Wire):
    """A piece of streamed output (for the generator: decoded text)."""

    type: Literal["chunk"] = "chunk"
    seq: int
    data: dict[str, Any]


class End(_Wire):
    """The last message of a successful call, carrying the agent's output."""

    type: Literal["end"] = "end"
    seq: int
    output: dict[str, Any]


class Error(_Wire):
    """The last message of a failed call."""

    type: Literal["error"] = "error"
    seq: int
    error: WireError


StreamMessage = Annotated[Chunk | End | Error, Field(discriminator="type")]
stream_message_adapter: TypeAdapter[Chunk | End | Error] = TypeAdapter(StreamMessage)


class Heartbeat(_Wire):
    """What an agent instance publishes every ``interval_s`` seconds (and once more when it drains).

    Attributes:
        agent: Agent name.
        team: Team name.
        instance: Micro service instance id.
        direct_subject: Subject that reaches this instance alone.
        in_flight: Calls being handled.
        mailbox_depth: Calls waiting in the mailbox.
        mailbox_size: Mailbox capacity (one more call is refused with ``busy``).
        concurrency: Calls handled at once.
        state: ``up``, or ``draining`` once it stops accepting.
        interval_s: Seconds until the next heartbeat.
    """

    agent: str
    team: str
    instance: str
    direct_subject: str
    in_flight: int
    mailbox_depth: int
    mailbox_size: int
    concurrency: int
    state: Literal["up", "draining"] = "up"
    interval_s: float


class Heartbeats(_Wire):
    """The periodic heartbeats of the agent instances on one connection, sent together.

    Attributes:
        beats: One :class:`Heartbeat` per instance.
    """

    beats: list[Heartbeat]


TOP_K_MAX: Final = 2**31 - 1
"""The largest ``top_k``: llama.cpp's top-k sampler takes a C ``int32_t`` (and keeps every token for any k
at least the vocabulary's size, so a larger k means the same)."""


class Sampling(BaseModel):
    """How a generation chooses its tokens: the defaults and ranges of every generation request.

    The one definition for the service: the ``generator`` agent's input (:class:`GenerateInput`) and the
    HTTP API's ``POST /v1/generate`` body derive from it, so a value out of range is refused with its
    field name at whichever door it came in. (The Ryot engine, a library on its own, checks what it is
    given again; the service always passes every field, so the engine's own defaults do not apply.)
    """

    max_tokens: int = Field(default=256, ge=1, le=32768)
    """Upper bound on completion tokens."""
    temperature: float = Field(default=0.8, ge=0.0, allow_inf_nan=False)
    """Sampling temperature; 0 is greedy. Any finite value, as llama.cpp's temperature sampler (and
    Ollama) take it; the OpenAI-compatible routes keep OpenAI's 0..2."""
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    top_k: int = Field(default=40, ge=0, le=TOP_K_MAX)
    """Keep the k most likely tokens; 0 disables (a k of at least the vocabulary's size keeps every token,
    as in llama.cpp's top-k sampler)."""
    min_p: float = Field(default=0.05, ge=0.0, le=1.0)
    """Drop tokens below min_p × the top probability."""
    repeat_penalty: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    """Penalty for repeated tokens (a repeated token's positive logit divided by it, a negative one
    multiplied); 1 disables. Any finite value above 0, as llama.cpp's penalties sampler takes it."""
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    """Sampling seed for reproducible output."""
    stop: list[str] = Field(default_factory=list, max_length=8)
    """Strings that end the completion (not included in the text)."""


class ChatMessageIn(_Wire):
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


ToolMode = Literal["auto", "required"]
"""How the generator may answer when given ``tool_schema``: ``auto`` lets the model choose between a
text answer and a call; ``required`` makes it call."""

TOOL_CALL_TAG = "<tool_call>"
"""With ``tool_mode="auto"``, an answer that starts with this tag is a call (the JSON that follows is
grammar-constrained to ``tool_schema``); any other first character starts a text answer."""


class GenerateInput(_Wire, Sampling):
    """Input of the Inference team's ``generator`` agent: a prompt (text or token ids) or chat messages."""

    prompt: str | None = None
    prompt_tokens: list[int] | None = None
    """The prompt as token ids of the model's vocabulary (evaluated as given: no BOS added)."""
    messages: list[ChatMessageIn] | None = None
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    speculative: bool = False
    model: str | None = None
    """Name of the model to generate with (one of the Ryot models configured); ``None``: the default."""
    presence_penalty: float = Field(default=0.0, allow_inf_nan=False)
    """Subtracted once from the logit of each token already sampled: any finite value, as llama.cpp's
    penalties sampler (and Ollama) take it; the OpenAI-compatible routes keep OpenAI's -2..2."""
    frequency_penalty: float = Field(default=0.0, allow_inf_nan=False)
    """Subtracted from a token's logit once per time it was sampled (any finite value; OpenAI's routes:
    -2..2)."""
    logit_bias: dict[int, float] = Field(default_factory=dict)
    """Token id → bias added to its logit (-100..100)."""
    logprobs: int | None = None
    """``None``: none. ``k``: each sampled token's log probability and the ``k`` likeliest tokens (0..20)."""
    tool_schema: dict[str, Any] | None = None
    """JSON Schema of a tool call (``{"name": ..., "arguments": ...}``); see ``tool_mode``."""
    tool_mode: ToolMode = "required"
    """``required``: the whole answer is one JSON call; ``auto``: a text answer or
    :data:`TOOL_CALL_TAG` followed by the JSON call, the model's choice."""


class UsageOut(_Wire):
    """Exact token counts of a generation."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


class TimingsOut(_Wire):
    """Engine-side timings of a generation, in seconds."""

    queue_s: float
    ttft_s: float
    decode_s: float
    decode_tokens: int


class TopLogprobOut(_Wire):
    """A candidate token at one position (OpenAI's ``top_logprobs`` entry)."""

    token: str
    logprob: float
    """Natural log of its probability under the model (raw logits)."""
    bytes: list[int]


class TokenLogprobOut(TopLogprobOut):
    """A sampled token with its log probability and the likeliest alternatives (OpenAI's shape).

    Streamed chunks of the generator carry these under ``logprobs`` when the input asked for them.
    """

    top_logprobs: list[TopLogprobOut] = Field(default_factory=list)


class GenerateOutput(_Wire):
    """Output of the ``generator`` agent (the ``End.output`` payload)."""

    text: str
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: UsageOut
    timings: TimingsOut
    model: str
    """Name of the model that generated the text."""
    logprobs: list[TokenLogprobOut] | None = None
    """Per sampled token, when the input asked for ``logprobs``."""


class Attached(dict[str, Any]):
    """A payload (a JSON object) with a binary attachment sent after it, raw (see :func:`join_attachment`).

    Pass it wherever a payload goes (``Orchestrator.call``): it is a dict for scope checks and JSON, and
    the dispatcher appends ``attachment``. An ``End`` output read with an attachment is one too.
    """

    __slots__ = ("attachment",)

    def __init__(self, payload: dict[str, Any], attachment: bytes | bytearray | memoryview) -> None:
        super().__init__(payload)
        self.attachment = attachment

"""The ``chat`` agent: multi-turn conversation with a bounded memory per session id.

By default memory is per agent instance (:class:`ChatMemory`, a process-local LRU of sessions, each
keeping its last turns); replicas do not share it, so the orchestrator routes every call of a session to
one instance (ordering per session key). On a cluster, :class:`agents.inference.SharedChatMemory` keeps
sessions in JetStream KV instead, so any replica continues a session (the routing stays: it keeps the
prompt prefix warm). Calls of one session that reach an instance at once are served one after the other.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import anyio
from pydantic import Field

from agents.actor import Call
from agents.errors import TooLargeError
from agents.inference._base import (
    DEFAULT_MAX_TOKENS,
    MAX_TEXT_CHARS,
    MaxTokens,
    ModelName,
    WireModel,
    context_window,
    token_count,
)
from agents.inference._generator import InferenceAgent, usage_out
from agents.limits import text_input_bytes
from agents.protocol import UsageOut
from bridges import RyotBridge
from ryot import ChatMessage, SamplingParams

__all__ = ("ChatAgent", "ChatInput", "ChatMemory", "ChatOutput", "ChatTurn", "SessionMemory")

MAX_SESSIONS = 1024
"""Sessions one instance remembers; the least recently used one is forgotten first."""
MAX_TURNS = 16
"""Turns (a user message and the reply) remembered per session; older ones are forgotten."""
TEMPLATE_TOKENS_PER_MESSAGE = 6
"""Tokens the chat template adds around one message (``<start_of_turn>user\\n`` … ``<end_of_turn>\\n``)."""


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One remembered exchange.

    Attributes:
        user: The user's message.
        assistant: The reply.
        tokens: Tokens of both messages with their template framing (an estimate, for trimming).
    """

    user: str
    assistant: str
    tokens: int


@dataclass(slots=True)
class _Session:
    system: str | None
    turns: deque[ChatTurn]
    started: int = 0
    lock: anyio.Lock = field(default_factory=anyio.Lock)


def session_key(tenant: str, session: str) -> str:
    """The memory key of ``session`` of ``tenant`` (a NUL cannot occur in a tenant name)."""
    return f"{tenant}\x00{session}"


class ChatMemory:
    """Sessions by id, least recently used first out; each keeps its last ``max_turns`` turns.

    Args:
        max_sessions: Sessions kept at most.
        max_turns: Turns kept per session at most.
    """

    def __init__(self, *, max_sessions: int = MAX_SESSIONS, max_turns: int = MAX_TURNS) -> None:
        self.max_sessions = max_sessions
        self.max_turns = max_turns
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def session(self, session_id: str) -> _Session:
        """The session (created empty if unknown), marked as most recently used."""
        found = self._sessions.get(session_id)
        if found is None:
            found = _Session(system=None, turns=deque(maxlen=self.max_turns))
            self._sessions[session_id] = found
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session_id)
        return found

    def forget_now(self, session_id: str) -> None:
        """Drop a session and its turns (nothing happens if it is unknown)."""
        self._sessions.pop(session_id, None)

    # The asynchronous interface ChatAgent uses (SessionMemory), shared with SharedChatMemory.

    def lock(self, session_id: str) -> anyio.Lock:
        """The lock serialising calls of one session in this process."""
        return self.session(session_id).lock

    async def load(self, session_id: str) -> _Session:
        """The session (the live object: changes to ``system`` stay)."""
        return self.session(session_id)

    async def record(self, session_id: str, turn: ChatTurn, *, system: str | None) -> _Session:
        """Append ``turn`` (and set ``system`` if given) to the session; returns it."""
        session = self.session(session_id)
        if system is not None:
            session.system = system
        session.turns.append(turn)
        session.started += 1
        return session

    async def forget(self, session_id: str) -> None:
        """Drop a session and its turns (nothing happens if it is unknown)."""
        self.forget_now(session_id)


class SessionMemory(Protocol):
    """Where :class:`ChatAgent` keeps sessions.

    :class:`ChatMemory` (this process) or :class:`agents.inference.SharedChatMemory` (JetStream KV, shared
    by replicas).
    """

    def __len__(self) -> int: ...

    def lock(self, session_id: str) -> anyio.Lock:
        """The lock serialising calls of one session in this process."""
        ...

    async def load(self, session_id: str) -> _Session:
        """The session's system instructions, turns and turn count (empty if unknown)."""
        ...

    async def record(self, session_id: str, turn: ChatTurn, *, system: str | None) -> _Session:
        """Append ``turn`` (and set ``system`` if given) durably; returns the session as stored."""
        ...

    async def forget(self, session_id: str) -> None:
        """Drop a session and its turns."""
        ...


class ChatInput(WireModel):
    """Input of ``chat``: one user message of a session."""

    session: str = Field(min_length=1, max_length=200)
    """Conversation id chosen by the caller; calls with the same id see each other's turns."""
    message: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    """The user's message."""
    system: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    """System instructions; remembered for the session until a later call gives new ones."""
    reset: bool = False
    """Forget the session's earlier turns (and system instructions) before this message."""
    max_tokens: MaxTokens = DEFAULT_MAX_TOKENS
    """Upper bound on the reply, in tokens."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    """Sampling temperature; 0 is greedy."""
    seed: int | None = None
    """Sampling seed, for a reproducible reply."""
    model: ModelName = None
    """Name of the model to use (one of the configured Ryot models); ``None``: the default model."""


class ChatOutput(WireModel):
    """Output of ``chat``."""

    reply: str
    session: str
    turn: int
    """Number of this turn in the session (1 for the first; counts forgotten turns too)."""
    history_turns: int
    """Earlier turns that were in the prompt (the newest that fit the context window)."""
    remembered_turns: int
    """Turns the session keeps now, this one included (at most the memory's bound)."""
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: UsageOut


class ChatAgent(InferenceAgent):
    """Answers a user's message in a conversation, with the session's earlier turns in the prompt.

    Args:
        bridge: The bridge to the model.
        memory: Where sessions live (a fresh bounded memory by default).
    """

    name = "chat"
    description = (
        "Holds a multi-turn conversation with the local LLM, remembering earlier turns of each session."
    )
    capabilities = ("chat", "conversation", "converse", "talk", "dialogue", "assistant", "stream")
    input_model: ClassVar[type[ChatInput]] = ChatInput
    max_input_bytes = text_input_bytes(MAX_TEXT_CHARS, MAX_TEXT_CHARS)  # message and system
    output_model = ChatOutput
    text_input = "message"
    text_output = "reply"

    def __init__(self, bridge: RyotBridge, *, memory: SessionMemory | None = None) -> None:
        super().__init__(bridge)
        self.memory: SessionMemory = memory if memory is not None else ChatMemory()

    def stats(self) -> dict[str, Any]:
        """Bridge counters plus the sessions remembered."""
        return {**super().stats(), "sessions": len(self.memory)}

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Reply to ``call.input`` (a :class:`ChatInput`), streaming the reply."""
        inp: ChatInput = call.input
        model = self.resolve_model(inp.model)
        key = session_key(call.tenant, inp.session)  # tenants never share a session, whatever its name
        if inp.reset:
            await self.memory.forget(key)
        async with self.memory.lock(key):
            session = await self.memory.load(key)
            if inp.system is not None:
                session.system = inp.system
            history = await self._fitting_history(session, inp, model)
            messages = [ChatMessage("system", session.system)] if session.system else []
            for turn in history:
                messages += [ChatMessage("user", turn.user), ChatMessage("assistant", turn.assistant)]
            messages.append(ChatMessage("user", inp.message))
            params = SamplingParams(max_tokens=inp.max_tokens, temperature=inp.temperature, seed=inp.seed)
            finished = await self.generate(call, messages, params, prompt_field="message", model=model)
            reply = finished.text.strip()
            if finished.finish_reason != "cancelled":
                user_tokens = await token_count(self.bridge, inp.message, model=model)
                reply_tokens = finished.usage.completion_tokens
                tokens = user_tokens + reply_tokens + 2 * TEMPLATE_TOKENS_PER_MESSAGE
                session = await self.memory.record(
                    key, ChatTurn(inp.message, reply, tokens), system=inp.system
                )
            return ChatOutput(
                reply=reply,
                session=inp.session,
                turn=session.started,
                history_turns=len(history),
                remembered_turns=len(session.turns),
                finish_reason=finished.finish_reason,
                usage=usage_out(finished),
            ).model_dump()

    async def _fitting_history(self, session: _Session, inp: ChatInput, model: str) -> list[ChatTurn]:
        """The newest remembered turns that fit the context window next to the message and the reply.

        Raises:
            TooLargeError: The message (with the system instructions) alone does not fit.
        """
        n_ctx = await context_window(self.bridge, model=model)
        fixed = await token_count(self.bridge, inp.message, model=model) + 2 * TEMPLATE_TOKENS_PER_MESSAGE
        if session.system:
            fixed += await token_count(self.bridge, session.system, model=model) + TEMPLATE_TOKENS_PER_MESSAGE
        budget = n_ctx - inp.max_tokens - fixed
        if budget < 0:
            raise TooLargeError(
                f"the message (with the system instructions) is {fixed} tokens; with max_tokens "
                f"{inp.max_tokens} the limit is {n_ctx - inp.max_tokens} tokens",
                field="message",
            )
        kept: list[ChatTurn] = []
        for turn in reversed(session.turns):
            if turn.tokens > budget:
                break
            budget -= turn.tokens
            kept.append(turn)
        kept.reverse()
        return kept

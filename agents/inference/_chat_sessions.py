"""Chat sessions in JetStream KV, so any ``chat`` replica continues any session.

One KV entry per session in the bucket :data:`BUCKET`: key ``<tenant hex>.<BLAKE2b-128 of the session
id, hex>`` (a session id may hold any character, a KV key only ``[-/_=.A-Za-z0-9]``; tenants never share a
key, whatever the session's name), value the session as JSON (``system``, ``started`` and the last
``max_turns`` turns).

* **Expiry**: the bucket's ``max_age`` (``ttl_s``, default :data:`SESSION_TTL_S`) counts from a session's
  last write, so a session idle that long is forgotten; every recorded turn renews it.
* **Concurrency**: calls of one session are serialised per process (striped locks); two replicas
  recording a turn of the same session at once both keep their turn: the write is a compare-and-set on
  the revision read, and the loser re-reads and appends to what the winner stored.
* **Size**: a session is kept under :data:`MAX_SESSION_BYTES` (well below NATS's payload limit) by
  forgetting its oldest turns first.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from typing import Any

import anyio

from agents.inference._chat import MAX_TURNS, ChatTurn, _Session
from agents.jetstream import JetStream, KeyValueBucket, kv_get_or_none

__all__ = ("BUCKET", "MAX_SESSION_BYTES", "SESSION_TTL_S", "SharedChatMemory")

BUCKET = "neurectomy_chat_sessions"
"""The KV bucket of chat sessions."""
SESSION_TTL_S = 24 * 3600.0
"""Default idle time after which a session is forgotten, seconds."""
MAX_SESSION_BYTES = 1024 * 1024
"""Most bytes one stored session takes (its oldest turns are dropped to fit)."""
_LOCK_STRIPES = 64


def _encode(session: _Session) -> bytes:
    turns = list(session.turns)
    while True:
        data = json.dumps(
            {
                "system": session.system,
                "started": session.started,
                "turns": [[t.user, t.assistant, t.tokens] for t in turns],
            }
        ).encode()
        if len(data) <= MAX_SESSION_BYTES or not turns:
            return data
        turns.pop(0)


def _decode(value: bytes, max_turns: int) -> _Session:
    raw: dict[str, Any] = json.loads(value)
    turns = deque((ChatTurn(u, a, int(n)) for u, a, n in raw["turns"]), maxlen=max_turns)
    return _Session(system=raw.get("system"), turns=turns, started=int(raw.get("started", 0)))


class SharedChatMemory:
    """Chat sessions in a JetStream KV bucket (see the module docstring). Create with :meth:`open`.

    Args:
        bucket: The open KV bucket.
        max_turns: Turns kept per session at most.
    """

    def __init__(self, bucket: KeyValueBucket, *, max_turns: int = MAX_TURNS) -> None:
        self._bucket = bucket
        self.max_turns = max_turns
        self._locks = [anyio.Lock() for _ in range(_LOCK_STRIPES)]
        self._served: set[str] = set()

    @classmethod
    async def open(
        cls, js: JetStream, *, ttl_s: float = SESSION_TTL_S, max_turns: int = MAX_TURNS
    ) -> SharedChatMemory:
        """Open (create if missing) the session bucket with ``js``'s replicas and ``ttl_s`` as max_age.

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        return cls(await js.ensure_key_value(BUCKET, history=1, ttl_s=ttl_s), max_turns=max_turns)

    def __len__(self) -> int:
        """Sessions this instance has served since it started (the bucket may hold more)."""
        return len(self._served)

    @staticmethod
    def kv_key(session_id: str) -> str:
        """The KV key of a memory key (``agents.inference._chat.session_key``: tenant, NUL, session)."""
        tenant, _, session = session_id.partition("\x00")
        digest = hashlib.blake2b(session.encode(), digest_size=16).hexdigest()
        return f"{tenant.encode().hex() or '-'}.{digest}"

    def lock(self, session_id: str) -> anyio.Lock:
        """The lock serialising calls of one session in this process (one of 64 stripes)."""
        return self._locks[hash(session_id) % _LOCK_STRIPES]

    async def load(self, session_id: str) -> _Session:
        """The session as stored (empty if unknown or expired).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        self._served.add(session_id)
        entry = await kv_get_or_none(self._bucket, self.kv_key(session_id))
        if entry is None or not entry.value:
            return _Session(system=None, turns=deque(maxlen=self.max_turns))
        return _decode(entry.value, self.max_turns)

    async def record(self, session_id: str, turn: ChatTurn, *, system: str | None) -> _Session:
        """Append ``turn`` (and set ``system`` if given) by compare-and-set; returns the stored session.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        key = self.kv_key(session_id)
        while True:
            entry = await kv_get_or_none(self._bucket, key)
            if entry is None or not entry.value:
                session = _Session(system=None, turns=deque(maxlen=self.max_turns))
            else:
                session = _decode(entry.value, self.max_turns)
            if system is not None:
                session.system = system
            session.turns.append(turn)
            session.started += 1
            data = _encode(session)
            if entry is None:
                stored = await self._bucket.create(key, data)
            else:
                stored = await self._bucket.update(key, data, revision=entry.revision)
            if stored is not None:  # else another replica recorded a turn meanwhile: append to it
                return session

    async def forget(self, session_id: str) -> None:
        """Drop a session and its turns (nothing happens if it is unknown).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        await self._bucket.delete(self.kv_key(session_id))

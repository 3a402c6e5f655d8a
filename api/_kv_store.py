"""The ``limits`` library's async :class:`~limits.aio.storage.Storage` on a JetStream KV bucket.

Used for the rate limit counters when the API runs against a NATS cluster: the same ``limits`` strategy
that counts in :class:`~limits.aio.storage.MemoryStorage` on one host counts here, so every API process
counts in the same window (:mod:`api._limits`). The KV client itself lives in :mod:`agents.jetstream`
(the API does not import nats). Only the fixed-window part of the interface is implemented
(``incr``, ``get``, ``get_expiry``, ``check``, ``reset``, ``clear``) plus :meth:`KeyValueStore.incr_window`
(a count and its window's end from the same compare-and-set); the moving-window and
sliding-window strategies need more and refuse this storage when built.

Counting: :meth:`KeyValueStore.incr` is a read and a compare-and-set on the key's KV revision
(``create`` when there is no entry); if another process counted in between, it reads again and retries
(at most :data:`MAX_CAS_ATTEMPTS` times, then :class:`CounterContendedError`), so two processes never
lose a count or both take a window's last request. Within one process the counts of a key are serialised
by one of :data:`LOCK_STRIPES` locks (chosen by the key's hash), so retries come only from other
processes.

Expiry: JetStream KV has one ``max_age`` per bucket, not per key. Each value therefore carries its own
expiry: it is ``b"<count> <expiry>"`` (expiry: Unix time, seconds), and a value past its expiry reads
as absent. The bucket's ``max_age`` (:data:`MAX_AGE_S`, one day: the longest window of
:class:`api._limits.LimitsConfig`) only deletes idle keys.

Keys: a ``limits`` key may hold any character (``LIMITER/ip:10.0.0.7/5/1/minute``), a KV key only
``[-/_=.A-Za-z0-9]``, so a key is stored as ``<namespace>.<base64url of the key>``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from time import time
from typing import Self

import anyio
from limits.aio.storage import Storage

from agents.jetstream import (
    JetStream,
    JetStreamUnavailableError,
    KeyValueBucket,
    kv_get_or_none,
    kv_purge_all,
)

__all__ = (
    "LOCK_STRIPES",
    "MAX_AGE_S",
    "MAX_CAS_ATTEMPTS",
    "RATE_LIMIT_BUCKET",
    "CounterContendedError",
    "KeyValueStore",
)

MAX_AGE_S = 86_400.0
"""The bucket's ``max_age``: the longest a value is kept, seconds."""
RATE_LIMIT_BUCKET = "neurectomy_rate_limits"
"""The KV bucket of the shared rate limit counters."""
MAX_CAS_ATTEMPTS = 16
"""Compare-and-set attempts of one count before :class:`CounterContendedError`."""
LOCK_STRIPES = 64
"""Locks a process spreads its keys over (a key's counts in one process never race each other)."""


class CounterContendedError(RuntimeError):
    """A count lost the compare-and-set :data:`MAX_CAS_ATTEMPTS` times in a row to other processes.

    Attributes:
        key: The ``limits`` key being counted.
        attempts: Compare-and-set attempts made.
    """

    def __init__(self, key: str, attempts: int) -> None:
        self.key = key
        self.attempts = attempts
        super().__init__(f"count of {key!r} contended: {attempts} compare-and-set attempts lost")


@dataclass(frozen=True, slots=True)
class _Counter:
    """One stored counter: ``count`` until ``expiry`` (Unix time, seconds)."""

    count: int
    expiry: float

    def encode(self) -> bytes:
        return b"%d %r" % (self.count, self.expiry)

    @classmethod
    def decode(cls, raw: bytes, now: float) -> _Counter | None:
        """The counter stored as ``raw``; ``None`` if unreadable or expired at ``now``."""
        count, _, expiry = raw.partition(b" ")
        try:
            counter = cls(int(count), float(expiry))
        except ValueError:
            return None
        return counter if counter.expiry > now else None


class KeyValueStore(Storage):
    """``limits`` storage on a JetStream KV bucket (see the module docstring).

    Args:
        bucket: The open KV bucket.
        namespace: Key prefix; :meth:`reset` removes only this namespace's keys.

    Raises:
        ValueError: ``namespace`` holds a character other than letters, digits, ``-`` and ``_``.
    """

    STORAGE_SCHEME = None  # built from an open bucket, not from a storage URI

    def __init__(self, bucket: KeyValueBucket, *, namespace: str = "_") -> None:
        if not namespace or not all(c.isalnum() or c in "-_" for c in namespace):
            raise ValueError(f"namespace {namespace!r} must be letters, digits, '-' or '_'")
        super().__init__()
        self._bucket = bucket
        self.namespace = namespace
        self._locks = tuple(anyio.Lock() for _ in range(LOCK_STRIPES))

    @classmethod
    async def open(cls, js: JetStream, bucket: str = RATE_LIMIT_BUCKET, *, namespace: str = "_") -> Self:
        """Open (create if missing) ``bucket`` with ``js``'s replicas and :data:`MAX_AGE_S`.

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        return cls(await js.ensure_key_value(bucket, history=1, ttl_s=MAX_AGE_S), namespace=namespace)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """The errors ``limits`` wraps in :class:`limits.errors.StorageError` when asked to."""
        return (JetStreamUnavailableError, CounterContendedError)

    def _key(self, key: str) -> str:
        encoded = base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()
        return f"{self.namespace}.{encoded or '-'}"

    async def _read(self, key: str) -> tuple[_Counter | None, int]:
        """The live counter of ``key`` (``None``: absent or expired) and its KV revision (0: no entry)."""
        entry = await kv_get_or_none(self._bucket, self._key(key))
        if entry is None or not entry.value:
            return None, 0
        return _Counter.decode(entry.value, time()), entry.revision

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to the counter of ``key``; a new counter expires ``expiry`` seconds from now.

        Returns:
            The count after adding.

        Raises:
            CounterContendedError: Other processes won every compare-and-set.
            JetStreamUnavailableError: JetStream did not answer.
        """
        count, _ = await self.incr_window(key, expiry, amount)
        return count

    async def incr_window(self, key: str, expiry: float, amount: int = 1) -> tuple[int, float]:
        """As :meth:`incr`, also returning when the counted window ends (one read, one compare-and-set).

        Returns:
            The count after adding, and the window's expiry (Unix time, seconds) as stored with it.

        Raises:
            CounterContendedError: Other processes won every compare-and-set.
            JetStreamUnavailableError: JetStream did not answer.
        """
        async with self._locks[hash(key) % LOCK_STRIPES]:
            for _ in range(MAX_CAS_ATTEMPTS):
                counter, revision = await self._read(key)
                if counter is None:
                    counter = _Counter(amount, time() + expiry)
                else:
                    counter = _Counter(counter.count + amount, counter.expiry)
                data = counter.encode()
                if revision == 0:
                    stored = await self._bucket.create(self._key(key), data)
                else:
                    stored = await self._bucket.update(self._key(key), data, revision=revision)
                if stored is not None:
                    return counter.count, counter.expiry
            raise CounterContendedError(key, MAX_CAS_ATTEMPTS)

    async def get(self, key: str) -> int:
        """The count of ``key`` (0 if absent or expired).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        counter, _ = await self._read(key)
        return 0 if counter is None else counter.count

    async def get_expiry(self, key: str) -> float:
        """When the counter of ``key`` expires, Unix time in seconds (now if absent, as ``MemoryStorage``).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        counter, _ = await self._read(key)
        return time() if counter is None else counter.expiry

    async def check(self) -> bool:
        """Whether the bucket answers."""
        try:
            await kv_get_or_none(self._bucket, f"{self.namespace}.-")
        except JetStreamUnavailableError:
            return False
        return True

    async def reset(self) -> int | None:
        """Remove every counter of this namespace (``None``: how many is not counted).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        await kv_purge_all(self._bucket, prefix=f"{self.namespace}.")
        return None

    async def clear(self, key: str) -> None:
        """Remove the counter of ``key`` (nothing happens if it is absent).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        await self._bucket.delete(self._key(key))

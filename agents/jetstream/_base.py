"""The JetStream layer's shared parts: nats errors turned into ``agents.errors``, the raw client, entries.

See :mod:`agents.jetstream` for how each nats error is translated.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client

from agents.errors import AgentBusyError, AgentError, AgentFailedError, NoRespondersError, NotFoundError
from agents.messaging import Bus

__all__ = (
    "STREAM_CONFIG_CONFLICT",
    "JetStreamNotReadyError",
    "JetStreamUnavailableError",
    "KvEntry",
    "StoredMessage",
    "headers_of",
    "raw_client",
    "translated",
)

_STREAM_LIMIT_CODES = frozenset({10077, 10078, 10047, 10028})  # max msgs / bytes / store / msg size
STREAM_CONFIG_CONFLICT = 10058  # stream name already in use with a different configuration
# The cluster cannot answer yet (nats-server's errors.json): 10008 JSClusterNotAvailErr "JetStream system
# temporarily unavailable" (no meta leader), 10009 JSClusterNotLeaderErr "JetStream cluster can not handle
# request".
_NOT_READY_CODES = frozenset({10008, 10009})
# 10005 JSClusterNoPeersErr "no suitable peers for placement" is both: a cluster that has just regained its
# meta leader answers "no suitable peers for placement, peer offline" to an R3 create until its other nodes
# are seen online again (seen in a full test run while the third node was still joining), while a cluster
# with fewer nodes than the replicas asked for answers it without a reason (nats-server 2.15, R4 on three
# nodes). Only the first is worth waiting for.
_NO_PEERS = 10005
_PEER_OFFLINE = "offline"
_NOT_READY = (
    nats.errors.TimeoutError,  # a clustered server without a meta or stream leader does not answer
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
)
_UNAVAILABLE = (
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoServersError,
)


class JetStreamUnavailableError(NoRespondersError):
    """JetStream did not answer: not enabled, not connected, timed out, or the stream is missing.

    An infrastructure error (retry later); its wire code is ``no_responders`` so the API answers 503.
    """


class JetStreamNotReadyError(JetStreamUnavailableError):
    """JetStream is there but cannot answer yet: it timed out, or its cluster has no leader for the request.

    A cluster that is starting (or electing a meta or stream leader) answers so for a while; set-up calls
    wait it out (see :mod:`agents.jetstream._startup`). JetStream that is not enabled at all is a plain
    :class:`JetStreamUnavailableError`.
    """


def raw_client(bus: Bus) -> Client:
    """The nats-py client behind ``bus`` (the one documented use of its private connection).

    JetStream shares the bus's connection instead of opening a second one; only this module and
    :mod:`agents.messaging` may touch nats-py objects.
    """
    return bus._nc


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn nats errors raised inside the block into ``agents.errors`` (see the module docstring)."""
    try:
        yield
    except AgentError:
        raise
    except nats.js.errors.APIError as exc:
        if exc.err_code in _STREAM_LIMIT_CODES:
            raise AgentBusyError(f"{what}: {exc.description or 'stream limit reached'}") from exc
        if isinstance(exc, nats.js.errors.NotFoundError):
            raise NotFoundError(f"{what}: {exc.description or 'not found'}") from exc
        if exc.err_code in _NOT_READY_CODES or (
            exc.err_code == _NO_PEERS and _PEER_OFFLINE in (exc.description or "")
        ):
            raise JetStreamNotReadyError(f"{what}: JetStream is not ready ({exc.description})") from exc
        if isinstance(exc, nats.js.errors.ServiceUnavailableError):
            raise JetStreamUnavailableError(f"{what}: JetStream is not available") from exc
        raise AgentFailedError(f"{what}: JetStream refused: {exc.description or exc}") from exc
    except _NOT_READY as exc:
        raise JetStreamNotReadyError(f"{what}: JetStream did not answer ({type(exc).__name__})") from exc
    except _UNAVAILABLE as exc:
        raise JetStreamUnavailableError(f"{what}: JetStream did not answer ({type(exc).__name__})") from exc
    except nats.errors.Error as exc:
        raise AgentFailedError(f"{what}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class KvEntry:
    """One value of a KV bucket.

    Attributes:
        key: The key.
        value: The value bytes.
        revision: The bucket-wide revision (stream sequence) of this value; pass it to
            :meth:`KeyValueBucket.update` for compare-and-set.
        deleted: The entry is a delete or purge marker (only seen in :meth:`KeyValueBucket.history`).
    """

    key: str
    value: bytes
    revision: int
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message read back from a stream.

    Attributes:
        subject: Subject it was published on.
        data: Payload bytes.
        headers: Headers (empty dict when none).
        seq: Stream sequence.
    """

    subject: str
    data: bytes
    headers: dict[str, str]
    seq: int


def headers_of(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (raw or {}).items()}

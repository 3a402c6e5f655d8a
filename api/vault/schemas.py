"""Request and response bodies of the ΣVAULT routes (``/v1/vault/*``), shared with the Python SDK.

Each body is the Storage agent's wire model (:mod:`agents.storage.wire`) it is passed to or comes from,
under the HTTP API's name: the fields, their limits and their docs are defined once, there. Two bodies
add a limit of HTTP's own: a record id travels in a URL path (no ``/``), and one request carries at most
:data:`MAX_RECORDS_PER_REQUEST` records. Only :class:`SnapshotRequest` is the API's own (the route picks
the ``op``).

Pure pydantic: importing this module imports neither the web framework nor the vault engine.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agents.storage.wire import (
    MAX_ID_CHARS,
    MAX_K,
    NAME_PATTERN,
    ArchiveInput,
    ArchiveOutput,
    EraseOutput,
    HitOut,
    IndexOutput,
    KeyInput,
    KeyOutput,
    RecordOut,
    RetrieveInput,
    RetrieveOutput,
    SnapshotOut,
    SnapshotOutput,
    StatsOutput,
)
from agents.storage.wire import RecordIn as WireRecordIn

__all__ = (
    "MAX_K",
    "MAX_RECORDS_PER_REQUEST",
    "SNAPSHOT_NAME_PATTERN",
    "DeleteResponse",
    "IndexResponse",
    "RecordIn",
    "RecordResponse",
    "RotateRequest",
    "RotateResponse",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "SnapshotInfo",
    "SnapshotRequest",
    "SnapshotResponse",
    "StatsResponse",
    "UpsertRequest",
    "UpsertResponse",
)

MAX_RECORDS_PER_REQUEST = 4096
"""Most records in one upsert request (the vault's default ``max_batch``; the service may set less)."""
SNAPSHOT_NAME_PATTERN = NAME_PATTERN
"""1-64 characters of letters, digits, ``_ . -``, starting with a letter or digit."""

_IGNORE_UNKNOWN = ConfigDict(extra="ignore")
"""Response bodies ignore fields they do not know, so a newer server never breaks an older SDK."""


class SearchHit(HitOut):
    """One hit of ``POST /v1/vault/search``."""

    model_config = _IGNORE_UNKNOWN


class SnapshotInfo(SnapshotOut):
    """A stored snapshot copy."""

    model_config = _IGNORE_UNKNOWN


class RecordIn(WireRecordIn):
    """One record to store (upsert: an existing id is replaced)."""

    id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[^/\x00]+$")
    """Caller-chosen id (no ``/``: it travels in URL paths; 1-256 characters); generated when absent."""


class UpsertRequest(ArchiveInput):
    """Body of ``POST /v1/vault/records``."""

    records: list[RecordIn] = Field(min_length=1, max_length=MAX_RECORDS_PER_REQUEST)  # type: ignore[assignment]


class UpsertResponse(ArchiveOutput):
    """Ids of the stored records, in input order."""

    model_config = _IGNORE_UNKNOWN


class RecordResponse(RecordOut):
    """Body of ``GET /v1/vault/records/{id}``: the decrypted record (``vector``: ``?with_vector=true``)."""

    model_config = _IGNORE_UNKNOWN


class SearchRequest(RetrieveInput):
    """Body of ``POST /v1/vault/search``: give ``query`` (text) or ``vector``, not both."""


class SearchResponse(RetrieveOutput):
    """Hits, best first."""

    model_config = _IGNORE_UNKNOWN

    hits: list[SearchHit]  # type: ignore[assignment]


class DeleteResponse(EraseOutput):
    """What was deleted."""

    model_config = _IGNORE_UNKNOWN


class RotateRequest(KeyInput):
    """Body of ``POST /v1/vault/keys/rotate`` (optional)."""


class RotateResponse(KeyOutput):
    """Result of a rotation."""

    model_config = _IGNORE_UNKNOWN


class IndexResponse(IndexOutput):
    """Body of ``POST /v1/vault/compact``."""

    model_config = _IGNORE_UNKNOWN


class SnapshotRequest(BaseModel):
    """Body of ``POST /v1/vault/snapshots`` (optional).

    The route sends the ``snapshotter`` a :class:`~agents.storage.wire.SnapshotInput` with ``op="snapshot"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    """Name of the copy; a UTC timestamp when absent."""


class SnapshotResponse(SnapshotOutput):
    """Result of a snapshot, restore or listing."""

    model_config = _IGNORE_UNKNOWN

    snapshots: list[SnapshotInfo] = Field(default_factory=list)  # type: ignore[assignment]


class StatsResponse(StatsOutput):
    """Body of ``GET /v1/vault/stats``: vault counters, seen from the caller's tenant."""

    model_config = _IGNORE_UNKNOWN

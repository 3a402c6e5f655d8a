"""ΣVAULT over HTTP: ``/v1/vault`` (records, search, shredding, key rotation, snapshots, stats).

The routes are in ``api.vault.routes`` (wired by ``api.app``); the package exports the wire models, so the
SDK can import them without Litestar.
"""

from api.vault.schemas import (
    MAX_K,
    MAX_RECORDS_PER_REQUEST,
    SNAPSHOT_NAME_PATTERN,
    DeleteResponse,
    IndexResponse,
    RecordIn,
    RecordResponse,
    RotateRequest,
    RotateResponse,
    SearchHit,
    SearchRequest,
    SearchResponse,
    SnapshotInfo,
    SnapshotRequest,
    SnapshotResponse,
    StatsResponse,
    UpsertRequest,
    UpsertResponse,
)

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

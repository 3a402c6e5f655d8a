"""``/v1/vault/*``: ΣVAULT records, search, shredding, keys, stats and snapshots, served by the Storage team.

Every route runs in the tenant of the ``X-Neurectomy-Tenant`` header (``default`` when absent) and calls
one Storage agent through the orchestrator. Errors (one mapping, in :mod:`api.errors`): 400 invalid body
or header (names the field), 404 unknown record/tenant/snapshot, 413 record over ``max_record_bytes`` or
request over the NATS max payload, 429 busy, 503 no storage agent running, 504 deadline passed, 507 the
vault's disk is full (nothing of the call was written; reads keep working).

Writes (upsert, delete, shred) commit before their deadline or never: a 504 means the write did not
happen, or happened before the deadline and is seen by every read made after the 504. A client retrying
either way sends the same ``Idempotency-Key`` header: a write the vault already did is answered with its
first result (the same ids; records without an id get ids derived from the key), never done twice.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from litestar import Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from agents.errors import BadInputError, TooLargeError
from agents.limits import ENVELOPE_RESERVE_BYTES
from api._request import _TENANT_RE, TENANT_HEADER, call_context, call_id_of, scopes_of
from api._trace import trace_id_of
from api.vault.schemas import (
    DeleteResponse,
    IndexResponse,
    RecordResponse,
    RotateRequest,
    RotateResponse,
    SearchRequest,
    SearchResponse,
    SnapshotRequest,
    SnapshotResponse,
    StatsResponse,
    UpsertRequest,
    UpsertResponse,
)
from orchestrator import CallContext, Orchestrator

TEAM = "storage"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_CHARS = 256


_IDEMPOTENT = frozenset({"fetcher", "retriever", "eraser", "vault-stats"})
"""Storage agents whose calls the router may repeat after a failure (reads; delete by id)."""


async def _call(
    state: State,
    request: Request[Any, Any, Any],
    agent: str,
    payload: dict[str, Any],
    *,
    ctx: CallContext | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    """Call one Storage agent with the request's ``Idempotency-Key``; 413 for a payload over a message."""
    orchestrator: Orchestrator = state.orchestrator
    size = len(json.dumps(payload).encode())
    limit = orchestrator.bus.max_payload
    if size > limit - ENVELOPE_RESERVE_BYTES:
        raise TooLargeError(
            f"the request is {size} bytes as JSON on the bus, over the NATS max payload of {limit} "
            "bytes; send fewer records per request",
            field=field,
        )
    call_ctx = ctx or call_context(orchestrator, request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None:
        if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
            raise BadInputError(
                f"must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} characters, got {len(key)}", field=IDEMPOTENCY_HEADER
            )
        call_ctx = replace(call_ctx, idempotency_key=key)
    # Routed; repeated after a failure only when that cannot do the work twice (a read, a delete by id,
    # or a write the agent deduplicates by the caller's idempotency key).
    idempotent = agent in _IDEMPOTENT or key is not None
    return await orchestrator.call(TEAM, agent, payload, call_ctx, idempotent=idempotent)


@post("/v1/vault/records", status_code=200, summary="Store records (batch upsert)")
async def upsert_records(
    data: JSONBody[UpsertRequest], request: Request[Any, Any, Any], state: State
) -> UpsertResponse:
    """Embed (unless a vector is given), seal and durably store records; returns their ids in order.

    Errors: 400 (empty text, wrong vector dimension, too many records; names the field), 413 (a record's
    text + metadata over ``max_record_bytes``, or the batch over the NATS max payload).
    """
    payload = {"records": [r.model_dump() for r in data.records]}
    return UpsertResponse.model_validate(await _call(state, request, "archivist", payload, field="records"))


@get("/v1/vault/records/{record_id:str}", summary="Fetch one record")
async def get_record(
    record_id: FromPath[str],
    request: Request[Any, Any, Any],
    state: State,
    with_vector: FromQuery[bool] = False,
    after_sequence: FromQuery[int | None] = None,
) -> RecordResponse:
    """The decrypted record (404 when the tenant has no such record).

    ``after_sequence``: the ``sequence`` a write returned; a replica behind it waits for it (503 when it
    cannot catch up in time).
    """
    payload: dict[str, Any] = {"id": record_id, "with_vector": with_vector}
    if after_sequence is not None:
        payload["after_sequence"] = after_sequence
    out = await _call(state, request, "fetcher", payload)
    return RecordResponse.model_validate(out)


@delete("/v1/vault/records/{record_id:str}", status_code=200, summary="Delete one record")
async def delete_record(
    record_id: FromPath[str],
    request: Request[Any, Any, Any],
    state: State,
    after_sequence: FromQuery[int | None] = None,
) -> DeleteResponse:
    """Delete a record durably (404 when the tenant has no such record; ``after_sequence`` as for GET)."""
    payload: dict[str, Any] = {"id": record_id}
    if after_sequence is not None:
        payload["after_sequence"] = after_sequence
    return DeleteResponse.model_validate(await _call(state, request, "eraser", payload))


@post("/v1/vault/search", status_code=200, summary="Semantic search")
async def search(
    data: JSONBody[SearchRequest], request: Request[Any, Any, Any], state: State
) -> SearchResponse:
    """Nearest records to a text ``query`` or a ``vector`` (cosine), thresholded and filtered.

    A tenant that never stored anything has no hits (200, empty list).
    """
    if (data.query is None) == (data.vector is None):
        raise BadInputError("give exactly one of query (text) and vector", field="query")
    payload = data.model_dump()
    return SearchResponse.model_validate(await _call(state, request, "retriever", payload))


@delete("/v1/vault/tenants/{tenant:str}", status_code=200, summary="Crypto-shred a tenant")
async def delete_tenant(
    tenant: FromPath[str], request: Request[Any, Any, Any], state: State
) -> DeleteResponse:
    """Destroy the tenant's data keys and files: nothing it stored decrypts again.

    If ``X-Neurectomy-Tenant`` is sent it must name the same tenant (400 otherwise). 404 for an unknown
    tenant. Snapshot copies taken before still hold its wrapped keys: delete them too.
    """
    if not _TENANT_RE.match(tenant):
        raise BadInputError(
            "must be 1-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit",
            field="tenant",
        )
    header = request.headers.get(TENANT_HEADER)
    if header is not None and header != tenant:
        raise BadInputError(
            f"the path names tenant {tenant!r} but X-Neurectomy-Tenant is {header!r}", field="tenant"
        )
    orchestrator: Orchestrator = state.orchestrator
    ctx = orchestrator.context(
        request_id=call_id_of(request),
        tenant=tenant,
        trace_id=trace_id_of(request),
        scopes=scopes_of(request),
    )
    return DeleteResponse.model_validate(await _call(state, request, "eraser", {"tenant": tenant}, ctx=ctx))


@post("/v1/vault/keys/rotate", status_code=200, summary="Rotate the key-encryption key or a data key")
async def rotate_keys(
    request: Request[Any, Any, Any], state: State, data: JSONBody[RotateRequest | None] = None
) -> RotateResponse:
    """Rotate keys: ``scope=kek`` (default) or ``scope=data_key``.

    ``kek`` re-wraps every data key under a new key-encryption key without rewriting records (a KEK from
    an environment variable cannot rotate here: 400); ``data_key`` gives the tenant a new data key.
    """
    body = data or RotateRequest()
    return RotateResponse.model_validate(await _call(state, request, "key-warden", body.model_dump()))


@get("/v1/vault/stats", summary="Vault counters and cache hit ratio")
async def stats(request: Request[Any, Any, Any], state: State) -> StatsResponse:
    """Records (the tenant's and all), tombstones, L1 cache hit ratio and bytes, WAL, snapshot generation."""
    return StatsResponse.model_validate(await _call(state, request, "vault-stats", {}))


@post("/v1/vault/compact", status_code=200, summary="Compact indexes (drop tombstones)")
async def compact(request: Request[Any, Any, Any], state: State) -> IndexResponse:
    """Rewrite segments without deleted records, rebuild the FAISS indexes, then snapshot."""
    return IndexResponse.model_validate(await _call(state, request, "indexer", {"op": "compact"}))


@post("/v1/vault/snapshots", status_code=200, summary="Take a named encrypted snapshot")
async def take_snapshot(
    request: Request[Any, Any, Any], state: State, data: JSONBody[SnapshotRequest | None] = None
) -> SnapshotResponse:
    """Snapshot the whole vault (every tenant) and keep a copy under ``name`` (400 if it exists)."""
    body = data or SnapshotRequest()
    payload = {"op": "snapshot", **body.model_dump(exclude_none=True)}
    return SnapshotResponse.model_validate(await _call(state, request, "snapshotter", payload))


@get("/v1/vault/snapshots", summary="List snapshot copies")
async def list_snapshots(request: Request[Any, Any, Any], state: State) -> SnapshotResponse:
    """Named snapshot copies, oldest first."""
    return SnapshotResponse.model_validate(await _call(state, request, "snapshotter", {"op": "list"}))


@post("/v1/vault/snapshots/{name:str}/restore", status_code=200, summary="Restore a snapshot copy")
async def restore_snapshot(
    name: FromPath[str], request: Request[Any, Any, Any], state: State
) -> SnapshotResponse:
    """Replace the whole vault with the copy ``name`` (404 if unknown); shredded tenants come back."""
    out = await _call(state, request, "snapshotter", {"op": "restore", "name": name})
    return SnapshotResponse.model_validate(out)


ROUTES = (
    upsert_records,
    get_record,
    delete_record,
    search,
    delete_tenant,
    rotate_keys,
    stats,
    compact,
    take_snapshot,
    list_snapshots,
    restore_snapshot,
)

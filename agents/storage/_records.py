"""Record agents of the Storage team: archivist (upsert), retriever (search), fetcher (get), eraser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from agents.actor import Call
from agents.errors import BadInputError
from agents.limits import NATS_MAX_PAYLOAD_BYTES
from agents.scopes import OperationScopes
from agents.storage._base import StorageAgent
from agents.storage.wire import (
    ArchiveInput,
    ArchiveOutput,
    EraseInput,
    EraseOutput,
    FetchInput,
    HitOut,
    RecordOut,
    RetrieveInput,
    RetrieveOutput,
)
from vault import NewRecord, TenantNotFoundError

__all__ = ("ArchivistAgent", "EraserAgent", "FetcherAgent", "RetrieverAgent")


def _vector(values: list[float], dim: int, field: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    if len(values) != dim:
        raise BadInputError(f"expected {dim} floats, got {len(values)}", field=field)
    return np.asarray(values, dtype=np.float32)


class ArchivistAgent(StorageAgent):
    """Stores a batch of records (upsert): embeds texts in batches, seals, logs with fsync, indexes.

    The call's idempotency key goes to the vault: a retried or re-run call answers the ids of the first
    and writes nothing; records without an id get ids derived from the key.
    """

    name = "archivist"
    description = "Stores records durably and encrypted in the vault (batch upsert; embeds texts)."
    capabilities = ("upsert", "embed", "store")
    input_model: ClassVar[type[ArchiveInput]] = ArchiveInput
    max_input_bytes = NATS_MAX_PAYLOAD_BYTES  # a batch of records: only the wire (and the API body) bounds it
    output_model: ClassVar[type[ArchiveOutput]] = ArchiveOutput
    ops = ("put_many",)
    fields: ClassVar[Mapping[str, str]] = {
        "text": "records.{position}.text",
        "embedding": "records.vector",
        "metadata": "records.metadata",
    }

    async def work(self, call: Call) -> ArchiveOutput:
        """Store ``call.input`` (an :class:`ArchiveInput`) in the caller's tenant; returns the ids."""
        inp: ArchiveInput = call.input
        limit = self.bridge.config.max_batch
        if len(inp.records) > limit:
            raise BadInputError(
                f"holds {len(inp.records)} records, over the batch limit of {limit}; split it",
                field="records",
            )
        batch = [
            NewRecord(
                text=r.text,
                metadata=r.metadata,
                id=r.id,
                embedding=None
                if r.vector is None
                else _vector(r.vector, self.bridge.dim, f"records.{i}.vector"),
            )
            for i, r in enumerate(inp.records)
        ]
        key = call.idempotency_key or None
        if self.log is not None:
            ids, sequence = await self.log.put_many(
                call.tenant, batch, idempotency_key=key, timeout_s=self.timeout(call)
            )
            return ArchiveOutput(ids=ids, count=len(ids), sequence=sequence)
        ids = await self.bridge.put_many(
            call.tenant, batch, timeout_s=self.timeout(call), idempotency_key=key
        )
        return ArchiveOutput(ids=ids, count=len(ids))


class RetrieverAgent(StorageAgent):
    """Semantic search in the caller's tenant: text or vector query, k, score threshold, metadata filters."""

    name = "retriever"
    text_input = "query"
    description = (
        "Finds the records nearest to a text or vector query (cosine), with a score threshold and "
        "metadata equality filters."
    )
    capabilities = ("search", "semantic-search", "filter")
    input_model: ClassVar[type[RetrieveInput]] = RetrieveInput
    max_input_bytes = NATS_MAX_PAYLOAD_BYTES  # a query text or vector of any length: only the wire bounds it
    scopes = OperationScopes(default="read")
    output_model: ClassVar[type[RetrieveOutput]] = RetrieveOutput
    ops = ("search",)
    fields: ClassVar[Mapping[str, str]] = {"where": "filters", "query": "vector", "text": "query"}

    async def work(self, call: Call) -> RetrieveOutput:
        """Search with ``call.input`` (a :class:`RetrieveInput`); an unknown tenant has no hits."""
        inp: RetrieveInput = call.input
        if (inp.query is None) == (inp.vector is None):
            raise BadInputError("give exactly one of query (text) and vector", field="query")
        query = inp.query if inp.query is not None else _vector(inp.vector or [], self.bridge.dim, "vector")
        await self.caught_up(call, inp.after_sequence)
        try:
            hits = await self.bridge.search(
                call.tenant,
                query,
                k=inp.k,
                min_score=inp.min_score,
                where=inp.filters or None,
                timeout_s=self.timeout(call),
            )
        except TenantNotFoundError:
            hits = []
        out = [
            HitOut(id=h.record.id, score=h.score, text=h.record.text, metadata=h.record.metadata)
            for h in hits
        ]
        return RetrieveOutput(hits=out)


class FetcherAgent(StorageAgent):
    """Fetches and decrypts one record of the caller's tenant by id (hot records from the LRU)."""

    name = "fetcher"
    text_output = "text"
    description = "Fetches and decrypts one record by id (from the hot cache when it can)."
    capabilities = ("get", "fetch")
    input_model: ClassVar[type[FetchInput]] = FetchInput
    scopes = OperationScopes(default="read")
    output_model: ClassVar[type[RecordOut]] = RecordOut
    ops = ("get",)

    async def work(self, call: Call) -> RecordOut:
        """Fetch ``call.input.id`` (a :class:`FetchInput`)."""
        inp: FetchInput = call.input
        await self.caught_up(call, inp.after_sequence)
        record = await self.bridge.get(call.tenant, inp.id, timeout_s=self.timeout(call))
        return RecordOut(
            id=record.id,
            tenant=record.tenant,
            text=record.text,
            metadata=record.metadata,
            vector=[float(x) for x in record.embedding] if inp.with_vector else None,
        )


class EraserAgent(StorageAgent):
    """Deletes a record, or crypto-shreds the caller's whole tenant (its data keys are destroyed)."""

    name = "eraser"
    description = (
        "Deletes a record, or crypto-shreds a tenant: its data keys are destroyed, so nothing it stored "
        "decrypts again."
    )
    capabilities = ("delete", "shred")
    input_model: ClassVar[type[EraseInput]] = EraseInput
    output_model: ClassVar[type[EraseOutput]] = EraseOutput
    ops = ("delete", "delete_tenant")

    async def work(self, call: Call) -> EraseOutput:
        """Delete per ``call.input`` (an :class:`EraseInput`).

        Raises:
            BadInputError: Neither or both of ``id`` and ``tenant``, or ``tenant`` is not the caller's.
        """
        inp: EraseInput = call.input
        if (inp.id is None) == (inp.tenant is None):
            raise BadInputError("give exactly one of id (a record) and tenant (crypto-shred)", field="id")
        if inp.tenant is not None:
            if inp.tenant != call.tenant:
                raise BadInputError(
                    f"a call for tenant {call.tenant!r} cannot shred tenant {inp.tenant!r}", field="tenant"
                )
        key = call.idempotency_key or None
        await self.caught_up(call, inp.after_sequence)
        if inp.tenant is not None:
            if self.log is not None:
                sequence = await self.log.shred(
                    call.tenant, idempotency_key=key, timeout_s=self.timeout(call)
                )
                return EraseOutput(deleted="tenant", tenant=call.tenant, sequence=sequence)
            await self.bridge.delete_tenant(call.tenant, timeout_s=self.timeout(call), idempotency_key=key)
            return EraseOutput(deleted="tenant", tenant=call.tenant)
        assert inp.id is not None
        if self.log is not None:
            sequence = await self.log.delete(
                call.tenant, inp.id, idempotency_key=key, timeout_s=self.timeout(call)
            )
            return EraseOutput(deleted="record", id=inp.id, tenant=call.tenant, sequence=sequence)
        await self.bridge.delete(call.tenant, inp.id, timeout_s=self.timeout(call), idempotency_key=key)
        return EraseOutput(deleted="record", id=inp.id, tenant=call.tenant)

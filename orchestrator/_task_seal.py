"""Task records at rest: what JetStream stores, with everything the tenant gave or got sealed.

A record in the KV bucket is a JSON envelope. The fields the machinery needs (id, tenant, status,
priority, attempts, times, lease) stay readable, so the reconciler can scan records without keys; every
field that holds the tenant's data (goal, plan, input, idempotency key, step outputs, result, errors)
is sealed as one blob with the tenant's data key::

    {"v": 2, "id": ..., "tenant": ..., "status": ..., ..., "sealed": "<base64 blob>"}

The blob is made by a :class:`Sealer` (the serve wiring passes one backed by the vault's keyring, so
deleting a tenant in the vault crypto-shreds its task records too) with the associated data
``task/<id>``: a blob copied into another record does not open. Without a sealer the private fields are
stored in clear (``v`` absent), as are records written before sealing existed; both are read.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from agents.errors import AgentFailedError, NotFoundError
from orchestrator._task_models import Priority, TaskRecord, TaskStatus

__all__ = ("PUBLIC_FIELDS", "Sealer", "TaskCodec", "TaskHead")

PUBLIC_FIELDS = frozenset(
    {
        "id",
        "tenant",
        "status",
        "priority",
        "attempts",
        "created_at",
        "updated_at",
        "dead_lettered",
        "lease_until",
    }
)
"""Record fields stored in clear (no tenant content); every other field is sealed."""
_VERSION = 2


class Sealer(Protocol):
    """Seals bytes with a tenant's data key (see :mod:`vault.tenant_seal`).

    ``open`` raises :class:`LookupError` when the tenant's key is gone (crypto-shredded) and
    :class:`ValueError` when the blob does not authenticate.
    """

    async def seal(self, tenant: str, plaintext: bytes, *, context: bytes) -> bytes:
        """Seal ``plaintext`` for ``tenant``; ``context`` is bound as associated data."""
        ...

    async def open(self, tenant: str, blob: bytes, *, context: bytes) -> bytes:
        """Open a blob made by :meth:`seal` with the same tenant and context."""
        ...


class TaskHead(BaseModel):
    """The clear part of a stored record (what the reconciler reads without a key)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    tenant: str
    status: TaskStatus
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float
    lease_until: float | None = None
    priority: Priority = "normal"


class TaskCodec:
    """Turns :class:`TaskRecord` into stored bytes and back.

    Args:
        sealer: Seals the private fields; ``None`` stores them in clear.
    """

    def __init__(self, sealer: Sealer | None = None) -> None:
        self.sealer = sealer

    @staticmethod
    def _context(task_id: str) -> bytes:
        return b"task/" + task_id.encode()

    async def encode(self, record: TaskRecord) -> bytes:
        """The stored form of ``record`` (sealed when the codec has a sealer)."""
        doc = record.model_dump(mode="json")
        if self.sealer is None:
            return json.dumps(doc, separators=(",", ":")).encode()
        private = {k: v for k, v in doc.items() if k not in PUBLIC_FIELDS}
        plaintext = json.dumps(private, separators=(",", ":"), ensure_ascii=False).encode()
        blob = await self.sealer.seal(record.tenant, plaintext, context=self._context(record.id))
        envelope = {"v": _VERSION, **{k: v for k, v in doc.items() if k in PUBLIC_FIELDS}}
        envelope["sealed"] = base64.b64encode(blob).decode()
        return json.dumps(envelope, separators=(",", ":")).encode()

    async def decode(self, data: bytes) -> TaskRecord:
        """The record stored as ``data``.

        Raises:
            NotFoundError: The record is sealed with a data key that no longer exists (its tenant was
                deleted).
            AgentFailedError: The bytes are not a record, or the seal does not authenticate, or the
                record is sealed and this codec has no sealer.
        """
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            if doc.get("v") == _VERSION:
                doc = await self._unseal(doc)
            return TaskRecord.model_validate(doc)
        except (ValueError, TypeError, KeyError, binascii.Error, ValidationError) as exc:
            what = doc.get("id", "?") if isinstance(doc, dict) else "?"
            raise AgentFailedError(f"task {what} has an unreadable record: {exc}") from None

    async def _unseal(self, envelope: dict[str, Any]) -> dict[str, Any]:
        task_id, tenant = str(envelope["id"]), str(envelope["tenant"])
        if self.sealer is None:
            raise AgentFailedError(f"task {task_id} is sealed and this process has no vault to open it")
        blob = base64.b64decode(envelope["sealed"], validate=True)
        try:
            plaintext = await self.sealer.open(tenant, blob, context=self._context(task_id))
        except LookupError:
            raise NotFoundError(
                f"no task {task_id!r} (its data was erased with its tenant)", field="id"
            ) from None
        private = json.loads(plaintext)
        public = {k: v for k, v in envelope.items() if k in PUBLIC_FIELDS}
        return {**private, **public}

    @staticmethod
    def head(data: bytes) -> TaskHead:
        """The clear fields of a stored record (no key needed).

        Raises:
            AgentFailedError: The bytes are not a record.
        """
        try:
            return TaskHead.model_validate_json(data)
        except ValidationError as exc:
            raise AgentFailedError(f"unreadable task record: {exc}") from None

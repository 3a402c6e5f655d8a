"""Checks on caller input; each failure raises a typed error naming the field or limit."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vault._private.sealing import encode_payload, encode_record
from vault.config import VaultConfig
from vault.embedding import Embedder
from vault.errors import (
    DimensionMismatchError,
    EmptyTextError,
    RecordTooLargeError,
    VaultDeadlineError,
    VaultInputError,
)
from vault.records import JSONScalar, NewRecord

__all__ = (
    "Prepared",
    "check_deadline",
    "check_k",
    "check_name",
    "check_vector",
    "check_where",
    "derived_id",
    "embed_checked",
    "matches",
    "prepare",
    "sealable_batch",
)

MAX_NAME_CHARS = 256


def check_deadline(operation: str, deadline: float | None) -> None:
    """Raise :class:`VaultDeadlineError` when ``deadline`` (``time.time()`` seconds) has passed."""
    if deadline is not None and (late := time.time() - deadline) > 0:
        raise VaultDeadlineError(operation, late)


def check_name(value: object, field: str) -> str:
    """A tenant name or record id: a non-empty string of at most 256 characters without NUL."""
    if not isinstance(value, str):
        raise VaultInputError(field, f"must be a str, got {type(value).__name__}")
    if not value or len(value) > MAX_NAME_CHARS or "\x00" in value:
        raise VaultInputError(field, f"must be 1-{MAX_NAME_CHARS} characters without NUL, got {len(value)}")
    return value


def check_vector(value: object, dim: int, field: str = "embedding") -> NDArray[np.float32]:
    """A ``(dim,)`` finite, non-zero vector, returned L2-normalised as float32."""
    try:
        vector = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise VaultInputError(field, "must be a numeric array") from None
    if vector.ndim == 2 and vector.shape[0] == 1:
        vector = vector[0]
    if vector.ndim != 1 or vector.shape[0] != dim:
        raise DimensionMismatchError(dim, vector.shape if vector.ndim != 1 else int(vector.shape[0]), field)
    if not np.all(np.isfinite(vector)):
        raise VaultInputError(field, "holds NaN or infinity")
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise VaultInputError(field, "is the zero vector")
    return (vector / norm).astype(np.float32)


def check_k(k: object) -> int:
    """Number of results: an int >= 1."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise VaultInputError("k", f"must be an int >= 1, got {k!r}")
    return k


def check_where(where: Mapping[str, JSONScalar] | None) -> dict[str, JSONScalar]:
    """Equality filters: string keys, JSON scalar values."""
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise VaultInputError("where", "must be a mapping of metadata key to value")
    for key, value in where.items():
        if not isinstance(key, str):
            raise VaultInputError("where", f"keys must be str, got {key!r}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise VaultInputError(
                "where", f"value of {key!r} must be a JSON scalar, got {type(value).__name__}"
            )
    return dict(where)


def _same(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def matches(metadata: Mapping[str, Any], where: Mapping[str, JSONScalar]) -> bool:
    """Whether every ``where`` key is present in ``metadata`` with an equal value (``True`` != ``1``)."""
    missing = object()
    return all(_same(metadata.get(key, missing), value) for key, value in where.items())


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated record: serialised payload, metadata as stored, optional normalised vector."""

    id: str
    text: str
    metadata: dict[str, Any]
    payload: bytes
    embedding: NDArray[np.float32] | None


def prepare(records: list[NewRecord], dim: int, max_record_bytes: int) -> list[Prepared]:
    """Validate a batch of new records.

    Raises:
        EmptyTextError: A text is empty or whitespace.
        RecordTooLargeError: Text plus JSON metadata exceed ``max_record_bytes``.
        DimensionMismatchError: A given embedding has the wrong dimension.
        VaultInputError: Bad id, metadata not a JSON object, or a non-finite embedding.
    """
    out = []
    for position, record in enumerate(records):
        if not isinstance(record, NewRecord):
            raise VaultInputError("records", f"item {position} is {type(record).__name__}, not NewRecord")
        if not isinstance(record.text, str):
            raise VaultInputError("text", f"record {position} text must be a str")
        if not record.text.strip():
            raise EmptyTextError(position)
        record_id = uuid.uuid4().hex if record.id is None else check_name(record.id, "id")
        if not isinstance(record.metadata, Mapping) or not all(isinstance(k, str) for k in record.metadata):
            raise VaultInputError("metadata", f"record {position} metadata must be a mapping with str keys")
        metadata = dict(record.metadata)
        try:
            payload = encode_payload(record.text, metadata)
        except (TypeError, ValueError) as exc:
            raise VaultInputError("metadata", f"record {position} is not JSON-serialisable: {exc}") from None
        if len(payload) > max_record_bytes:
            raise RecordTooLargeError(len(payload), max_record_bytes)
        vector = None if record.embedding is None else check_vector(record.embedding, dim)
        out.append(Prepared(record_id, record.text, metadata, payload, vector))
    return out


def embed_checked(embedder: Embedder, texts: list[str], dim: int) -> list[NDArray[np.float32]]:
    """Embed texts and check the embedder's output: ``n`` finite ``(dim,)`` rows, returned normalised.

    Raises:
        DimensionMismatchError: The embedder returned another shape than ``(n, dim)``.
        VaultInputError: A row is zero or not finite.
    """
    matrix = np.asarray(embedder.embed(texts), dtype=np.float32)
    if matrix.shape != (len(texts), dim):
        raise DimensionMismatchError(dim, tuple(matrix.shape), field="embedder output")
    return [check_vector(row, dim, "embedder output") for row in matrix]


def derived_id(idempotency_key: str, position: int) -> str:
    """The id of record ``position`` of a call with ``idempotency_key`` that named no id (32 hex digits).

    Retries of the call (same key) therefore store the same ids, even once the key is forgotten.
    """
    return hashlib.sha256(f"svault/id/v1\x00{idempotency_key}\x00{position}".encode()).hexdigest()[:32]


def sealable_batch(
    records: Sequence[NewRecord],
    idempotency_key: str | None,
    deadline: float | None,
    *,
    config: VaultConfig,
    embedder: Embedder,
    dim: int,
) -> tuple[list[str], list[tuple[str, bytes, NDArray[np.float32]]]]:
    """Check and embed a batch: its ids and ``(id, record plaintext, (dim,) vector)`` items, in order.

    Raises:
        VaultInputError: See :meth:`vault.Vault.put_many` (also its subclasses).
        VaultDeadlineError: ``deadline`` passed while embedding.
    """
    batch = list(records)
    if not batch or len(batch) > config.max_batch:
        raise VaultInputError("records", f"must hold 1-{config.max_batch} records, got {len(batch)}")
    if idempotency_key is not None:
        batch = [
            r
            if r.id is not None
            else NewRecord(r.text, r.metadata, derived_id(idempotency_key, i), r.embedding)
            for i, r in enumerate(batch)
        ]
    prepared = prepare(batch, dim, config.max_record_bytes)
    missing = [i for i, p in enumerate(prepared) if p.embedding is None]
    vectors = {i: p.embedding for i, p in enumerate(prepared) if p.embedding is not None}
    step = config.embed_batch_size
    for start in range(0, len(missing), step):
        check_deadline("put_many", deadline)
        chunk = missing[start : start + step]
        embedded = embed_checked(embedder, [prepared[i].text for i in chunk], dim)
        vectors.update(zip(chunk, embedded, strict=True))
    items = [(p.id, encode_record(p.payload, vectors[i]), vectors[i]) for i, p in enumerate(prepared)]
    return [p.id for p in prepared], items

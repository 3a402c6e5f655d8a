"""The RSU store interface: per-tenant, bounded, content-addressed units with reference counts.

A *reusable semantic unit* (RSU) is a content-defined chunk (`sigmalang.chunking`) of a message a
tenant compressed. The store keeps each tenant's RSUs apart: the same bytes stored by two tenants are
two entries, one tenant never learns whether another holds some content, and a frame can only name
RSUs of the tenant it is decoded for. Inside a tenant an RSU has two names:

- its **id**, BLAKE2b-128 of its bytes (content address: how repeats are found), and
- its **sequence number** (``seq``), given in order of first storage and never reused within the
  tenant, even after eviction: frames reference RSUs by ``seq`` (a varint of one or two bytes in runs
  instead of 16 bytes), and a ``seq`` whose RSU was evicted can only fail (`MissingRSUError`), never
  name other bytes.

Lifetime rules, shared by every implementation and checked by one contract test
(``tests/sigmalang/test_store_contract.py``):

- `put_many` adds RSUs with reference count 0 (a present id keeps its ``seq``) and marks them used now.
- `acquire` adds one reference per distinct present ``seq``; `release` removes one (the codec acquires
  the RSUs a frame's context names, `SigmaCodec.release` undoes it); below 0 is an error; releasing an
  evicted RSU is a no-op (its count went with it), so counts stay exact.
- Retention (``max_bytes`` and ``max_age_s`` per tenant): after each `put_many`, RSUs unused for longer
  than ``max_age_s`` are evicted, then the least recently used until the tenant holds at most
  ``max_bytes``: unreferenced ones first, then referenced ones (a frame whose context was evicted
  fails to decode with `MissingRSUError`). Pinned RSUs and those of the current `put_many` are never
  evicted. `collect_garbage` removes a tenant's unreferenced, unpinned RSUs now.
- `drop_tenant` forgets a tenant entirely (its sequence numbers restart only if the store is new).

Implementations: `sigmalang.memory_store.MemoryRSUStore` (dicts) and `sigmalang.disk_store.DiskRSUStore`
(SQLite, persistent). Both are thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sigmalang.frame import RSU_ID_BYTES

__all__ = ("GCResult", "RSUStore", "Retention", "StoreStats", "check_rsu_ids")


@dataclass(frozen=True, slots=True)
class Retention:
    """How much a store keeps per tenant.

    Attributes:
        max_bytes: Most RSU content per tenant, bytes (pinned RSUs count but are never evicted).
        max_age_s: RSUs unused (not stored, referenced or read) for longer than this are evicted,
            seconds; None keeps them regardless of age.
    """

    max_bytes: int = 256 * 1024 * 1024
    max_age_s: float | None = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Size of one tenant's part of a store.

    Attributes:
        rsus: Number of RSUs held.
        bytes: Total RSU content, bytes (ids and bookkeeping not counted).
        referenced: RSUs with a reference count above 0.
        pinned: Pinned RSUs.
        evicted: RSUs evicted by retention since the store was opened.
    """

    rsus: int
    bytes: int
    referenced: int
    pinned: int
    evicted: int = 0


@dataclass(frozen=True, slots=True)
class GCResult:
    """Outcome of one garbage collection.

    Attributes:
        removed: RSUs removed.
        bytes_freed: Their content, bytes.
    """

    removed: int
    bytes_freed: int


@runtime_checkable
class RSUStore(Protocol):
    """A per-tenant, bounded, content-addressed store of RSUs (ids are 16 bytes, data is bytes)."""

    retention: Retention

    def transaction(self) -> AbstractContextManager[None]:
        """Mark this thread's calls inside the block as one batch, which the store may commit once.

        `DiskRSUStore`: one SQLite transaction (rolled back as a whole if the block raises; other
        threads wait until it ends); `MemoryRSUStore`: a no-op (each call is atomic already). Blocks
        may nest.
        """
        ...

    def put_many(
        self, tenant: str, items: Sequence[tuple[bytes, bytes | memoryview]]
    ) -> list[tuple[int, bool]]:
        """Store ``(rsu_id, data)`` pairs for `tenant`, then apply retention.

        Returns:
            ``(seq, new)`` per item, in order: its sequence number and whether it was stored now.
        """
        ...

    def seqs(self, tenant: str, rsu_ids: Iterable[bytes]) -> dict[bytes, int]:
        """Sequence numbers of the ids `tenant` holds (absent ids are left out)."""
        ...

    def get_many(self, tenant: str, seqs: Sequence[int]) -> list[bytes]:
        """The data of each sequence number, in order (marks them used now).

        Raises:
            MissingRSUError: One is not held (evicted, collected or never stored; the error names it).
            RSUStoreError: Stored content no longer matches its id, or the store is closed.
        """
        ...

    def acquire(self, tenant: str, seqs: Iterable[int]) -> frozenset[int]:
        """Add one reference to each distinct held ``seq``; return those that were held."""
        ...

    def release(self, tenant: str, seqs: Iterable[int]) -> None:
        """Remove one reference from each distinct held ``seq`` (evicted ones are skipped).

        Raises:
            RSUStoreError: A count would go below zero; nothing is changed.
        """
        ...

    def refcount(self, tenant: str, rsu_id: bytes) -> int:
        """Reference count of an id.

        Raises:
            MissingRSUError: The tenant does not hold the id.
        """
        ...

    def pin(self, tenant: str, rsu_id: bytes, pinned: bool = True) -> None:
        """Pin (or unpin) an RSU: pinned RSUs survive garbage collection and retention.

        Raises:
            MissingRSUError: The tenant does not hold the id.
        """
        ...

    def is_pinned(self, tenant: str, rsu_id: bytes) -> bool:
        """Whether an id is pinned.

        Raises:
            MissingRSUError: The tenant does not hold the id.
        """
        ...

    def collect_garbage(self, tenant: str) -> GCResult:
        """Remove every unpinned RSU of `tenant` with reference count 0."""
        ...

    def stats(self, tenant: str) -> StoreStats:
        """Counts and bytes `tenant` holds."""
        ...

    def drop_tenant(self, tenant: str) -> GCResult:
        """Remove every RSU of `tenant`, pinned and referenced ones too."""
        ...

    def close(self) -> None:
        """Release resources; idempotent. Later calls raise `RSUStoreError`."""
        ...


def check_rsu_ids(items: Sequence[tuple[bytes, object]]) -> None:
    """Check the ids of an `RSUStore.put_many` batch before anything is stored.

    Raises:
        ValueError: An id is not ``RSU_ID_BYTES`` (16) bytes long.
    """
    for rsu_id, _ in items:
        if len(rsu_id) != RSU_ID_BYTES:
            raise ValueError(f"RSU ids are {RSU_ID_BYTES} bytes, got {len(rsu_id)}")

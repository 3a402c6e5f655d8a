"""The RSU store interface: content-addressed units with reference counts, pins and garbage collection.

A *reusable semantic unit* (RSU) is a content-defined chunk (`sigmalang.chunking`) kept under its id
(BLAKE2b-128 of its bytes). Frames reference RSUs by id instead of carrying them; these references are
the *glyphs*.

Lifetime rules, shared by every implementation and checked by one contract test
(``tests/sigmalang/test_store_contract.py``):

- `put` adds an RSU with reference count 0; adding an id that is present changes nothing.
- `acquire` atomically increments the count of each *present* id once and returns those ids; the
  codec acquires the RSUs a new frame references, so they cannot be collected while it lives.
- `release` decrements (the codec's `release(frame)` undoes one `acquire`); going below 0 is an error.
- A pinned RSU (e.g. a system prompt shared by every session) is never collected.
- `collect_garbage` removes every RSU whose count is 0 and that is not pinned. RSUs with count 0 are a
  cache: any frame that depends on an RSU holds a reference to it.

Implementations: `sigmalang.memory_store.MemoryRSUStore` (a dict) and
`sigmalang.disk_store.DiskRSUStore` (SQLite, persistent). Both are thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ("GCResult", "RSUStore", "StoreStats")


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Size of a store.

    Attributes:
        rsus: Number of RSUs held.
        bytes: Total RSU content, bytes (ids and bookkeeping not counted).
        referenced: RSUs with a reference count above 0.
        pinned: Pinned RSUs.
    """

    rsus: int
    bytes: int
    referenced: int
    pinned: int


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
    """A shared, content-addressed store of RSUs. Ids are 16 bytes; data is bytes."""

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> int:
        """Add ``(rsu_id, data)`` pairs not yet present, with reference count 0.

        Returns:
            How many were new.
        """
        ...

    def get_many(self, rsu_ids: Iterable[bytes]) -> Mapping[bytes, bytes]:
        """Return the data of each id.

        Raises:
            MissingRSUError: An id is not in the store (the error names it).
            RSUStoreError: Stored content no longer matches its id, or the store is closed.
        """
        ...

    def __contains__(self, rsu_id: object) -> bool:
        """Whether the store holds this id."""
        ...

    def acquire(self, rsu_ids: Iterable[bytes]) -> frozenset[bytes]:
        """Atomically add one reference to each distinct present id; return the ids that were present."""
        ...

    def release(self, rsu_ids: Iterable[bytes]) -> None:
        """Remove one reference from each distinct id.

        Raises:
            MissingRSUError: An id is not in the store; nothing is changed.
            RSUStoreError: A count would go below zero; nothing is changed.
        """
        ...

    def refcount(self, rsu_id: bytes) -> int:
        """Reference count of an id.

        Raises:
            MissingRSUError: The id is not in the store.
        """
        ...

    def pin(self, rsu_id: bytes, pinned: bool = True) -> None:
        """Pin (or unpin) an RSU: pinned RSUs survive garbage collection.

        Raises:
            MissingRSUError: The id is not in the store.
        """
        ...

    def is_pinned(self, rsu_id: bytes) -> bool:
        """Whether an id is pinned.

        Raises:
            MissingRSUError: The id is not in the store.
        """
        ...

    def collect_garbage(self) -> GCResult:
        """Remove every unpinned RSU with reference count 0."""
        ...

    def stats(self) -> StoreStats:
        """Counts and bytes held."""
        ...

    def close(self) -> None:
        """Release resources; idempotent. Later calls raise `RSUStoreError`."""
        ...

"""Exceptions raised by ΣVAULT.

A leaf module: it imports nothing from the project. Every exception derives from :class:`VaultError` and
also from the builtin a caller would naturally catch, and carries typed fields that build its message::

    VaultError
    ├── VaultInputError (ValueError)            bad input from the caller; names the field
    │   ├── DimensionMismatchError              embedding has the wrong dimension
    │   ├── EmptyTextError                      text is empty or only whitespace
    │   └── RecordTooLargeError                 text + metadata exceed the configured limit
    ├── RecordNotFoundError (LookupError)       no live record with that id in that tenant
    ├── TenantNotFoundError (LookupError)       tenant unknown or crypto-shredded
    ├── IntegrityError (ValueError)             a file the vault wrote is corrupted or tampered with
    │   └── DecryptionError                     AES-GCM authentication failed (wrong key or tampering)
    ├── KeyEncryptionKeyError (ValueError)      the key-encryption key is malformed, missing or misplaced
    ├── VaultStorageError (OSError)             a write or fsync failed; nothing of the call was kept
    │   └── InsufficientStorageError            ... because the file system is full (ENOSPC, EDQUOT)
    ├── VaultDeadlineError (TimeoutError)       the call's deadline passed before it committed; not written
    ├── VaultLockedError (BlockingIOError)      another process has the data directory open
    └── VaultClosedError (RuntimeError)         the vault was used after ``close()``

``LookupError`` is used rather than ``KeyError`` because ``KeyError`` quotes its message when printed.
"""

from __future__ import annotations

from pathlib import Path

__all__ = (
    "DecryptionError",
    "DimensionMismatchError",
    "EmptyTextError",
    "InsufficientStorageError",
    "IntegrityError",
    "KeyEncryptionKeyError",
    "RecordNotFoundError",
    "RecordTooLargeError",
    "TenantNotFoundError",
    "VaultClosedError",
    "VaultDeadlineError",
    "VaultError",
    "VaultInputError",
    "VaultLockedError",
    "VaultStorageError",
)


class VaultError(Exception):
    """Root of every exception ΣVAULT raises."""


class VaultInputError(VaultError, ValueError):
    """The caller passed a value the vault cannot accept.

    Attributes:
        field: Name of the offending argument or record field (e.g. ``"text"``, ``"embedding"``).
        reason: Human-readable explanation.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason}")


class DimensionMismatchError(VaultInputError):
    """An embedding does not have the dimension the vault's embedder produces.

    Attributes:
        expected: Dimension the vault expects (e.g. 384 for all-MiniLM-L6-v2).
        got: Dimension (or shape) the caller passed.
    """

    def __init__(self, expected: int, got: int | tuple[int, ...], field: str = "embedding") -> None:
        self.expected = expected
        self.got = got
        super().__init__(field, f"expected dimension {expected}, got {got}")


class EmptyTextError(VaultInputError):
    """A record's text is empty or whitespace only.

    Attributes:
        position: Index of the record in the batch passed to ``put_many`` (0 for ``put``).
    """

    def __init__(self, position: int = 0) -> None:
        self.position = position
        super().__init__("text", f"record {position} has empty text")


class RecordTooLargeError(VaultInputError):
    """A record's text plus serialised metadata exceed ``VaultConfig.max_record_bytes``.

    Attributes:
        size_bytes: Size of the record's UTF-8 text plus JSON metadata, in bytes.
        limit_bytes: The configured limit, in bytes.
    """

    def __init__(self, size_bytes: int, limit_bytes: int, field: str = "text+metadata") -> None:
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes
        super().__init__(
            field, f"record is {size_bytes} bytes, over the max_record_bytes limit of {limit_bytes}"
        )


class RecordNotFoundError(VaultError, LookupError):
    """No live record has this id in this tenant.

    Attributes:
        tenant: The tenant that was searched.
        record_id: The id that was not found.
    """

    def __init__(self, tenant: str, record_id: str) -> None:
        self.tenant = tenant
        self.record_id = record_id
        super().__init__(f"record {record_id!r} not found in tenant {tenant!r}")


class TenantNotFoundError(VaultError, LookupError):
    """The tenant has no records and no data key (never created, or deleted and crypto-shredded).

    Attributes:
        tenant: The tenant name.
    """

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        super().__init__(f"tenant {tenant!r} not found")


class IntegrityError(VaultError, ValueError):
    """A file written by the vault is corrupted, truncated in its middle, or was tampered with.

    Attributes:
        path: The file at fault.
        reason: What check failed.
        offset: Byte offset of the bad data in the file, when known.
    """

    def __init__(self, path: Path, reason: str, offset: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{path}{where}: {reason}")


class DecryptionError(IntegrityError):
    """AES-GCM authentication failed: the ciphertext, nonce or associated data was altered.

    Attributes:
        tenant: Tenant whose data key was used, when known.
    """

    def __init__(self, path: Path, reason: str, offset: int | None = None, tenant: str | None = None) -> None:
        self.tenant = tenant
        super().__init__(path, reason, offset)


class KeyEncryptionKeyError(VaultError, ValueError):
    """The key-encryption key (KEK) is malformed or does not unwrap the data keys on disk.

    The key itself is never part of the message.

    Attributes:
        source: Where the KEK came from (a file path or ``"env:NAME"``).
        reason: What is wrong with it.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"key-encryption key from {source}: {reason}")


class VaultStorageError(VaultError, OSError):
    """Writing or flushing a vault file failed; nothing of the call is kept, and reads keep working.

    The vault undid the partial write; writes succeed again once the cause is gone.

    Attributes:
        path: The file that could not be written.
        errno: The operating system's error number (e.g. ``errno.ENOSPC``).
        reason: The operating system's message.
    """

    def __init__(self, path: Path, errno: int | None, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot write {path}: {reason}; nothing of this call was written")
        self.errno = errno


class InsufficientStorageError(VaultStorageError):
    """The file system holding ``path`` is full (``ENOSPC``) or over quota (``EDQUOT``)."""


class VaultDeadlineError(VaultError, TimeoutError):
    """The call's deadline passed before it committed: nothing was written, and it never will be.

    Attributes:
        operation: What was refused (e.g. ``"put_many"``).
        late_s: How far past the deadline the check ran, in seconds.
    """

    def __init__(self, operation: str, late_s: float) -> None:
        self.operation = operation
        self.late_s = late_s
        super().__init__(
            f"{operation}: deadline passed {late_s:.3f} s before the write could commit; nothing was written"
        )


class VaultLockedError(VaultError, BlockingIOError):
    """Another process (or another open ``Vault``) holds the data directory's lock.

    Attributes:
        path: The lock file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"data directory is in use by another vault: {path} is locked")


class VaultClosedError(VaultError, RuntimeError):
    """The vault was used after ``close()``."""

    def __init__(self) -> None:
        super().__init__("the vault is closed")

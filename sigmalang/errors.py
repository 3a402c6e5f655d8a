"""Exceptions raised by ΣLANG.

A leaf module: it imports nothing from the project. Every exception derives from `SigmaError` and
also from the builtin it naturally is, so callers may catch either::

    SigmaError
    ├── FrameError (ValueError)                 a frame cannot be decoded
    │   ├── TruncatedFrameError                 shorter than its own header / fields claim
    │   ├── BadMagicError                       not a ΣLANG frame at all
    │   ├── UnsupportedVersionError             written by a format version this code does not read
    │   ├── ChecksumMismatchError               bytes were altered after encoding
    │   ├── FrameAuthenticationError            MAC fails: altered, forged, or made for another tenant
    │   └── CorruptFrameError                   checksum passed but a field is inconsistent
    ├── MissingRSUError (LookupError)           a frame references an RSU the store does not hold
    ├── MissingDictionaryError (LookupError)    a frame names a dictionary that is not registered
    ├── OutputTooLargeError (ValueError)        declared content exceeds the caller's limit
    ├── RSUStoreError (RuntimeError)            the store itself is broken (bad on-disk content, closed)
    └── BudgetUnreachableError (ValueError)     the context optimiser cannot meet a token budget
"""

from __future__ import annotations

__all__ = (
    "BadMagicError",
    "BudgetUnreachableError",
    "ChecksumMismatchError",
    "CorruptFrameError",
    "FrameAuthenticationError",
    "FrameError",
    "MissingDictionaryError",
    "MissingRSUError",
    "OutputTooLargeError",
    "RSUStoreError",
    "SigmaError",
    "TruncatedFrameError",
    "UnsupportedVersionError",
)


class SigmaError(Exception):
    """Root of every exception raised by ΣLANG."""


class FrameError(SigmaError, ValueError):
    """A byte string could not be decoded as a ΣLANG frame."""


class TruncatedFrameError(FrameError):
    """The frame ends before a field it declares.

    Attributes:
        size: Length of the frame received, in bytes.
        needed: Minimum length the parsed fields require, in bytes.
    """

    def __init__(self, size: int, needed: int) -> None:
        self.size = size
        self.needed = needed
        super().__init__(f"truncated ΣLANG frame: {size} bytes, at least {needed} needed")


class BadMagicError(FrameError):
    """The frame does not start with the ΣLANG magic bytes.

    Attributes:
        found: The first bytes of the input (at most the magic's length).
    """

    def __init__(self, found: bytes) -> None:
        self.found = found
        super().__init__(f"not a ΣLANG frame: magic {found!r}")


class UnsupportedVersionError(FrameError):
    """The frame's format version is not one this library can read.

    Attributes:
        version: Version byte found in the frame.
        supported: Versions this library decodes.
    """

    def __init__(self, version: int, supported: tuple[int, ...]) -> None:
        self.version = version
        self.supported = supported
        super().__init__(f"unsupported ΣLANG frame version {version}; this library reads {supported}")


class ChecksumMismatchError(FrameError):
    """The frame's checksum does not match its bytes: it was corrupted or truncated.

    Attributes:
        expected: Checksum stored in the frame.
        actual: Checksum computed over the received bytes.
    """

    def __init__(self, expected: bytes, actual: bytes) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"ΣLANG frame checksum mismatch: stored {expected.hex()}, computed {actual.hex()}")


class CorruptFrameError(FrameError):
    """The checksum passed but the frame's fields are inconsistent (a writer bug or a forged frame).

    Attributes:
        reason: What is inconsistent.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"corrupt ΣLANG frame: {reason}")


class FrameAuthenticationError(FrameError):
    """A store-backed frame's MAC does not verify under the decoding tenant's key.

    The frame was altered, forged, or made for another tenant (or by a service with another secret).
    """

    def __init__(self) -> None:
        super().__init__(
            "ΣLANG frame authentication failed: the frame was altered, or it was made for another "
            "tenant or by another service"
        )


class MissingRSUError(SigmaError, LookupError):
    """A frame references a reusable semantic unit that the store does not hold.

    Attributes:
        rsu_id: Content hash of the missing RSU (16 bytes), when known.
        seq: Its sequence number in the tenant's store, when known.
    """

    def __init__(self, rsu_id: bytes | None = None, *, seq: int | None = None) -> None:
        self.rsu_id = rsu_id
        self.seq = seq
        name = rsu_id.hex() if rsu_id is not None else f"#{seq}"
        super().__init__(
            f"RSU {name} is not in this tenant's store (evicted by retention, collected, or never "
            "stored here)"
        )

    def __str__(self) -> str:
        # LookupError would otherwise repr() the message (KeyError style); keep it readable.
        return str(self.args[0])


class MissingDictionaryError(SigmaError, LookupError):
    """A frame was compressed with a dictionary that is not available to the decoder.

    Attributes:
        dict_id: Dictionary id named by the frame.
    """

    def __init__(self, dict_id: int, reason: str = "which is not registered") -> None:
        self.dict_id = dict_id
        super().__init__(f"frame needs zstd dictionary {dict_id:#010x}, {reason}")


class OutputTooLargeError(SigmaError, ValueError):
    """The frame declares more content than the caller allows.

    Attributes:
        size: Declared decompressed size, in bytes.
        limit: Caller's limit, in bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"frame declares {size} bytes of content; the limit is {limit} bytes")


class RSUStoreError(SigmaError, RuntimeError):
    """The RSU store cannot serve a request (closed, or its stored content fails verification).

    Attributes:
        reason: What went wrong.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"RSU store error: {reason}")


class BudgetUnreachableError(SigmaError, ValueError):
    """The context optimiser cannot fit the text into the budget.

    Raised only when even the smallest allowed output (protected spans that must be kept) exceeds
    the budget.

    Attributes:
        budget: Requested budget, in tokens.
        minimum: Tokens of the smallest output the optimiser may produce.
    """

    def __init__(self, budget: int, minimum: int) -> None:
        self.budget = budget
        self.minimum = minimum
        super().__init__(f"token budget {budget} is below the {minimum} tokens of protected content")

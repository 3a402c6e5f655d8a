"""ΣLANG: lossless semantic compression and lossy context optimisation for agent traffic.

Agents re-send the same system prompts, tool schemas, retrieved documents and history turn after
turn. ΣLANG removes that redundancy:

- **Lossless** (`compress`, `decompress`, `SigmaCodec`): content-defined chunks become reusable semantic
  units (RSUs) in a shared, reference-counted store (`MemoryRSUStore`, `DiskRSUStore`); a frame
  references the RSUs the store already holds (*glyphs*) and zstd-compresses the rest, with a trained
  dictionary (`train_dictionary`) or the referenced content as context. Frames are versioned and
  checksummed (`sigmalang.frame`). Every result reports bytes, tokens and where the saving came from.
- **Lossy, opt-in** (`optimize_context`): extractive selection of the sentences and paragraphs most
  relevant to a query until a token budget is met; code blocks, JSON and numbers are never altered.

The package imports no other project package.
"""

from sigmalang.codec import SigmaCodec, compress, decompress
from sigmalang.config import SigmaConfig
from sigmalang.dictionary import Dictionary, DictionaryRegistry, train_dictionary
from sigmalang.disk_store import DiskRSUStore
from sigmalang.errors import (
    BadMagicError,
    BudgetUnreachableError,
    ChecksumMismatchError,
    CorruptFrameError,
    FrameError,
    MissingDictionaryError,
    MissingRSUError,
    OutputTooLargeError,
    RSUStoreError,
    SigmaError,
    TruncatedFrameError,
    UnsupportedVersionError,
)
from sigmalang.frame import FORMAT_VERSION, FrameFlags, FrameInfo, inspect_frame
from sigmalang.memory_store import MemoryRSUStore
from sigmalang.optimizer import OptimizedContext, Scorer, optimize_context
from sigmalang.report import CompressionReport, CompressionResult, SavingShares
from sigmalang.store import GCResult, RSUStore, StoreStats

__all__ = (
    "FORMAT_VERSION",
    "BadMagicError",
    "BudgetUnreachableError",
    "ChecksumMismatchError",
    "CompressionReport",
    "CompressionResult",
    "CorruptFrameError",
    "Dictionary",
    "DictionaryRegistry",
    "DiskRSUStore",
    "FrameError",
    "FrameFlags",
    "FrameInfo",
    "GCResult",
    "MemoryRSUStore",
    "MissingDictionaryError",
    "MissingRSUError",
    "OptimizedContext",
    "OutputTooLargeError",
    "RSUStore",
    "RSUStoreError",
    "SavingShares",
    "Scorer",
    "SigmaCodec",
    "SigmaConfig",
    "SigmaError",
    "StoreStats",
    "TruncatedFrameError",
    "UnsupportedVersionError",
    "compress",
    "decompress",
    "inspect_frame",
    "optimize_context",
    "train_dictionary",
)

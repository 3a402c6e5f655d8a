"""ΣLANG: lossless semantic compression and lossy context optimisation for agent traffic.

Agents re-send the same system prompts, tool schemas, retrieved documents and history turn after
turn. ΣLANG removes that redundancy:

- **Lossless** (`compress`, `decompress`, `SigmaCodec`): content-defined chunks become reusable semantic
  units (RSUs) in a per-tenant, bounded, reference-counted store (`MemoryRSUStore`, `DiskRSUStore`);
  each message is zstd-compressed against the RSUs its tenant already holds (the stream's previous
  message, repeated chunks, documents sharing sentences), named by a few bytes of sequence-number
  runs, or with a trained dictionary (`train_dictionary`). Frames are versioned, carry a MAC keyed per
  tenant (`sigmalang.frame`), and every result reports bytes, tokens and where the saving came from.
- **Lossy, opt-in** (`optimize_context`): extractive selection of the sentences and paragraphs most
  relevant to a query until a token budget is met; code blocks, JSON and numbers are never altered.

The package imports no other project package.
"""

from sigmalang.codec import SigmaCodec, compress, decompress
from sigmalang.config import SigmaConfig
from sigmalang.dictionary import Dictionary, DictionaryRegistry, DictionarySource, train_dictionary
from sigmalang.disk_store import DiskRSUStore
from sigmalang.errors import (
    BadMagicError,
    BudgetUnreachableError,
    ChecksumMismatchError,
    CorruptFrameError,
    FrameAuthenticationError,
    FrameError,
    MissingDictionaryError,
    MissingRSUError,
    OutputTooLargeError,
    RSUStoreError,
    SigmaError,
    TruncatedFrameError,
    UnsupportedVersionError,
)
from sigmalang.frame import FORMAT_VERSION, STORE_FORMAT_VERSION, FrameFlags, FrameInfo, inspect_frame
from sigmalang.generic import generic_dictionary
from sigmalang.memory_store import MemoryRSUStore
from sigmalang.optimizer import OptimizedContext, Scorer, optimize_context
from sigmalang.report import (
    ATTRIBUTION_LEVEL,
    AttributionBasis,
    CompressionReport,
    CompressionResult,
    SavingShares,
)
from sigmalang.sealing import ChunkSealer
from sigmalang.store import GCResult, Retention, RSUStore, StoreStats

__all__ = (
    "FORMAT_VERSION",
    "STORE_FORMAT_VERSION",
    "BadMagicError",
    "BudgetUnreachableError",
    "ChecksumMismatchError",
    "CompressionReport",
    "CompressionResult",
    "CorruptFrameError",
    "Dictionary",
    "DictionaryRegistry",
    "DictionarySource",
    "ChunkSealer",
    "DiskRSUStore",
    "FrameAuthenticationError",
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
    "Retention",
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
    "generic_dictionary",
    "ATTRIBUTION_LEVEL",
    "AttributionBasis",
)

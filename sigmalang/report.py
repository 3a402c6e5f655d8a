"""What one compression achieved, in bytes and tokens, and where the saving came from.

Attribution of the saving ``bytes_in - bytes_out`` (exact: the four terms add up to it)::

    bytes_in - bytes_out = dedup_saved + dictionary_saved + entropy_saved - framing

- ``entropy_saved``: the *new* bytes (for a store-backed frame, the chunks its tenant did not hold;
  otherwise the whole message) minus their size compressed by zstd alone (0 when the payload is
  stored RAW). For a store-backed frame that used a context or a dictionary this is an estimate:
  zstd level 1 (`ATTRIBUTION_LEVEL`), not the frame's own level, which saves a few percent more
  (counted in ``dedup_saved`` or ``dictionary_saved``).
- ``dictionary_saved``: for a frame without a context, how much smaller the payload is with the
  trained dictionary than compressed alone (0 otherwise: with a context, the dictionary's share is in
  ``dedup_saved``; separating it would take a second compression of the whole message).
- ``dedup_saved``: everything the context saved (content the tenant's store already held: the
  stream's previous message, repeated chunks, documents sharing sentences), minus the bytes that name
  the context.
- ``framing``: bytes spent on magic, version, flags, sizes, dictionary id and checksum, MAC or (version
  3) content hash and MAC; the bytes naming a context (runs, base, prefix, suffix) count in ``dedup_saved``.

**Measured when first read.** When the new bytes' size compressed alone is not known from the frame
itself (a store-backed frame with a context or a dictionary), the report keeps the new bytes and
compresses them (zstd level 1) the first time ``entropy_saved``, ``dictionary_saved``,
``dedup_saved`` or ``shares`` is read, or when `CompressionReport.attribute` is called (e.g. in a
worker thread, before the report reaches an event loop); the result is kept and the bytes dropped. A
caller that only wants the frame pays nothing for it: that pass was a quarter of the compression time
on short sessions (`docs/sigmalang.md`, "Codec speed"). The numbers are the same whenever they are read.

`SavingShares` divides the three savings by their sum (the gross saving before framing).

Tokens (only when a ``count_tokens`` function is given): ``tokens_in`` counts the input decoded as
UTF-8 (invalid bytes replaced); ``tokens_out`` counts the new text plus one token per context RSU
(*glyph*), the cost of the message to a reader that already holds the referenced RSUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sigmalang import _zstd

__all__ = ("ATTRIBUTION_LEVEL", "AttributionBasis", "CompressionReport", "CompressionResult", "SavingShares")

ATTRIBUTION_LEVEL = 1
"""zstd level at which a frame with a context or a dictionary measures its new bytes compressed alone,
for the report's `entropy_saved`: cheaper than the frame's own level (which saves a few percent more,
counted in `dedup_saved` or `dictionary_saved`); measuring at the frame's level cost 10% of the time."""


@dataclass(frozen=True, slots=True)
class AttributionBasis:
    """What the attribution compares with: the new bytes compressed by zstd alone, or how to measure it.

    Attributes:
        measured_bytes: Bytes measured: the new bytes (a store-backed frame's chunks its tenant did
            not hold; otherwise the whole message).
        payload_bytes: Bytes of the frame's payload (its compressed or stored message, or middle).
        dictionary_only: The frame used a trained dictionary and no context (`dictionary_saved` is then
            ``alone - payload_bytes``).
        known: The measured bytes compressed alone (at most `measured_bytes`), bytes; None until
            measured from `parts`.
        parts: The new bytes, in order, kept until measured (None once measured or when `known`).
        level: zstd level of the measurement (`ATTRIBUTION_LEVEL` for a frame with a context or a
            dictionary).
    """

    measured_bytes: int
    payload_bytes: int
    dictionary_only: bool
    known: int | None
    parts: Sequence[bytes | memoryview] | None = None
    level: int = ATTRIBUTION_LEVEL


@dataclass(frozen=True, slots=True)
class SavingShares:
    """Fractions (0-1, summing to 1 when anything was saved) of the gross saving by source."""

    dedup: float
    dictionary: float
    entropy: float


@dataclass(frozen=True, slots=True)
class CompressionReport:
    """Sizes and attribution of one compressed frame (see the module docstring for definitions).

    Attributes:
        bytes_in: Input length, bytes.
        bytes_out: Frame length, bytes.
        referenced_bytes: Input bytes in chunks the tenant's store already held, bytes.
        literal_bytes: New input bytes (the rest), bytes.
        glyphs: RSUs the frame names (its context).
        new_rsus: RSUs this input added to the store.
        framing: Bytes of frame overhead.
        dict_id: Trained dictionary used, or None.
        level: zstd level used.
        tokens_in: Input tokens, or None without a token counter.
        tokens_out: Literal tokens plus one per glyph, or None without a token counter.
        alone: The attribution's reference (`AttributionBasis`), measured when first needed.

    The savings `dedup_saved`, `dictionary_saved`, `entropy_saved` and `shares` are properties
    computed from `alone` (see the module docstring: measured when first read).
    """

    bytes_in: int
    bytes_out: int
    referenced_bytes: int
    literal_bytes: int
    glyphs: int
    new_rsus: int
    framing: int
    dict_id: int | None
    level: int
    tokens_in: int | None = None
    tokens_out: int | None = None
    alone: AttributionBasis = field(kw_only=True, repr=False, compare=False)

    def attribute(self) -> CompressionReport:
        """Measure the attribution now if it is not yet known (one zstd level-1 pass); return self.

        Blocking (CPU-bound, about the cost of compressing the new bytes at zstd level 1): call it
        from a worker thread when the report's savings will be read on an event loop.
        """
        self._alone_size()
        return self

    def _alone_size(self) -> int:
        alone = self.alone
        if alone.known is not None:
            return alone.known
        # Unlocked: two threads reading a new report at once both measure it, with the same result.
        parts = alone.parts or ()
        joined = parts[0] if len(parts) == 1 else b"".join(parts)
        size = len(_zstd.compress(bytes(joined), alone.level, None, None)) if len(joined) else 0
        alone = AttributionBasis(
            alone.measured_bytes, alone.payload_bytes, alone.dictionary_only, min(size, len(joined))
        )
        object.__setattr__(self, "alone", alone)  # measured once; the new bytes are dropped
        assert alone.known is not None  # noqa: S101 - set just above
        return alone.known

    @property
    def entropy_saved(self) -> int:
        """Bytes saved by zstd on the new bytes alone (exact, or an estimate: see the module docstring).

        Exact for a frame without context or dictionary, else measured at `ATTRIBUTION_LEVEL`; the
        first read of any saving measures it.
        """
        return self.alone.measured_bytes - self._alone_size()

    @property
    def dictionary_saved(self) -> int:
        """Bytes saved by the trained dictionary (frames without a context; 0 otherwise)."""
        return self._alone_size() - self.alone.payload_bytes if self.alone.dictionary_only else 0

    @property
    def dedup_saved(self) -> int:
        """Bytes saved by RSU references and RSU-context compression, minus the bytes naming them."""
        return self.bytes_in - self.bytes_out - self.entropy_saved - self.dictionary_saved + self.framing

    @property
    def ratio(self) -> float:
        """``bytes_in / bytes_out`` (above 1 means smaller)."""
        return self.bytes_in / self.bytes_out if self.bytes_out else float("inf")

    @property
    def token_ratio(self) -> float | None:
        """``tokens_in / tokens_out``, or None without a token counter."""
        if self.tokens_in is None or self.tokens_out is None:
            return None
        return self.tokens_in / self.tokens_out if self.tokens_out else float("inf")

    @property
    def shares(self) -> SavingShares:
        """Share of the gross saving from RSU dedup, from the dictionary and from entropy coding."""
        parts = (max(self.dedup_saved, 0), max(self.dictionary_saved, 0), max(self.entropy_saved, 0))
        total = sum(parts)
        if total == 0:
            return SavingShares(0.0, 0.0, 0.0)
        return SavingShares(parts[0] / total, parts[1] / total, parts[2] / total)


@dataclass(frozen=True, slots=True)
class CompressionResult:
    """A frame and its report.

    Attributes:
        frame: The ΣLANG frame bytes (see `sigmalang.frame`).
        report: What the compression achieved.
    """

    frame: bytes
    report: CompressionReport

"""What one compression achieved, in bytes and tokens, and where the saving came from.

Attribution of the saving ``bytes_in - bytes_out`` (exact: the four terms add up to it)::

    bytes_in - bytes_out = dedup_saved + dictionary_saved + entropy_saved - framing

- ``dedup_saved``: input bytes replaced by glyphs (``referenced_bytes``), minus the bytes the frame
  spends on the RSU table and the recipe, plus the *near-duplicate* gain: how much smaller the literal
  payload became by compressing it with the referenced RSUs' content as a zstd raw dictionary
  (``REF_PREFIX`` frames). All of it is redundancy with content the RSU store already held.
- ``dictionary_saved``: how much smaller the literal payload is with the trained dictionary than
  compressed alone at the same level (``DICT`` frames; 0 otherwise).
- ``entropy_saved``: literal bytes minus their size compressed by zstd alone at the same level (0 when
  the payload is stored RAW).
- ``framing``: bytes spent on magic, version, flags, sizes, dictionary id and checksum.

`SavingShares` divides the three savings by their sum (the gross saving before framing).

Tokens (only when a ``count_tokens`` function is given): ``tokens_in`` counts the input decoded as
UTF-8 (invalid bytes replaced); ``tokens_out`` counts the literal text plus one token per glyph, the
cost of the message to a reader that already holds the referenced RSUs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("CompressionReport", "CompressionResult", "SavingShares")


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
        referenced_bytes: Input bytes replaced by glyphs, bytes.
        literal_bytes: Input bytes carried in the payload, bytes.
        glyphs: RSU references in the frame.
        new_rsus: RSUs this input added to the store.
        dedup_saved: Bytes saved by RSU references and RSU-context compression.
        dictionary_saved: Bytes saved by the trained dictionary.
        entropy_saved: Bytes saved by zstd on the literals alone.
        framing: Bytes of frame overhead.
        dict_id: Trained dictionary used, or None.
        level: zstd level used.
        tokens_in: Input tokens, or None without a token counter.
        tokens_out: Literal tokens plus one per glyph, or None without a token counter.
    """

    bytes_in: int
    bytes_out: int
    referenced_bytes: int
    literal_bytes: int
    glyphs: int
    new_rsus: int
    dedup_saved: int
    dictionary_saved: int
    entropy_saved: int
    framing: int
    dict_id: int | None
    level: int
    tokens_in: int | None = None
    tokens_out: int | None = None

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

"""What one compression achieved, in bytes and tokens, and where the saving came from.

Attribution of the saving ``bytes_in - bytes_out`` (exact: the four terms add up to it)::

    bytes_in - bytes_out = dedup_saved + dictionary_saved + entropy_saved - framing

- ``entropy_saved``: the *new* bytes (for a store-backed frame, the chunks its tenant did not hold;
  otherwise the whole message) minus their size compressed by zstd alone at the same level (0 when
  the payload is stored RAW).
- ``dictionary_saved``: for a frame without a context, how much smaller the payload is with the
  trained dictionary than compressed alone (0 otherwise: with a context, the dictionary's share is in
  ``dedup_saved``; separating it would take a second compression of the whole message).
- ``dedup_saved``: everything the context saved (content the tenant's store already held: the
  stream's previous message, repeated chunks, documents sharing sentences), minus the bytes that name
  the context.
- ``framing``: bytes spent on magic, version, flags, sizes, dictionary id and checksum, MAC or (version
  3) content hash and MAC; the bytes naming a context (runs, base, prefix, suffix) count in ``dedup_saved``.

`SavingShares` divides the three savings by their sum (the gross saving before framing).

Tokens (only when a ``count_tokens`` function is given): ``tokens_in`` counts the input decoded as
UTF-8 (invalid bytes replaced); ``tokens_out`` counts the new text plus one token per context RSU
(*glyph*), the cost of the message to a reader that already holds the referenced RSUs.
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
        referenced_bytes: Input bytes in chunks the tenant's store already held, bytes.
        literal_bytes: New input bytes (the rest), bytes.
        glyphs: RSUs the frame names (its context).
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

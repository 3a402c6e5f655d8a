"""Plain-text helpers of the analysis agents: sentence spans, words and n-grams, with character offsets.

The sentence splitter is a deliberate, dependency-free heuristic (no NLTK data is available here): a
sentence ends at ``.``, ``!``, ``?`` or ``…`` (with closing quotes or brackets) followed by white space
and an upper-case letter, digit or opening quote, or at a blank line. Common abbreviations (``Mr.``,
``e.g.``, ``Dr.``), single initials and one- or two-digit ordinals (``am 3. März``) do not end a sentence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

__all__ = ("Span", "has_words", "ngram_repetition", "sentence_spans", "word_spans", "words")

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
"""A word: letters/digits, with inner apostrophes (``don't``, ``O’Neil``)."""
_BOUNDARY = re.compile(r"(?:[.!?…]+[\"'”’)\]]*)(?=\s+[\"'“‘(\[]?[A-Z0-9À-Ý])|\n[ \t]*\n")
_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "inc",
        "ltd",
        "co",
        "corp",
        "no",
        "fig",
        "approx",
        "dept",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    }
)


_CLOSERS = frozenset("\"'”’)]")
"""Closing quotes and brackets that may follow a sentence's final period."""


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of a text with its character offsets (``text[start:end] == span.text``)."""

    start: int
    end: int
    text: str


def _ends_with_abbreviation(text: str, end: int) -> bool:
    """Whether the period at ``text[end - 1]`` closes an abbreviation, an initial or a 1-2 digit ordinal.

    Looks back from ``end`` only as far as the word before the period (no copy of ``text[:end]``: that made
    sentence splitting quadratic, 5 s for 200,000 characters). The word stops at the last white space
    (``str.isspace``, which is what ``re`` matches as white space).
    """
    while end > 0 and text[end - 1] in _CLOSERS:
        end -= 1
    if end == 0 or text[end - 1] != ".":
        return False
    start = end = end - 1
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    token = text[start:end].lower()
    single_initial = len(token) == 1 and token.isalpha()
    ordinal = 0 < len(token) <= 2 and token.isdigit()  # "am 3. März", "1. Introduction"
    return token in _ABBREVIATIONS or single_initial or ordinal


def sentence_spans(text: str) -> list[Span]:
    """Split ``text`` into sentences, trimmed of surrounding white space.

    Returns:
        The non-empty sentences in order, each with its offsets into ``text``.
    """
    spans: list[Span] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end() if match.group().strip() else match.start()
        if match.group().strip() and _ends_with_abbreviation(text, end):
            continue
        spans.extend(_trimmed(text, start, end))
        start = match.end()
    spans.extend(_trimmed(text, start, len(text)))
    return spans


def _trimmed(text: str, start: int, end: int) -> Iterator[Span]:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        offset = start + (len(piece) - len(piece.lstrip()))
        yield Span(offset, offset + len(stripped), stripped)


def word_spans(text: str) -> list[Span]:
    """The words of ``text`` (letters and digits, inner apostrophes kept) with their offsets."""
    return [Span(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def has_words(text: str) -> bool:
    """Whether ``text`` has a word: stops at the first one (a cheap check for the event loop)."""
    return _WORD.search(text) is not None


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased."""
    return [m.group().lower() for m in _WORD.finditer(text)]


def ngram_repetition(tokens: Sequence[str], n: int = 3) -> tuple[float, list[tuple[str, int]]]:
    """How much of a token sequence repeats itself, measured on word ``n``-grams.

    Args:
        tokens: Lower-cased words.
        n: N-gram length (count of words).

    Returns:
        ``(ratio, top)``: the share of ``n``-gram occurrences that repeat an earlier one (0.0 when there
        are fewer than ``n`` tokens), and up to five most repeated ``n``-grams with their counts (only
        those seen at least twice).
    """
    grams = [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0, []
    counts = Counter(grams)
    repeated = sum(c - 1 for c in counts.values() if c > 1)
    top = [(g, c) for g, c in counts.most_common(5) if c > 1]
    return repeated / len(grams), top


def yake_stopwords_dir() -> Path:
    """The folder of stop-word lists shipped in the ``yake`` package (``stopwords_<lang>.txt``).

    Found without importing ``yake``, which pulls in networkx (~35 MB resident): agents import this
    module with the roster, also in processes that never run the Analysis team.
    """
    spec = find_spec("yake")
    if spec is None or spec.origin is None:  # pragma: no cover - yake is a dependency
        raise ModuleNotFoundError("yake")
    return Path(spec.origin).parent / "core" / "StopwordsList"

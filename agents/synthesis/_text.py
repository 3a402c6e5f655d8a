"""Small, deterministic text helpers shared by the Synthesis agents (pure Python, no models).

Sentences, content words (lower-cased, stop words dropped, a light suffix stemmer), numbers in a
canonical form, and the normalisation of short answers before a vote.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

__all__ = (
    "canonical_number",
    "content_words",
    "normalise_answer",
    "numbers",
    "split_sentences",
)

_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "no", "fig", "approx", "inc", "ltd"}
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:,\d{3})*(?:\.\d+)?%?|(?<![\w.])[-+]?\.\d+%?")
_PUNCT_RUN = re.compile(r"[^\w\s.+-]|(?<!\d)[.+-]|[.+-](?!\d)")
_SPACE = re.compile(r"\s+")

STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing don't down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just me
    more most my myself no nor not of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves isn't aren't wasn't weren't doesn't didn't can't won't
    it's there's that's""".split()
)
"""English function words that carry no content (checked after lower-casing)."""


def split_sentences(text: str) -> list[str]:
    """``text`` split into sentences (ends ``. ! ?``, blank lines, list items), stripped, non-empty.

    A period after a known abbreviation (``e.g.``, ``Dr.``) or a single capital (an initial) does not
    end a sentence; decimals (``3.5``) never do, since no space follows their period.
    """
    pieces: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        before = text[start : m.start()].rstrip("\"')]")
        last = before.rsplit(None, 1)[-1].lower().rstrip(".") if before.strip() else ""
        if before.endswith(".") and (last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())):
            continue
        pieces.append(text[start : m.start()])
        start = m.end()
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def _stem(word: str) -> str:
    """A light suffix stripper: ``invoices``/``invoice`` → ``invoic``, ``failed``/``fails`` → ``fail``."""
    word = word.removesuffix("'s")
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("ing") and len(word) >= 7:
        word = word[:-3]
    elif word.endswith("ed") and len(word) >= 6:
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        word = word[:-1]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def content_words(text: str) -> set[str]:
    """The stems of ``text``'s words that are neither stop words nor numbers (see :func:`numbers`)."""
    words = (w.lower().replace("’", "'") for w in _WORD.findall(text))
    return {_stem(w) for w in words if w not in STOP_WORDS and len(w) > 1 and not w.isdigit()}


def canonical_number(token: str) -> str | None:
    """``token`` as a canonical decimal (``"1,000.50"`` → ``"1000.5"``, ``"7%"`` → ``"7%"``), or None."""
    percent = token.endswith("%")
    raw = token.rstrip("%").replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", "+0"):
        text = "0"
    return text + ("%" if percent else "")


def numbers(text: str) -> list[str]:
    """The numbers written with digits in ``text``, canonical (see :func:`canonical_number`), in order."""
    found = (canonical_number(m.group(0)) for m in _NUMBER.finditer(text))
    return [n for n in found if n is not None]


def normalise_answer(answer: str, *, numeric: bool = True) -> str:
    """``answer`` reduced to what a vote should compare.

    Unicode NFKC, case-folded, punctuation dropped (but not the sign or decimal point of a number),
    whitespace collapsed; with ``numeric``, an answer that is one number becomes its canonical form.
    """
    text = unicodedata.normalize("NFKC", answer).casefold().strip()
    if numeric:
        bare = text.strip(" .!?;:$€£").replace(" ", "")
        if _NUMBER.fullmatch(bare):
            canonical = canonical_number(bare)
            if canonical is not None:
                return canonical
    text = _PUNCT_RUN.sub(" ", text)
    return _SPACE.sub(" ", text).strip()

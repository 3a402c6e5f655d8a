"""Finders of the ``entity-extractor``: one function per entity type, each ``text -> [Entity]``.

Libraries: URLs by two linear-time patterns checked against IANA's TLD list as the ``urlextract`` package
ships it (nothing is downloaded; ``urlextract``'s own search is super-linear on dotted runs), phone
numbers with ``phonenumbers`` (Google's libphonenumber rules, ``Leniency.VALID``), dates with
``dateparser``. E-mail addresses, money amounts and percentages use the
regular expressions below; proper nouns are a capitalisation heuristic.

Dates: ``dateparser.search.search_dates`` alone finds dates in plain words ("now", "may", "a second"),
glues neighbouring words on, and misses a date when the rest of the sentence confuses it. So English dates
are found by strict patterns (day, month and year all written) and only parsed by ``dateparser``; for other
languages ``search_dates`` runs on sentences holding a year, with the absolute-time parser only, day, month
and year all required, and a match must hold a year.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import phonenumbers
from pydantic import Field

from agents.analysis._base import AnalysisOutput
from agents.analysis._text import sentence_spans, yake_stopwords_dir

__all__ = (
    "ENTITY_TYPES",
    "Entity",
    "EntityType",
    "check_date_languages",
    "find_dates",
    "find_emails",
    "find_money",
    "find_percentages",
    "find_phones",
    "find_proper_nouns",
    "find_urls",
)

EntityType = Literal["email", "url", "phone", "date", "money", "percent", "proper_noun"]
ENTITY_TYPES: tuple[EntityType, ...] = ("email", "url", "phone", "money", "percent", "date", "proper_noun")
"""Every entity type, in priority order: where two overlap, the earlier type wins."""


class Entity(AnalysisOutput):
    """One entity found in a text (``text == input[start:end]``)."""

    type: EntityType
    text: str
    start: int = Field(description="Offset of the first character in the input (characters).")
    end: int = Field(description="Offset just past the last character (characters).")
    value: str | None = Field(
        default=None,
        description=(
            "Normalised value: E.164 phone number, ISO 8601 date or date-time, amount and ISO 4217 code "
            "('1500.00 USD'), percentage as a fraction ('0.125'), lower-cased e-mail, URL with scheme."
        ),
    )


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![\w-])")


def find_emails(text: str) -> list[Entity]:
    """E-mail addresses (``local@domain.tld``); value lower-cases the domain."""
    out = []
    for m in _EMAIL.finditer(text):
        local, _, domain = m.group().rpartition("@")
        out.append(
            Entity(
                type="email", text=m.group(), start=m.start(), end=m.end(), value=f"{local}@{domain.lower()}"
            )
        )
    return out


_SCHEME_URL = re.compile(r"(?<![\w.+-])[A-Za-z][A-Za-z0-9+.-]{0,15}://[^\s<>\"'`]+")
"""A URL with a scheme: the scheme (at most 16 characters), ``://`` and everything up to a space."""
_HOST_URL = re.compile(
    r"(?<![\w@.+:/-])((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+)([A-Za-z]{2,63})(?![\w-])"
    r"(?:[/?#][^\s<>\"'`]*)?"
)
"""A host name (``www.a.org``, ``a.org``) and an optional path; the last label must be a known TLD.

Both patterns run in linear time: a match cannot start inside a word or a dotted run (the look-behind),
every quantifier is bounded or followed by a character it cannot match, and labels cannot contain dots,
so a run of ``1.1.1.…`` is tried from its start only. (``urlextract``, used before, took seconds on a
few kilobytes of ``1.1.1.…%``.)"""


@functools.cache
def _tlds() -> frozenset[str]:
    """IANA's top-level domains, from the list the ``urlextract`` package ships (lower case)."""
    from importlib.resources import files  # noqa: PLC0415 - once

    text = files("urlextract").joinpath("data", "tlds-alpha-by-domain.txt").read_text()
    return frozenset(t.strip().lower() for t in text.splitlines() if t.strip() and not t.startswith("#"))


_URL_TRAILERS = frozenset(".,:;!?'\"”’")


def find_urls(text: str) -> list[Entity]:
    """URLs with or without a scheme (``https://a.org/x``, ``www.a.org``, ``a.org``); value has a scheme.

    Linear in ``len(text)`` (see :data:`_HOST_URL`).
    """
    found = [(m.start(), m.end(), m.group(), True) for m in _SCHEME_URL.finditer(text)]
    tlds = _tlds()
    found += [
        (m.start(), m.end(), m.group(), False) for m in _HOST_URL.finditer(text) if m.group(2).lower() in tlds
    ]
    found.sort()
    out: list[Entity] = []
    covered = -1
    for start, end, url, has_scheme in found:
        if start < covered:
            continue  # the host of a URL already found with its scheme
        covered = end
        while url and (url[-1] in _URL_TRAILERS or (url[-1] == ")" and url.count(")") > url.count("("))):
            url, end = url[:-1], end - 1  # sentence punctuation after a URL, or a closing bracket
        if not url or "@" in url:
            continue  # part of an e-mail address
        value = url if has_scheme else f"http://{url}"
        out.append(Entity(type="url", text=url, start=start, end=end, value=value))
    return out


def find_phones(text: str, region: str) -> list[Entity]:
    """Valid phone numbers; national ones are read as numbers of ``region``; value is E.164."""
    out = []
    for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        e164 = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
        out.append(Entity(type="phone", text=m.raw_string, start=m.start, end=m.end, value=e164))
    return out


_CURRENCY_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW"}
_CURRENCY_WORDS = {"dollar": "USD", "dollars": "USD", "euro": "EUR", "euros": "EUR", "pound": "GBP"}
_CURRENCY_WORDS |= {"pounds": "GBP", "yen": "JPY", "rupees": "INR"}
_CODES = "USD|EUR|GBP|JPY|CHF|CAD|AUD|CNY|INR|KRW|SEK|NOK|DKK|PLN|BRL|MXN"
_AMOUNT = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SCALE = r"(?:\s?(?:thousand|million|billion|trillion|bn|[kKmMbB])\b)?"
_SCALES = {"k": 10**3, "thousand": 10**3, "m": 10**6, "million": 10**6, "b": 10**9, "bn": 10**9}
_SCALES |= {"billion": 10**9, "trillion": 10**12}
_WORDS = "|".join(_CURRENCY_WORDS)
_MONEY = re.compile(
    rf"(?P<sym>US\$|[$€£¥₹₩])\s?(?P<a1>{_AMOUNT})(?P<s1>{_SCALE})"
    rf"|\b(?P<c1>{_CODES})\s?(?P<a2>{_AMOUNT})(?P<s2>{_SCALE})"
    rf"|(?<![\w.])(?P<a3>{_AMOUNT})(?P<s3>{_SCALE})\s?(?P<c2>{_CODES}|{_WORDS})\b"
)


def find_money(text: str) -> list[Entity]:
    """Amounts with a currency symbol, ISO 4217 code or currency word; value like ``1500000.00 USD``."""
    out = []
    for m in _MONEY.finditer(text):
        g = m.groupdict()
        amount = g["a1"] or g["a2"] or g["a3"]
        scale = (g["s1"] or g["s2"] or g["s3"] or "").strip().lower()
        if g["sym"]:
            code = _CURRENCY_SYMBOLS[g["sym"]]
        else:
            word = g["c1"] or g["c2"]
            code = _CURRENCY_WORDS.get(word.lower(), word)
        number = Decimal(amount.replace(",", "")) * _SCALES.get(scale, 1)
        out.append(
            Entity(type="money", text=m.group(), start=m.start(), end=m.end(), value=f"{number:.2f} {code}")
        )
    return out


_PERCENT = re.compile(r"(?<![\w.])(?P<n>[-+]?\d+(?:\.\d+)?)\s?(?:%|percent\b|per cent\b)")


def find_percentages(text: str) -> list[Entity]:
    """Percentages (``12%``, ``12.5 percent``); value is the fraction as a decimal string (``0.125``)."""
    out = []
    for m in _PERCENT.finditer(text):
        try:
            fraction = Decimal(m.group("n")) / 100
        except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
            continue
        out.append(
            Entity(type="percent", text=m.group(), start=m.start(), end=m.end(), value=format(fraction, "f"))
        )
    return out


_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
).split()
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_CALENDAR_NAMES = frozenset([*_MONTHS, *_WEEKDAYS])

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
)
_MONTH += r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_WEEKDAY = r"(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+)?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[5-9]|2\d)\d\d"
_TIME = r"(?:,?\s+(?:at\s+)?(?:[01]?\d|2[0-3])(?::[0-5]\d){1,2}(?:\s*[ap]\.?m\.?)?"
_TIME += r"|,?\s+(?:at\s+)?(?:1[0-2]|0?[1-9])\s*[ap]\.?m\.?)?"
_ISO_DATE = rf"\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_ISO_DATE += r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?)?(?!\d)"
_ENGLISH_DATE = re.compile(
    rf"{_ISO_DATE}"
    rf"|\b{_WEEKDAY}{_DAY}(?:\s+of)?\s+{_MONTH},?\s+{_YEAR}\b{_TIME}"
    rf"|\b{_WEEKDAY}{_MONTH}\s+{_DAY},?\s+{_YEAR}\b{_TIME}"
    rf"|\b(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/{_YEAR}\b{_TIME}",
    re.IGNORECASE,
)
"""English dates with day, month and year: ISO 8601 (with a time), ``[Weekday,] 5 May 2023``, ``[Weekday,]
May 5th, 2023``, ``5/3/2023`` (month first, US order), each optionally followed by ``[at] 4:15 pm``."""
_HAS_YEAR = re.compile(r"(?<!\d)(?:1[5-9]|2[0-9])\d\d(?!\d)|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b")
_HAS_TIME = re.compile(r"\d{1,2}:\d{2}|\b\d{1,2}\s?(?:am|pm|a\.m\.|p\.m\.)", re.IGNORECASE)
_DATE_SETTINGS: dict[str, Any] = {
    "REQUIRE_PARTS": ["day", "month", "year"],
    "RETURN_AS_TIMEZONE_AWARE": False,
}
_SEARCH_SETTINGS: dict[str, Any] = {**_DATE_SETTINGS, "PARSERS": ["absolute-time"]}


def _iso(moment: datetime, text: str) -> str:
    return moment.isoformat(timespec="minutes") if _HAS_TIME.search(text) else moment.date().isoformat()


def _english_dates(text: str) -> list[Entity]:
    import dateparser  # noqa: PLC0415 - dateparser and urlextract (~20 MB) load on first use

    out = []
    for m in _ENGLISH_DATE.finditer(text):
        cleaned = re.sub(r"\bat\b", " ", m.group(), flags=re.IGNORECASE)
        moment = dateparser.parse(cleaned, languages=["en"], date_formats=None, settings=_DATE_SETTINGS)
        if moment is not None:  # e.g. "31 Feb 2020" is refused here
            out.append(
                Entity(
                    type="date", text=m.group(), start=m.start(), end=m.end(), value=_iso(moment, m.group())
                )
            )
    return out


def _searched_dates(text: str, languages: list[str]) -> list[Entity]:
    from dateparser.search import search_dates  # noqa: PLC0415 - lazy

    out = []
    for sentence in sentence_spans(text):
        if not _HAS_YEAR.search(sentence.text):
            continue
        found = search_dates(sentence.text, languages=languages, settings=_SEARCH_SETTINGS) or []
        cursor = 0
        for piece, moment in found:
            at = sentence.text.find(piece, cursor)
            if at < 0 or not _HAS_YEAR.search(piece):
                continue
            cursor = at + len(piece)
            start = sentence.start + at
            out.append(
                Entity(
                    type="date", text=piece, start=start, end=start + len(piece), value=_iso(moment, piece)
                )
            )
    return out


def check_date_languages(languages: Sequence[str]) -> None:
    """Refuse a language dateparser does not know (blocking: the first call imports dateparser, ~10 MB).

    Raises:
        ValueError: ``languages`` names a language dateparser does not know (``Unknown language(s): 'xx'``).
    """
    from dateparser.languages.loader import default_loader  # noqa: PLC0415 - lazy

    default_loader.get_locale_map(languages=list(languages))


def find_dates(text: str, languages: Sequence[str]) -> list[Entity]:
    """Absolute dates and date-times (day, month and year all present); value is ISO 8601.

    English (``en``) uses the strict patterns of :data:`_ENGLISH_DATE`, each parsed by ``dateparser``; other
    languages use ``dateparser.search.search_dates`` restricted as the module docstring says (its matches
    may include a neighbouring word such as ``Le`` or ``am``).

    Raises:
        ValueError: ``languages`` names a language dateparser does not know.
    """
    langs = list(dict.fromkeys(languages))
    check_date_languages(langs)  # ValueError naming unknown codes, before any work
    out = _english_dates(text) if "en" in langs else []
    others = [lang for lang in langs if lang != "en"]
    if others:
        out += _searched_dates(text, others)
    return out


_NAME_WORD = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]+)*")
_CONNECTORS = frozenset({"of", "de", "da", "del", "la", "le", "van", "von", "der", "den", "du", "bin", "al"})
_OPENERS = (
    "yesterday today tomorrow however meanwhile dear hello hi thanks please contact call see visit send "
    "email mail read note ask meet join use try click check ring write tell welcome"
)


def _english_function_words() -> frozenset[str]:
    """YAKE's English stop-word list (~570 function words, shipped in the ``yake`` package)."""
    path = yake_stopwords_dir() / "stopwords_en.txt"
    return frozenset(w.strip() for w in path.read_text(encoding="utf-8").split() if w.strip())


_NAME_STARTS = frozenset({"new", "old", "first", "great", "north", "south", "east", "west", "upper", "lower"})
"""Function words that often begin a name (``New York``, ``First National Bank``): never dropped."""
_SENTENCE_STARTERS = (_english_function_words() | frozenset(_OPENERS.split())) - _NAME_STARTS
"""Capitalised at the start of a sentence, these words are not the start of a name."""


def _is_capitalised(word: str) -> bool:
    return word[0].isupper() and (any(c.islower() for c in word) or len(word) >= 2)


def find_proper_nouns(text: str) -> list[Entity]:
    """Runs of two or more capitalised words (``Ada Lovelace``, ``Bank of England``) — a heuristic.

    A capitalised function word or common opener that starts a sentence (``The``, ``In``, ``Contact``,
    ...) is not part of the name, and runs made only of month and weekday names are skipped.
    """
    out: list[Entity] = []
    run: list[re.Match[str]] = []

    def flush() -> None:
        while run and run[-1].group().lower() in _CONNECTORS:
            run.pop()
        if run:
            at = run[0].start()
            while at > 0 and text[at - 1].isspace():  # back to the character before the run (no copy of
                at -= 1  # text[:at]: per run, that made a text of many short runs quadratic)
            sentence_start = at == 0 or text[at - 1] in '.!?:;"“'
            if sentence_start and run[0].group().lower() in _SENTENCE_STARTERS:
                run.pop(0)
        capitals = [m for m in run if m.group().lower() not in _CONNECTORS]
        if len(capitals) >= 2 and not all(m.group().lower() in _CALENDAR_NAMES for m in capitals):
            start, end = run[0].start(), run[-1].end()
            out.append(Entity(type="proper_noun", text=text[start:end], start=start, end=end))
        run.clear()

    for m in _NAME_WORD.finditer(text):
        word = m.group()
        joined = bool(run) and text[run[-1].end() : m.start()] == " "
        if run and not joined:
            flush()
        if _is_capitalised(word) or (run and word in _CONNECTORS):
            run.append(m)
        elif run:
            flush()
    flush()
    return out

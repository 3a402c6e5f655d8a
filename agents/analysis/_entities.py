"""The ``entity-extractor`` agent: structured entities with their character offsets and normalised values.

The finders live in :mod:`agents.analysis._entity_rules` (one per type). Overlaps are resolved by
:data:`~agents.analysis._entity_rules.ENTITY_TYPES` order: an e-mail address beats the URL inside it, a
phone number beats a date made of the same digits, and any typed entity beats a proper-noun run.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import phonenumbers
from pydantic import BaseModel, Field

from agents.actor import Call
from agents.analysis._base import MAX_LISTED, AnalysisAgent, AnalysisInput, AnalysisOutput, check_chars
from agents.analysis._entity_rules import (
    ENTITY_TYPES,
    Entity,
    EntityType,
    check_date_languages,
    find_dates,
    find_emails,
    find_money,
    find_percentages,
    find_phones,
    find_proper_nouns,
    find_urls,
)
from agents.errors import BadInputError
from agents.limits import text_input_bytes

__all__ = (
    "MAX_ENTITY_TEXT_CHARS",
    "EntitiesInput",
    "EntitiesOutput",
    "EntityExtractorAgent",
    "extract_entities",
    "extract_entities_data",
)

MAX_ENTITY_TEXT_CHARS = 100_000
"""Longest text the entity extractor accepts, in characters (URL and date search are the slow parts:
about 1 s per 100,000 characters of URL-dense text)."""


class EntitiesInput(AnalysisInput):
    """Input of ``entity-extractor``."""

    text: str = Field(min_length=1, description="The text, at most 100,000 characters.")
    types: list[EntityType] | None = Field(
        default=None, min_length=1, description="Only these entity types (all when omitted)."
    )
    region: str = Field(
        default="US",
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166-1 alpha-2 region that phone numbers without a country code belong to.",
    )
    date_languages: list[str] = Field(
        default_factory=lambda: ["en"],
        min_length=1,
        max_length=8,
        description="ISO 639-1 codes of the languages dates are written in.",
    )


class EntitiesOutput(AnalysisOutput):
    """Output of ``entity-extractor``: entities in text order, and counts per type."""

    entities: list[Entity] = Field(description=f"At most {MAX_LISTED}, ordered by ``start``.")
    counts: dict[str, int] = Field(description="Entities found per type (all of them, also past the list).")
    total: int
    summary: str


class _Taken:
    """Character ranges ``[start, end)`` that overlap none of each other, kept sorted.

    Whether a new range overlaps one of them costs a binary search (checking every range held made a text
    dense with entities quadratic: 15 s of 24 for 100,000 characters). Two ranges overlap when each starts
    before the other ends. Sorted by start, ranges that overlap none of each other are sorted by end too, so
    of the ranges starting before a new one ends, only the last can reach past its start.
    """

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._ranges: list[tuple[int, int]] = sorted(ranges)

    def overlaps(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` overlaps a range held."""
        i = bisect.bisect_left(self._ranges, end, key=_start_of)
        return i > 0 and self._ranges[i - 1][1] > start

    def add(self, start: int, end: int) -> None:
        """Hold ``[start, end)``, which must overlap no range held."""
        bisect.insort(self._ranges, (start, end))


def _start_of(span: tuple[int, int]) -> int:
    return span[0]


def _resolve(found: list[Entity]) -> list[Entity]:
    """Drop entities overlapping one of a higher-priority type (or an earlier one of the same type)."""
    rank = {t: i for i, t in enumerate(ENTITY_TYPES)}
    kept: list[Entity] = []
    taken = _Taken()
    for entity in sorted(found, key=lambda e: (rank[e.type], e.start, -(e.end - e.start))):
        if not taken.overlaps(entity.start, entity.end):
            taken.add(entity.start, entity.end)
            kept.append(entity)
    return sorted(kept, key=lambda e: (e.start, e.end))


def extract_entities(inp: EntitiesInput) -> EntitiesOutput:
    """Find the entities of ``inp.text`` (blocking; the agent calls it in a worker thread or process).

    Raises:
        ValueError: dateparser does not know a language of ``inp.date_languages``.
    """
    wanted = set(inp.types or ENTITY_TYPES)
    text = inp.text
    found: list[Entity] = []
    if "email" in wanted or "url" in wanted:
        emails = find_emails(text)
        found += emails if "email" in wanted else []
        # Without this, the domain of an address would count as a URL when only URLs are wanted.
        addresses = _Taken((e.start, e.end) for e in emails)  # (matches of one pattern: none overlap)
        urls = [u for u in find_urls(text) if not addresses.overlaps(u.start, u.end)]
        found += urls if "url" in wanted else []
    if "phone" in wanted:
        found += find_phones(text, inp.region.upper())
    if "money" in wanted:
        found += find_money(text)
    if "percent" in wanted:
        found += find_percentages(text)
    if "date" in wanted:
        found += find_dates(text, inp.date_languages)
    if "proper_noun" in wanted:
        found += find_proper_nouns(text)
    entities = _resolve(found)
    counts: dict[str, int] = dict(Counter(e.type for e in entities))
    summary = ", ".join(f"{n} {t}" for t, n in sorted(counts.items(), key=lambda tn: -tn[1])) or "no entities"
    return EntitiesOutput(entities=entities[:MAX_LISTED], counts=counts, total=len(entities), summary=summary)


def extract_entities_data(inp: EntitiesInput) -> dict[str, Any]:
    """:func:`extract_entities` as JSON-ready data (made in the worker, not on the caller's event loop)."""
    return extract_entities(inp).model_dump()


class EntityExtractorAgent(AnalysisAgent):
    """Finds e-mails, URLs, phone numbers, dates, money, percentages and proper nouns, with offsets.

    A text of :data:`~agents.analysis._base.PROCESS_MIN_CHARS` characters or more is searched in the team's
    worker process (each finder's regular expression is one C call over the whole text, holding the GIL),
    a shorter one in a worker thread (:meth:`~AnalysisAgent.in_worker`).
    """

    name = "entity-extractor"
    description = (
        "Extracts structured entities from text: e-mail addresses, URLs, phone numbers (E.164), dates "
        "(ISO 8601), money amounts, percentages and proper names, each with character offsets."
    )
    capabilities = ("entities", "ner", "extract", "emails", "urls", "phones", "dates", "money", "names")
    input_model: ClassVar[type[BaseModel]] = EntitiesInput
    max_input_bytes = text_input_bytes(MAX_ENTITY_TEXT_CHARS)
    output_model: ClassVar[type[BaseModel]] = EntitiesOutput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Extract the entities of ``text`` (an :class:`EntitiesInput`); return an :class:`EntitiesOutput`.

        Raises:
            TooLargeError: ``text`` is longer than 100,000 characters.
            BadInputError: ``region`` is not a phone region, or ``date_languages`` holds an unknown code.
        """
        inp: EntitiesInput = call.input
        check_chars("text", inp.text, MAX_ENTITY_TEXT_CHARS)
        if inp.region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise BadInputError(f"{inp.region!r} is not a phone-number region (ISO 3166-1)", field="region")
        if inp.types is None or "date" in inp.types:
            try:  # in a worker thread: the first call imports dateparser, which on the event loop stalled it
                await self.in_thread(check_date_languages, inp.date_languages)
            except ValueError as exc:  # "Unknown language(s): 'xx'"
                raise BadInputError(str(exc), field="date_languages") from None
        return await self.in_worker(len(inp.text), extract_entities_data, inp)

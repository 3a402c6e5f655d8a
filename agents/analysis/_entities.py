"""The ``entity-extractor`` agent: structured entities with their character offsets and normalised values.

The finders live in :mod:`agents.analysis._entity_rules` (one per type). Overlaps are resolved by
:data:`~agents.analysis._entity_rules.ENTITY_TYPES` order: an e-mail address beats the URL inside it, a
phone number beats a date made of the same digits, and any typed entity beats a proper-noun run.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

import phonenumbers
from pydantic import BaseModel, Field

from agents.actor import Call
from agents.analysis._base import MAX_LISTED, AnalysisAgent, AnalysisInput, AnalysisOutput, check_chars
from agents.analysis._entity_rules import (
    ENTITY_TYPES,
    Entity,
    EntityType,
    find_dates,
    find_emails,
    find_money,
    find_percentages,
    find_phones,
    find_proper_nouns,
    find_urls,
)
from agents.errors import BadInputError

__all__ = (
    "MAX_ENTITY_TEXT_CHARS",
    "EntitiesInput",
    "EntitiesOutput",
    "EntityExtractorAgent",
    "extract_entities",
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


def _resolve(found: list[Entity]) -> list[Entity]:
    """Drop entities overlapping one of a higher-priority type (or an earlier one of the same type)."""
    rank = {t: i for i, t in enumerate(ENTITY_TYPES)}
    kept: list[Entity] = []
    for entity in sorted(found, key=lambda e: (rank[e.type], e.start, -(e.end - e.start))):
        if all(entity.end <= k.start or entity.start >= k.end for k in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: (e.start, e.end))


def extract_entities(inp: EntitiesInput) -> EntitiesOutput:
    """Find the entities of ``inp.text`` (blocking; the agent calls it in a worker thread).

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
        urls = [u for u in find_urls(text) if all(u.end <= e.start or u.start >= e.end for e in emails)]
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


class EntityExtractorAgent(AnalysisAgent):
    """Finds e-mails, URLs, phone numbers, dates, money, percentages and proper nouns, with offsets."""

    name = "entity-extractor"
    description = (
        "Extracts structured entities from text: e-mail addresses, URLs, phone numbers (E.164), dates "
        "(ISO 8601), money amounts, percentages and proper names, each with character offsets."
    )
    capabilities = ("entities", "ner", "extract", "emails", "urls", "phones", "dates", "money", "names")
    input_model: ClassVar[type[BaseModel]] = EntitiesInput
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
            from dateparser.languages.loader import default_loader  # noqa: PLC0415 - lazy (~10 MB)

            try:
                await self.in_thread(
                    functools.partial(default_loader.get_locale_map, languages=inp.date_languages)
                )
            except ValueError as exc:  # "Unknown language(s): 'xx'"
                raise BadInputError(str(exc), field="date_languages") from None
        out = await self.in_thread(extract_entities, inp)
        return out.model_dump()

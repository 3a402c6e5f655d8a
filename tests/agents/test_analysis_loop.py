"""sentiment and entity-extractor keep long texts off the agents' event loop, with the answers they gave
before (``benchmarks/analysis_stalls.py`` measures the stalls: with two calls in flight, worst loop lags of
110-256 ms before, the work run in threads).

A long text goes to the team's worker process: the agents' process spends a small part of the work's CPU
time on the call (CPU time, not wall time: the machine's load does not move it). The three loops that were
quadratic in the text (sentence splitting, the entity extractor's overlap checks, the proper-noun finder's
look-back) are checked against their old code, kept here as the reference, on generated texts.
"""

from __future__ import annotations

import functools
import gc
import re
import time
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

import agents.analysis._entity_rules as rules
import agents.analysis._text as text_module
from agents import Bus
from agents.analysis import PROCESS_MIN_CHARS, EntitiesInput, EntityExtractorAgent, SentimentAgent
from agents.analysis._entities import _resolve, extract_entities, extract_entities_data
from agents.analysis._entity_rules import ENTITY_TYPES, Entity, find_proper_nouns
from agents.analysis._sentiment import LinearVader, score_sentiment
from agents.analysis._text import _ABBREVIATIONS, sentence_spans
from benchmarks.analysis_stalls import entity_text, prose
from orchestrator import testing
from orchestrator.testing import running

pytestmark = pytest.mark.anyio


def limiters() -> dict[str, Any]:
    return {"limiter": anyio.CapacityLimiter(2), "processes": anyio.CapacityLimiter(1)}


def cpu_of(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.process_time()
    out = fn(*args)
    return out, time.process_time() - started


async def served_cpu(
    bus: Bus, agent: Any, warm_up: dict[str, Any], payload: dict[str, Any]
) -> tuple[Any, float]:
    """The agent's answer to ``payload`` through the orchestrator, and this process's CPU seconds on it.

    ``warm_up`` (long enough for the worker process) is served first: the worker's start is not measured.
    No garbage collection runs here during the call: a full one that the answer's objects may trigger
    scans the whole heap of this test process (0.1-0.3 s once other tests loaded torch), which is not the
    work the test measures.
    """
    async with running(bus, [agent], concurrency=2) as orch:
        await testing.call(orch, agent.name, warm_up, timeout_s=120)
        gc.disable()
        try:
            started = time.process_time()
            out = await testing.call(orch, agent.name, payload, timeout_s=120)
            return out, time.process_time() - started
        finally:
            gc.enable()


async def test_sentiment_scores_a_long_text_in_the_worker_process(bus: Bus) -> None:
    text = prose(200_000)
    score_sentiment("Warm up: load the lexicon here first.", False)
    direct, work_s = cpu_of(score_sentiment, text, False)
    warm_up = {"text": "A fine day. " * (PROCESS_MIN_CHARS // 10)}
    out, spent_s = await served_cpu(
        bus, SentimentAgent(**limiters()), warm_up, {"text": text, "per_sentence": False}
    )
    assert out == direct and out["method"] == "sentence_mean" and out["sentences_total"] > 1_000
    assert spent_s < work_s / 5, f"{spent_s:.3f} s of CPU here for {work_s:.3f} s of VADER"


async def test_entity_extractor_searches_a_long_text_in_the_worker_process(bus: Bus) -> None:
    text = entity_text(100_000)
    extract_entities(EntitiesInput(text="Warm up: mail ada@example.org on 5 May 2023."))
    direct, work_s = cpu_of(extract_entities_data, EntitiesInput(text=text))
    warm_up = {"text": entity_text(PROCESS_MIN_CHARS)}
    out, spent_s = await served_cpu(bus, EntityExtractorAgent(**limiters()), warm_up, {"text": text})
    assert out == direct and out["counts"]["email"] > 300 and out["total"] > 2_000
    assert spent_s < work_s / 5, f"{spent_s:.3f} s of CPU here for {work_s:.3f} s of entity search"


async def test_short_texts_are_answered_alike_in_a_thread_and_in_the_process(bus: Bus) -> None:
    """Both sides of :data:`PROCESS_MIN_CHARS` give the work's own answer."""
    short, long = "I love it. It is awful.", "I love it. It is awful. " * (PROCESS_MIN_CHARS // 20)
    async with running(bus, [SentimentAgent(**limiters())], concurrency=2) as orch:
        answers = [await testing.call(orch, "sentiment", {"text": t}, timeout_s=120) for t in (short, long)]
    assert answers == [score_sentiment(short, True), score_sentiment(long, True)]
    assert len(short) < PROCESS_MIN_CHARS <= len(long)
    assert [x["label"] for x in answers[0]["sentences"]] == ["positive", "negative"]


# The old code of the three loops made linear, as the reference.


def _old_ends_with_abbreviation(text: str, end: int) -> bool:
    head = text[:end].rstrip("\"'”’)]")
    if not head.endswith("."):
        return False
    token = re.split(r"\s", head[:-1])[-1].lower() if head[:-1] else ""
    single_initial = len(token) == 1 and token.isalpha()
    ordinal = 0 < len(token) <= 2 and token.isdigit()
    return token in _ABBREVIATIONS or single_initial or ordinal


def _old_resolve(found: list[Entity]) -> list[Entity]:
    rank = {t: i for i, t in enumerate(ENTITY_TYPES)}
    kept: list[Entity] = []
    for entity in sorted(found, key=lambda e: (rank[e.type], e.start, -(e.end - e.start))):
        if all(entity.end <= k.start or entity.start >= k.end for k in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: (e.start, e.end))


PIECES = st.sampled_from(
    [" ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u2003", ".", "!", "?", "…", '"', "'", "”", ")", "]", "(", "“"]
    + ["a", "B", "e.g.", "i.e.", "Mr.", "Dr", "3", "12", "x", "Ada", "Bank of England", "The", "In", "of"]
)
TEXTS = st.lists(PIECES, max_size=60).map("".join)


def _old_sentence_spans(text: str) -> list[tuple[int, int, str]]:
    """sentence_spans with the old abbreviation check (the rest is the module's own code)."""
    spans: list[tuple[int, int, str]] = []
    start = 0
    for match in text_module._BOUNDARY.finditer(text):
        end = match.end() if match.group().strip() else match.start()
        if match.group().strip() and _old_ends_with_abbreviation(text, end):
            continue
        spans.extend((s.start, s.end, s.text) for s in text_module._trimmed(text, start, end))
        start = match.end()
    spans.extend((s.start, s.end, s.text) for s in text_module._trimmed(text, start, len(text)))
    return spans


@settings(max_examples=400, deadline=None)
@given(text=TEXTS)
def test_sentence_splitting_matches_the_old_abbreviation_check(text: str) -> None:
    assert [(s.start, s.end, s.text) for s in sentence_spans(text)] == _old_sentence_spans(text)


VADER_WORDS = st.sampled_from(
    "not no never so this without doubt least at very kind of sort the shit bomb bad ass yeah right cut "
    "mustard kiss death hand to mouth good great bad awful love hate GOOD HATE but BUT nor or isn't "
    "extremely barely really quite :) :( ! ? fine day rain".split()
    + ["kiss of death", "hand to mouth", "cut the mustard", "the shit", "the bomb", "bad ass", "yeah right"]
    + ["kind of", "sort of", "without doubt", "never so", "never this", "at least", "very least", "no or"]
)
"""VADER's rule words and idioms (negations, boosters, ``least``, ``but``, capitals, its special cases)."""


@settings(max_examples=500, deadline=None)
@given(words=st.lists(VADER_WORDS, max_size=40))
def test_linear_vader_scores_as_upstream_vader(words: list[str]) -> None:
    """The two per-word checks given a window of the words score as upstream's whole-list checks."""
    text = " ".join(words)
    assert _linear_vader().polarity_scores(text) == _upstream_vader().polarity_scores(text)


@functools.cache
def _linear_vader() -> LinearVader:
    return LinearVader()


@functools.cache
def _upstream_vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


SPANS = st.lists(
    st.tuples(st.sampled_from(ENTITY_TYPES), st.integers(0, 60), st.integers(0, 12)), max_size=40
).map(lambda rows: [Entity(type=t, text="x" * n, start=s, end=s + n) for t, s, n in rows])


@settings(max_examples=400, deadline=None)
@given(found=SPANS)
def test_overlap_resolution_matches_the_old_all_pairs_check(found: list[Entity]) -> None:
    assert _resolve(found) == _old_resolve(found)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_proper_nouns_match_the_old_look_back(text: str) -> None:
    """The run's look-back (``text[:at]`` copied and stripped before) gives the same names."""
    assert find_proper_nouns(text) == _old_proper_nouns(text)


def _old_proper_nouns(text: str) -> list[Entity]:
    """find_proper_nouns with the old look-back (the rest is the module's own code)."""
    out: list[Entity] = []
    run: list[re.Match[str]] = []

    def flush() -> None:
        while run and run[-1].group().lower() in rules._CONNECTORS:
            run.pop()
        if run:
            at = run[0].start()
            sentence_start = not text[:at].strip() or text[:at].rstrip()[-1] in '.!?\n:;"“'
            if sentence_start and run[0].group().lower() in rules._SENTENCE_STARTERS:
                run.pop(0)
        capitals = [m for m in run if m.group().lower() not in rules._CONNECTORS]
        if len(capitals) >= 2 and not all(m.group().lower() in rules._CALENDAR_NAMES for m in capitals):
            start, end = run[0].start(), run[-1].end()
            out.append(Entity(type="proper_noun", text=text[start:end], start=start, end=end))
        run.clear()

    for m in rules._NAME_WORD.finditer(text):
        word = m.group()
        joined = bool(run) and text[run[-1].end() : m.start()] == " "
        if run and not joined:
            flush()
        if rules._is_capitalised(word) or (run and word in rules._CONNECTORS):
            run.append(m)
        elif run:
            flush()
    flush()
    return out

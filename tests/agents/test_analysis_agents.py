"""The Analysis team's eight agents on a real nats-server, with the real libraries and the real
all-MiniLM-L6-v2, called through the orchestrator."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import anyio.to_process
import pytest
from pydantic import BaseModel

import agents.analysis as analysis
from agents import BadInputError, Bus, TooLargeError
from agents.analysis import (
    ANALYSIS_AGENTS,
    DEFAULT_LANGUAGES,
    MAX_ENTITY_TEXT_CHARS,
    MAX_TEXT_CHARS,
    KeywordsInput,
    MiniLMEmbedding,
    QualityInput,
    SimilarityAgent,
)
from agents.analysis._code import analyse_code
from agents.analysis._keywords import extract_keyphrases
from agents.analysis._language import detect_in_process
from agents.analysis._quality import critique
from agents.collective import spec_of
from bridges.vault import VaultBridge
from orchestrator import Orchestrator, testing
from orchestrator.testing import running
from tests.agents.conftest import discovered
from vault import MiniLMEmbedder, Vault, VaultConfig

# The per-test timeout bounds each test's own calls, not its set-up: the module's first set-up imports torch
# and loads all-MiniLM-L6-v2 (``embedder``: 6.6 s of CPU, measured), which at a tenth of a core (tests at
# nice 10 beside two busy processes) took over the 120 s of the first test that paid for it.
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(func_only=True)]  # the configured timeout
Team = Callable[[], AbstractAsyncContextManager[Orchestrator]]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    model = MiniLMEmbedder()
    model.load()
    return model


async def warm_worker(fn: Callable[..., object], *args: object) -> None:
    """Start a worker process of the test's event loop with ``fn(*args)``: what an agent's first call loads.

    The first call of a worker-process agent otherwise pays for the worker's start and imports (about 1 s of
    CPU), and lingua's models of the 20 default languages (3.7 s more, measured) or textstat's dictionary
    (0.9 s): at the few percent of a core a starved machine gave the tests, the first calls of the keyword
    extractor, the language detector and the quality critic outlasted their 60 s deadline.
    anyio hands the agent this idle worker, so a call's deadline covers the call's own work. (In the test,
    not in a fixture: a worker started in an async fixture is handed over with its pipes closed.)
    """
    await anyio.to_process.run_sync(fn, *args)


@pytest.fixture
def team(bus: Bus, embedder: MiniLMEmbedder) -> Team:
    """All eight analysis agents (shared thread and process limiters, MiniLM without a vault) for an
    ``async with`` block."""

    def run() -> AbstractAsyncContextManager[Orchestrator]:
        limiter, processes = anyio.CapacityLimiter(2), anyio.CapacityLimiter(1)
        agents = [
            SimilarityAgent(MiniLMEmbedding(embedder), limiter=limiter, processes=processes)
            if cls is SimilarityAgent
            else cls(limiter=limiter, processes=processes)
            for cls in ANALYSIS_AGENTS
        ]
        return running(bus, agents, concurrency=2)

    return run


async def call(orch: Orchestrator, agent: str, payload: dict[str, Any]) -> dict[str, Any]:
    """One call with a deadline that a busy CPU meets (MiniLM, radon, YAKE)."""
    return await testing.call(orch, agent, payload, timeout_s=60)


async def refused(orch: Orchestrator, agent: str, payload: dict[str, Any]) -> BadInputError:
    with pytest.raises(BadInputError) as info:
        await call(orch, agent, payload)
    return info.value


def test_roster_is_eight_distinct_described_agents_with_strict_models() -> None:
    names = [cls.name for cls in ANALYSIS_AGENTS]
    assert names == [
        "sentiment",
        "keyword-extractor",
        "entity-extractor",
        "language-detector",
        "similarity",
        "code-analyzer",
        "statistician",
        "quality-critic",
    ]
    for cls in ANALYSIS_AGENTS:
        spec = spec_of(cls)
        assert spec.team == "analysis" and spec.description.endswith(".") and spec.capabilities
        assert all(c == c.lower() for c in spec.capabilities)
        assert spec.input_schema["additionalProperties"] is False
        assert spec.text_output == "summary" and "summary" in spec.output_schema["properties"]
        assert spec.text_input in spec.input_schema["properties"]
        for model in (cls.input_model, cls.output_model):
            assert model is not None and issubclass(model, BaseModel)
            assert model.model_config.get("frozen") and model.model_config.get("extra") == "forbid"
    assert SimilarityAgent.bridges == ("vault",)
    assert all(cls.bridges == () for cls in ANALYSIS_AGENTS if cls is not SimilarityAgent)
    assert isinstance(analysis.__all__, tuple)
    assert all(hasattr(analysis, name) for name in analysis.__all__)


async def test_sentiment_labels_text_and_sentences(team: Team) -> None:
    text = "I love this phone, the screen is gorgeous! The battery life is terrible. It ships in a box."
    async with team() as orch:
        out = await call(orch, "sentiment", {"text": text})
        love = await call(orch, "sentiment", {"text": "I love this", "per_sentence": False})
        hate = await call(orch, "sentiment", {"text": "This is awful and I hate it."})
        long = await call(orch, "sentiment", {"text": "What a great day. It is raining. " * 700})
        empty = await refused(orch, "sentiment", {"text": ""})
        extra = await refused(orch, "sentiment", {"text": "fine", "mood": "happy"})
        with pytest.raises(TooLargeError) as big:
            await call(orch, "sentiment", {"text": "a" * (MAX_TEXT_CHARS + 1)})
    assert love["label"] == "positive" and love["compound"] >= 0.05 and love["sentences"] == []
    assert hate["label"] == "negative" and hate["compound"] <= -0.05
    assert love["method"] == "whole_text" and long["method"] == "sentence_mean"
    assert long["label"] == "positive" and long["sentences_total"] == 1400 and len(long["sentences"]) == 1400
    labels = [s["label"] for s in out["sentences"]]
    assert labels == ["positive", "negative", "neutral"]
    assert all(text[s["start"] : s["end"]] == s["text"] for s in out["sentences"])
    assert out["most_positive"] == 0 and out["most_negative"] == 1
    assert math.isclose(out["pos"] + out["neu"] + out["neg"], 1.0, abs_tol=0.01)
    assert out["summary"].startswith(out["label"])
    assert empty.field == "text" and extra.field == "mood"
    assert big.value.field == "text" and str(MAX_TEXT_CHARS) in big.value.message


async def test_keyword_extractor_ranks_the_topic_first(team: Team) -> None:
    text = (
        "Solar panels convert sunlight into electricity. Modern solar panels reach twenty percent "
        "efficiency. Installing solar panels on a roof lowers the electricity bill, and solar panels "
        "need little maintenance."
    )
    french = (
        "La tour Eiffel est le monument le plus visité de Paris. Chaque année, des millions de touristes "
        "montent au sommet de la tour Eiffel pour admirer Paris."
    )
    await warm_worker(extract_keyphrases, KeywordsInput(text="Warm up the keyword extractor."))
    async with team() as orch:
        out = await call(orch, "keyword-extractor", {"text": text, "top_k": 5, "max_ngram": 2})
        fr = await call(orch, "keyword-extractor", {"text": french, "language": "fr", "top_k": 3})
        lang = await refused(orch, "keyword-extractor", {"text": text, "language": "xx"})
        top_k = await refused(orch, "keyword-extractor", {"text": text, "top_k": 0})
    phrases = out["keyphrases"]
    assert phrases[0]["phrase"].lower() == "solar panels" and phrases[0]["occurrences"] == 4
    assert len(phrases) <= 5 and all(len(p["phrase"].split()) <= 2 for p in phrases)
    scores = [p["score"] for p in phrases]
    assert scores == sorted(scores)  # lower YAKE score = more relevant, listed first
    assert any("eiffel" in p["phrase"].lower() for p in fr["keyphrases"])
    assert all(p["phrase"].lower() not in {"le", "la", "de"} for p in fr["keyphrases"])
    assert lang.field == "language" and top_k.field == "top_k"


async def test_entity_extractor_finds_typed_entities_with_offsets(team: Team) -> None:
    text = (
        "Contact Ada Lovelace at ada@example.org or +1 650-253-0000 before 12 March 2024. "
        "See https://example.com/pricing: the plan costs $1,500.00 a year, 12.5% off. "
        "He said now is the time."
    )
    async with team() as orch:
        out = await call(orch, "entity-extractor", {"text": text})
        uk = await call(orch, "entity-extractor", {"text": "Ring 020 7946 0958 today.", "region": "GB"})
        only = await call(orch, "entity-extractor", {"text": text, "types": ["email", "url"]})
        german = await call(
            orch,
            "entity-extractor",
            {"text": "Sie kam am 3. März 2021 an.", "date_languages": ["de"], "types": ["date"]},
        )
        region = await refused(orch, "entity-extractor", {"text": text, "region": "ZZ"})
        kind = await refused(orch, "entity-extractor", {"text": text, "types": ["planet"]})
        dates = await refused(orch, "entity-extractor", {"text": text, "date_languages": ["xx"]})
        with pytest.raises(TooLargeError) as big:
            await call(orch, "entity-extractor", {"text": "x" * (MAX_ENTITY_TEXT_CHARS + 1)})
    found = {(e["type"], e["text"]): e for e in out["entities"]}
    for e in out["entities"]:
        assert text[e["start"] : e["end"]] == e["text"]
    email = found[("email", "ada@example.org")]
    assert email["start"] == text.index("ada@") and email["end"] == email["start"] + len("ada@example.org")
    phone = found[("phone", "+1 650-253-0000")]
    assert phone["value"] == "+16502530000" and phone["start"] == text.index("+1 650")
    assert found[("date", "12 March 2024")]["value"] == "2024-03-12"
    assert found[("url", "https://example.com/pricing")]["value"] == "https://example.com/pricing"
    assert found[("money", "$1,500.00")]["value"] == "1500.00 USD"
    assert found[("percent", "12.5%")]["value"] == "0.125"
    assert ("proper_noun", "Ada Lovelace") in found
    assert not any(e["type"] == "date" and "now" in e["text"] for e in out["entities"])
    assert out["counts"]["email"] == 1 and out["total"] == len(out["entities"])
    assert [e["value"] for e in uk["entities"] if e["type"] == "phone"] == ["+442079460958"]
    assert {e["type"] for e in only["entities"]} == {"email", "url"}
    assert [e["value"] for e in german["entities"]] == ["2021-03-03"]
    assert region.field == "region" and kind.field == "types.0" and dates.field == "date_languages"
    assert big.value.field == "text"


async def test_language_detector_names_languages_and_segments(team: Team) -> None:
    await warm_worker(detect_in_process, frozenset(DEFAULT_LANGUAGES), False, "Warm up.", 1, False)
    async with team() as orch:
        fr = await call(orch, "language-detector", {"text": "Bonjour, je voudrais un café et un croissant."})
        de = await call(orch, "language-detector", {"text": "Das Wetter ist heute sehr schön.", "top_k": 2})
        low = await call(
            orch,
            "language-detector",
            {
                "text": "El perro corre por el parque todas las mañanas con su dueño. " * 3,
                "low_accuracy": True,
            },
        )
        mixed = await call(
            orch,
            "language-detector",
            {
                "text": "The weather is lovely today and we are going to the beach with our friends. "
                "Heute regnet es leider den ganzen Tag und wir bleiben zu Hause.",
                "languages": ["en", "de"],
                "mixed": True,
            },
        )
        code = await refused(orch, "language-detector", {"text": "hello", "languages": ["en", "xx"]})
    assert fr["language"] == "fr" and fr["name"] == "French" and fr["confidence"] > 0.5
    assert de["language"] == "de" and len(de["candidates"]) <= 2
    assert sum(c["confidence"] for c in fr["candidates"]) <= 1.0 + 1e-6
    assert low["language"] == "es"
    assert [s["language"] for s in mixed["segments"]] == ["en", "de"]
    assert mixed["segments"][1]["start"] == mixed["segments"][0]["end"]
    assert code.field == "languages.1"


async def test_similarity_ranks_candidates_by_meaning(team: Team) -> None:
    candidates = [
        "The weather will be sunny tomorrow.",
        "To change your login password, open the account settings.",
        "Our cat sleeps on the windowsill.",
    ]
    async with team() as orch:
        ranked = await call(
            orch, "similarity", {"text": "How do I reset my password?", "candidates": candidates}
        )
        pair = await call(
            orch, "similarity", {"text": "The car is fast.", "other": "That automobile is quick."}
        )
        both = await refused(orch, "similarity", {"text": "a", "other": "b", "candidates": ["c"]})
        blank = await refused(orch, "similarity", {"text": "a", "candidates": ["ok", "  "]})
    assert ranked["best"] == 1 and [m["index"] for m in ranked["matches"]][0] == 1
    assert [m["rank"] for m in ranked["matches"]] == [1, 2, 3]
    cosines = [m["cosine"] for m in ranked["matches"]]
    assert cosines == sorted(cosines, reverse=True)
    assert ranked["model"] == "all-MiniLM-L6-v2" and ranked["truncated"] is False
    assert pair["cosine"] > 0.6 and pair["jaccard"] < 0.3  # a paraphrase: same meaning, other words
    assert both.field == "candidates" and blank.field == "candidates.1"


async def test_similarity_shares_the_storage_teams_vault_bridge(
    bus: Bus, embedder: MiniLMEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEURECTOMY_VAULT_KEK", raising=False)
    config = VaultConfig()
    vault = Vault(tmp_path / "vault", config=config, embedder=embedder)
    try:
        bridge = VaultBridge(vault, config, timeout_s=30)
        async with running(bus, [SimilarityAgent(bridge)]) as orch:
            out = await call(orch, "similarity", {"text": "a kitten", "other": "a young cat"})
    finally:
        vault.close()
    assert out["cosine"] > 0.5 and bridge.metrics.op("embed").calls == 1


COMPLEX = '''
import os
from collections import OrderedDict as OD


def simple(x):
    """Return x."""
    return x


def branchy(a, b, *rest, flag=False):
    if a > b:
        for item in rest:
            if item and flag:
                return item
    elif a == b:
        while a:
            a -= 1
    return a or b


class Shape(Base, metaclass=Meta):
    async def area(self):
        return 0
'''


async def test_code_analyzer_measures_python(team: Team) -> None:
    await warm_worker(analyse_code, "x = 1\n")
    async with team() as orch:
        out = await call(orch, "code-analyzer", {"code": COMPLEX})
        syntax = await refused(orch, "code-analyzer", {"code": "def ok():\n    pass\ndef broken(:\n"})
        language = await refused(orch, "code-analyzer", {"code": "let x = 1;", "language": "javascript"})
    functions = {f["qualname"]: f for f in out["functions"]}
    # branchy: if, for, if, `and`, elif, while, `or` are 7 decision points, + 1 = 8 (rank B: 6-10).
    assert functions["simple"]["complexity"] == 1 and functions["simple"]["has_docstring"] is True
    assert functions["branchy"]["complexity"] == 8 and functions["branchy"]["rank"] == "B"
    assert functions["branchy"]["args"] == ["a", "b", "*rest", "flag"]
    assert functions["Shape.area"]["kind"] == "method" and functions["Shape.area"]["is_async"] is True
    assert out["classes"] == [
        {
            "name": "Shape",
            "lineno": 22,
            "endline": 24,
            "bases": ["Base"],
            "methods": ["area"],
            "complexity": 2,
            "rank": "A",
        }
    ]
    assert [(i["module"], i["names"]) for i in out["imports"]] == [
        ("os", []),
        ("collections", ["OrderedDict"]),
    ]
    assert out["max_complexity"] == 8 and 0 < out["maintainability_index"] <= 100
    assert out["raw"]["loc"] == COMPLEX.count("\n") and out["raw"]["sloc"] > 10
    assert syntax.field == "code" and "line 3" in syntax.message
    assert language.field == "language" and "Python" in language.message


async def test_statistician_describes_numbers(team: Team) -> None:
    async with team() as orch:
        out = await call(orch, "statistician", {"values": [2, 4, 4, 4, 5, 5, 7, 9]})
        outlier = await call(orch, "statistician", {"values": [10, 11, 12, 11, 10, 12, 95]})
        text = await call(
            orch, "statistician", {"text": "Sales were 1,200 in May, 1,500 in June and 1,800 in July."}
        )
        nan = await orch_refuses_nan(orch)
        empty = await refused(orch, "statistician", {"values": []})
        none = await refused(orch, "statistician", {"text": "no numbers here"})
        both = await refused(orch, "statistician", {"values": [1], "text": "2"})
    assert out["n"] == 8 and out["mean"] == 5.0 and out["median"] == 4.5
    assert out["pstdev"] == 2.0 and math.isclose(out["variance"], 32 / 7)
    assert out["percentiles"]["p25"] == 4.0 and out["percentiles"]["p75"] == 5.5 and out["iqr"] == 1.5
    assert out["min"] == 2.0 and out["max"] == 9.0
    assert out["outliers"] == [{"index": 7, "value": 9.0, "side": "high"}]  # above p75 + 1.5 IQR = 7.75
    assert outlier["outliers"] == [{"index": 6, "value": 95.0, "side": "high"}]
    assert text["source"] == "text" and text["n"] == 3 and text["mean"] == 1500.0
    assert text["trend"]["slope"] == 300.0 and math.isclose(text["trend"]["r"], 1.0)
    assert nan.field == "values.1"
    assert empty.field == "values" and none.field == "text" and both.field == "values"


async def orch_refuses_nan(orch: Orchestrator) -> BadInputError:
    # JSON has no NaN, but Python's json module writes and reads the NaN literal: the agent must refuse it.
    assert json.dumps({"values": [1.0, float("nan")]}) == '{"values": [1.0, NaN]}'
    return await refused(orch, "statistician", {"values": [1.0, float("nan"), 3.0]})


async def test_quality_critic_scores_and_checks_criteria(team: Team) -> None:
    good = (
        "Our team shipped the new search page on Monday. It loads in half the time of the old one. "
        "Users can now filter results by date and by author. We will add saved searches next month."
    )
    bad = (
        "It is really very basically important to note that the report was written by the committee and "
        "it was reviewed by the managers and it was basically approved by the board after it was discussed "
        "at great length in a meeting that was held on a day that was chosen by the chair of the committee. "
    ) * 2
    await warm_worker(critique, QualityInput(text="Warm up: load the dictionary here first."))
    async with team() as orch:
        high = await call(
            orch,
            "quality-critic",
            {
                "text": good,
                "criteria": {"must_include": ["search"], "max_words": 100, "must_not_include": ["lorem"]},
            },
        )
        low = await call(orch, "quality-critic", {"text": bad, "criteria": {"must_include": ["budget"]}})
        words = await refused(
            orch, "quality-critic", {"text": good, "criteria": {"min_words": 50, "max_words": 10}}
        )
    assert high["score"] > 85 and high["passed"] is True
    assert all(c["passed"] for c in high["criteria"]) and len(high["criteria"]) == 3
    assert low["score"] < 60 < high["score"] and low["passed"] is False
    kinds = {i["kind"] for i in low["issues"]}
    assert {"long_sentence", "passive_voice", "filler", "repetition"} <= kinds
    assert low["penalties"]["criteria"] == 10 and low["suggestions"]
    passive = next(i for i in low["issues"] if i["kind"] == "passive_voice")
    assert bad[passive["start"] : passive["end"]] == "was written"
    assert (
        low["metrics"]["long_sentences"] == 2
        and low["metrics"]["flesch_reading_ease"] < high["metrics"]["flesch_reading_ease"]
    )
    assert words.field == "criteria.min_words"


async def test_quality_critic_scores_in_a_worker_process_not_under_the_agents_interpreter_lock(
    team: Team,
) -> None:
    """textstat is pure Python and keeps the GIL (~1 s to load the CMU dictionary, about as much for a long
    text): run in a thread, it stalled the event loop of the process and the API beside it (``/health``
    over 1 s in ``tests/neurectomy/test_hostile_input.py`` on a loaded machine). The agent's process now
    spends a small part of the scoring's CPU time on a call (CPU time: the machine's load does not move it),
    and the answer is the scoring's own."""
    text = "Aa-" * 60_000  # 180,000 characters
    warm_up = QualityInput(text="Warm up: load the dictionary here first.")
    critique(warm_up)  # textstat's dictionary, here as in the worker: not counted below
    await warm_worker(critique, warm_up)
    async with team() as orch:
        started = time.process_time()  # the agent's first call, in the worker warm_worker started
        served = await call(orch, "quality-critic", {"text": text})
        spent_s = time.process_time() - started
    started = time.process_time()  # the same scoring here (textstat caches per text: not done here yet)
    expected = critique(QualityInput(text=text)).model_dump()
    work_s = time.process_time() - started
    assert served == expected
    assert spent_s < work_s / 10, f"{spent_s:.3f} s of CPU here for {work_s:.3f} s of scoring"


async def test_team_starter_starts_all_eight_and_refuses_unknown_agents(bus: Bus, tmp_path: Path) -> None:
    from neurectomy.server.teams import start_analysis
    from neurectomy.settings import Settings

    settings = Settings(state_dir=tmp_path / "state")
    orch = Orchestrator(bus)
    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="no agent 'nope'")):
        async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
            await start_analysis(settings, stack, bus, tg, agent="nope")
    async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
        await start_analysis(settings, stack, bus, tg)
        expected = {cls.name for cls in ANALYSIS_AGENTS}
        listed = await discovered(orch, lambda agents: expected <= {a.name for a in agents if a.replicas})
        registered = [a for a in listed if a.team == "analysis"]
        stats = await call(orch, "statistician", {"values": [1, 2, 3]})
        similar = await call(
            orch, "similarity", {"text": "hello world", "candidates": ["hi world", "tax law"]}
        )
        tg.cancel_scope.cancel()
    assert sorted(a.name for a in registered) == sorted(cls.name for cls in ANALYSIS_AGENTS)
    assert stats["mean"] == 2.0 and similar["best"] == 0
    assert not (tmp_path / "state").exists()  # the team keeps nothing on disk


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Nothing in the team may reach the network: any socket connect off loopback fails the test."""
    import socket

    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")):
            raise AssertionError(f"network access to {address!r}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield

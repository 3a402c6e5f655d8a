"""The Synthesis team: pure logic (vote and quorum, conversions, verification, aggregation, planning,
built-in plans against the real input models), then the agents on a real nats-server composing real
agents through the orchestrator's Collective (``Orchestrator.collective()``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from agents import BadInputError, Bus, GeneratorAgent, NoRespondersError
from agents.actor import Agent
from agents.collective import AgentSpec, Candidate, Collective, spec_of
from agents.compression import ContextOptimizerAgent
from agents.compression._wire import OptimizeInput
from agents.plans import resolve
from agents.protocol import GenerateInput
from agents.storage import RetrieverAgent, storage_agents
from agents.storage.wire import RetrieveInput
from agents.synthesis import (
    BUILTIN_PLANS,
    SYNTHESIS_AGENT_NAMES,
    SYNTHESIS_AGENTS,
    convert,
    quorum,
    synthesis_agents,
    tally,
    verify,
)
from agents.synthesis import _wire as wire
from agents.synthesis import aggregate as aggregate_items
from bridges import RyotBridge
from bridges.sigma import SigmaBridge
from bridges.vault import VaultBridge
from orchestrator import Orchestrator, testing
from orchestrator.testing import running
from ryot import RyotEngine
from sigmalang import MemoryRSUStore, SigmaCodec
from vault import MiniLMEmbedder, Vault, VaultConfig

pytestmark = pytest.mark.anyio

OTHER_SPECS = (
    AgentSpec(
        "summarizer", "inference", "Summarizes a text into a short summary.", ("summarize",), ("ryot",)
    ),
    AgentSpec(
        "translator",
        "inference",
        "Translates text into another language.",
        ("translate",),
        ("ryot",),
        input_schema={"required": ["text", "target"]},
    ),
    AgentSpec(
        "tokenizer", "inference", "Counts the tokens of a text.", ("tokenize",), ("ryot",), text_output=None
    ),
)


_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set[str]:
    """Lower-case words of ``text`` (with a plural ``s`` dropped)."""
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORD.findall(text.lower())}


def rank(
    specs: Sequence[AgentSpec], goal: str, *, capability: str | None = None, k: int = 3
) -> list[Candidate]:
    """The ``k`` specs sharing most words with ``goal``, best first (ties by name): a stand-in for the
    orchestrator's semantic selection."""
    goal_words = words(goal) | ({capability} if capability else set())
    scored = []
    for spec in specs:
        caps = {w for c in spec.capabilities for w in words(c)}
        capability_hit = (
            1.0 if (capability in spec.capabilities if capability else caps & goal_words) else 0.0
        )
        about = words(f"{spec.name.replace('-', ' ')} {spec.description}") | caps
        semantic = len(goal_words & about) / max(len(goal_words), 1)
        scored.append(
            Candidate(
                agent=spec.name,
                score=round(0.5 * capability_hit + 0.5 * semantic, 4),
                capability=capability_hit,
                semantic=round(semantic, 4),
            )
        )
    scored.sort(key=lambda c: (-c.score, c.agent))
    return scored[:k]


class RankingCollective:
    """A deterministic stand-in for selection (word overlap); it calls no agent."""

    def __init__(self, specs: Sequence[AgentSpec]) -> None:
        self._specs = list(specs)

    def specs(self) -> Sequence[AgentSpec]:
        return self._specs

    async def select(self, goal: str, *, capability: str | None = None, k: int = 3) -> list[Candidate]:
        return rank(self._specs, goal, capability=capability, k=k)

    async def call(self, agent: str, payload: Any, *, parent: Any, timeout_s: float | None = None) -> Any:
        raise AssertionError("the planner calls no agent")

    async def run_plan(self, plan: Any, inputs: Any, *, parent: Any) -> Any:
        raise AssertionError("the planner runs no plan")


def registry() -> list[AgentSpec]:
    return [*(spec_of(a) for a in SYNTHESIS_AGENTS), spec_of(GeneratorAgent), *OTHER_SPECS]


# --- pure logic ---------------------------------------------------------------------------------------


def test_roster_and_agent_declarations() -> None:
    assert SYNTHESIS_AGENT_NAMES == (
        "rag-answerer",
        "planner",
        "aggregator",
        "reporter",
        "consensus",
        "formatter",
        "verifier",
        "workflow-runner",
    )
    for cls in SYNTHESIS_AGENTS:
        spec = spec_of(cls)
        assert spec.team == "synthesis" and spec.description.endswith(".")
        assert spec.capabilities and all(c == c.lower() for c in spec.capabilities)
        assert spec.input_schema["additionalProperties"] is False
        assert spec.text_input is None or spec.text_input in spec.input_schema["properties"]
        assert spec.text_output is None or spec.text_output in spec.output_schema["properties"]
    composers = {cls.name for cls in SYNTHESIS_AGENTS if cls.bridges == ("collective",)}
    assert composers == {"rag-answerer", "planner", "consensus", "workflow-runner"}


def test_vote_accepts_only_a_byzantine_quorum() -> None:
    assert (quorum(4, 1), quorum(7, 2), quorum(10, 1), quorum(1, 0), quorum(3, 0)) == (3, 5, 6, 1, 2)
    agreed = tally(["Paris", "paris.", "  PARIS ", "London"])
    assert (agreed.value, agreed.key, agreed.votes, agreed.f, agreed.quorum) == (
        "Paris",
        "paris",
        {"paris": 3, "london": 1},
        1,
        3,
    )
    split = tally(["Paris", "Paris", "London", "Rome"])  # 2 < 2f+1 = 3
    assert split.value is None and split.votes == {"paris": 2, "london": 1, "rome": 1}
    assert tally(["1,000.0", "1000", "$1000.", "999"]).key == "1000"
    assert tally(["1,000.0", "1000", "$1000.", "999"], numeric=False).value is None
    assert tally(["yes", None, "yes", "yes"]).value == "yes"  # a failed voter is one of the f faulty
    with pytest.raises(BadInputError) as err:
        tally(["a", "a", "a"], f=1)
    assert err.value.field == "f"


def test_formatter_round_trips_and_refusals() -> None:
    data = [{"name": "ada", "langs": ["en", "fr"], "age": 36}, {"name": "bob", "age": 41, "note": "a|b"}]
    as_yaml = convert(data, "yaml")
    assert yaml.safe_load(as_yaml) == data
    assert json.loads(convert(as_yaml, "json", "yaml")) == data
    table = "name,age\nada,36\nbob,41\n"
    assert convert(convert(table, "json", "csv"), "csv", "json") == table
    markdown = convert(data, "markdown").splitlines()
    assert markdown[0] == "| name | langs | age | note |"
    assert markdown[1] == "| --- | --- | ---: | --- |"
    assert markdown[3] == "| bob |  | 41 | a\\|b |"
    assert convert({"a": 1, "b": True}, "text") == "a: 1\nb: true"
    for bad, args in (("{not json", ("json", "json")), ("a,b\n1,2,3\n", ("json", "csv")), (42, ("csv",))):
        with pytest.raises(BadInputError) as err:
            convert(bad, *args)
        assert err.value.field == "data"
    with pytest.raises(BadInputError) as err:
        convert({"a": 1}, "yaml", "json")
    assert err.value.field == "from"


CONTEXT = (
    "The invoice must be paid by Friday or a late fee of 40 euros applies. "
    "Our cat sleeps on the warm windowsill every afternoon."
)


def test_verifier_scores_sentences_by_word_recall_and_numbers() -> None:
    grounded = verify("The invoice must be paid by Friday. A late fee of 40 euros applies.", CONTEXT)
    assert grounded.verdict == "supported" and grounded.supported_ratio == 1.0
    assert grounded.sentences[0].support == 1.0
    assert grounded.sentences[0].best_match == CONTEXT.split(". ")[0] + "."
    wrong_number = verify("A late fee of 50 euros applies. The cats sleep every afternoon.", CONTEXT)
    assert wrong_number.verdict == "partially_supported" and wrong_number.supported_ratio == 0.5
    first, second = wrong_number.sentences
    assert first.support == 1.0 and not first.numbers_ok and not first.supported
    assert second.supported and second.numbers_ok
    invented = verify("Rockets launch from Mars daily.", [CONTEXT])
    assert invented.verdict == "unsupported" and invented.sentences[0].support == 0.0
    strict = verify("The cat sleeps on the roof at night.", CONTEXT, threshold=0.9)
    assert 0.0 < strict.sentences[0].support < 0.9 and strict.verdict == "unsupported"


@pytest.mark.parametrize(
    ("items", "mode", "field", "result", "counts"),
    [
        (
            ["a", "b", "a", " "],
            "concat",
            None,
            "a\n\nb",
            {"items": 4, "kept": 2, "duplicates": 1, "empty": 1},
        ),
        (
            [{"a": 1, "b": {"c": 1}}, {"a": 2, "b": {"d": 2}}],
            "merge",
            None,
            {"a": 2, "b": {"c": 1, "d": 2}},
            {"items": 2, "keys": 2, "conflicts": 1},
        ),
        (
            [{"s": 1}, {"s": 3}, {"s": "x"}, {"t": 1}],
            "mean",
            "s",
            {"mean": 2.0, "median": 2.0, "min": 1.0, "max": 3.0, "sum": 4.0, "stdev": 1.0},
            {"items": 4, "numbers": 2, "skipped": 2},
        ),
        (
            [[1, 2], [2, 3], [{"x": 1}], [{"x": 1}]],
            "union",
            None,
            [1, 2, 3, {"x": 1}],
            {"items": 4, "members": 6, "distinct": 4, "duplicates": 2},
        ),
        (
            [{"v": "x"}, {"v": "y"}, {"v": "y"}, {}],
            "vote",
            "v",
            "y",
            {
                "items": 4,
                "voters": 3,
                "abstained": 1,
                "distinct": 2,
                "winner_votes": 2,
                "share": 2 / 3,
                "tied": 0,
            },
        ),
    ],
)
def test_aggregator_modes(
    items: list[Any], mode: str, field: str | None, result: Any, counts: dict[str, Any]
) -> None:
    out = aggregate_items(wire.AggregateInput.model_validate({"items": items, "mode": mode, "field": field}))
    assert out.result == result and out.counts == counts
    if mode == "merge":
        assert [(c.path, c.values) for c in out.conflicts] == [("a", [1, 2])]


def test_aggregator_refuses_items_that_do_not_fit() -> None:
    with pytest.raises(BadInputError) as err:
        aggregate_items(wire.AggregateInput(items=[{"a": 1}, [1]], mode="merge"))
    assert err.value.field == "items.1"
    with pytest.raises(BadInputError) as err:
        aggregate_items(wire.AggregateInput(items=["x", "y"], mode="mean"))
    assert err.value.field == "items"


def test_builtin_plans_fit_the_real_input_models() -> None:
    rag = BUILTIN_PLANS["rag"]()
    inputs = {"question": "When is the invoice due?", "k": 2, "budget_tokens": 64, "max_tokens": 16}
    hits = [
        {"id": "a", "score": 0.9, "text": "Pay by Friday.", "metadata": {}},
        {"id": "b", "score": 0.4, "text": "Cats nap.", "metadata": {}},
    ]
    outputs: dict[str, Any] = {
        "retrieve": {"hits": hits},
        "context": {"text": "Pay by Friday."},
        "answer": {"text": "By Friday."},
        "verify": {"verdict": "supported"},
    }
    models: dict[str, type[BaseModel]] = {
        "retrieve": RetrieveInput,
        "context": OptimizeInput,
        "answer": GenerateInput,
        "verify": wire.VerifyInput,
    }
    for step in rag.steps:
        models[step.id].model_validate(resolve(step.input, inputs, outputs))
    assert resolve(rag.step("context").input, inputs, outputs)["text"].endswith("Pay by Friday.\n\nCats nap.")
    assert rag.result(inputs, outputs) == {
        "answer": "By Friday.",
        "sources": {"ids": ["a", "b"], "scores": [0.9, 0.4], "texts": ["Pay by Friday.", "Cats nap."]},
        "verification": {"verdict": "supported"},
    }
    vote = BUILTIN_PLANS["consensus"](3)
    assert vote.layers() == [["gen0", "gen1", "gen2"], ["vote"]]
    texts = {f"gen{i}": {"text": "4"} for i in range(3)}
    GenerateInput.model_validate(resolve(vote.step("gen1").input, {"prompt": "2+2?"}, {}))
    wire.ConsensusInput.model_validate(resolve(vote.step("vote").input, {}, texts))
    report = BUILTIN_PLANS["report"]()
    assert report.layers()[0] == ["sentiment", "keywords", "entities", "language", "quality"]
    step_outputs: dict[str, Any] = {s: None for s in report.layers()[0]}
    wire.ReportInput.model_validate(resolve(report.step("report").input, {"text": "x"}, step_outputs))


# --- over NATS ----------------------------------------------------------------------------------------

Team = Callable[..., AbstractAsyncContextManager[Orchestrator]]


def make_collective(bus: Bus, agents: Sequence[type[Agent]]) -> Collective:
    """The orchestrator as the Collective, over a registry of ``agents`` (lexical selection)."""
    return Orchestrator(bus, specs=[spec_of(a) for a in agents], semantic=False).collective()


@pytest.fixture
def team(bus: Bus) -> Team:
    """The eight synthesis agents (and any ``extra`` agents) on the bus, for an ``async with`` block;
    ``registered`` kinds are listed in the registry without running."""

    def run(
        *extra: Agent, registered: Sequence[type[Agent]] = ()
    ) -> AbstractAsyncContextManager[Orchestrator]:
        kinds = [*SYNTHESIS_AGENTS, *(type(a) for a in extra), *registered]
        collective = make_collective(bus, kinds)
        return running(bus, [*synthesis_agents(collective), *extra], concurrency=4)

    return run


async def call(orch: Orchestrator, agent: str, payload: dict[str, Any]) -> dict[str, Any]:
    """One call in tenant ``acme`` with a 30 s deadline."""
    return await testing.call(orch, agent, payload, tenant="acme", timeout_s=30)


WORKFLOW = """
name: format-then-check
steps:
  - id: fmt
    agent: formatter
    input: {data: "${input.record}", to: text}
  - id: check
    agent: verifier
    input: {answer: "${input.claim}", context: "${steps.fmt.text}"}
output: {text: "${steps.fmt.text}", verdict: "${steps.check.verdict}"}
"""


async def test_workflow_runner_runs_a_yaml_plan_over_nats(team: Team) -> None:
    record = {"city": "Paris", "population": 2102650}
    async with team() as orch:
        good = await call(
            orch,
            "workflow-runner",
            {"plan": WORKFLOW, "input": {"record": record, "claim": "The city is Paris."}},
        )
        bad = await call(
            orch,
            "workflow-runner",
            {"plan": WORKFLOW, "input": {"record": record, "claim": "The population is 3000000."}},
        )
        broken = await call(orch, "workflow-runner", {"plan": WORKFLOW, "input": {"claim": "x"}})
        with pytest.raises(BadInputError) as err:
            await call(
                orch,
                "workflow-runner",
                {"plan": {"steps": [{"id": "a", "agent": "formatter"}, {"id": "b", "input": {}}]}},
            )
        with pytest.raises(BadInputError) as cycle:
            await call(orch, "workflow-runner", {"plan": "steps: [{id: a, agent: x, input: '${steps.a.y}'}]"})
    assert good["status"] == "succeeded" and good["plan"] == "format-then-check"
    assert good["output"] == {"text": "city: Paris\npopulation: 2102650", "verdict": "supported"}
    assert [s["status"] for s in good["steps"]] == ["succeeded", "succeeded"]
    assert bad["output"]["verdict"] == "unsupported"
    assert broken["status"] == "failed" and broken["steps"][0]["status"] == "failed"
    assert broken["error"]["code"] == "bad_request" and "input.record" in broken["error"]["message"]
    assert err.value.field == "plan.steps.1" and "agent" in err.value.message
    assert cycle.value.field is not None and cycle.value.field.startswith("plan")


async def test_consensus_aggregator_reporter_and_verifier_over_nats(team: Team) -> None:
    async with team() as orch:
        vote = await call(orch, "consensus", {"candidates": ["42", "42.0", " 42 ", "forty"]})
        no_quorum = await call(orch, "consensus", {"candidates": ["a", "b", "a", "c"]})
        with pytest.raises(BadInputError) as err:
            await call(orch, "consensus", {"candidates": ["a", "a", "a"], "f": 1})
        merged = await call(
            orch, "aggregator", {"items": [{"a": {"b": 1}}, {"a": {"c": 2}}], "mode": "merge"}
        )
        report = await call(
            orch,
            "reporter",
            {
                "title": "Run",
                "sections": [
                    {"heading": "Votes", "content": vote["votes"]},
                    {"heading": "Merged", "content": merged["result"]},
                ],
            },
        )
        check = await call(orch, "verifier", {"answer": "The fee is 40 euros.", "context": CONTEXT})
        converted = await call(orch, "formatter", {"data": "a,b\n1,2\n", "from": "csv", "to": "json"})
        with pytest.raises(BadInputError) as unparseable:
            await call(orch, "formatter", {"data": "a: [", "from": "yaml", "to": "json"})
    assert vote == {
        "value": "42",
        "key": "42",
        "votes": {"42": 3, "forty": 1},
        "quorum": 3,
        "agreed": True,
        "n": 4,
        "f": 1,
        "candidates": ["42", "42.0", " 42 ", "forty"],
        "failed": 0,
    }
    assert no_quorum["agreed"] is False and no_quorum["value"] is None
    assert err.value.field == "f"
    assert merged["result"] == {"a": {"b": 1, "c": 2}} and merged["conflicts"] == []
    assert report["markdown"].startswith("# Run\n\n## Votes\n\n| Key | Value |") and report["sections"] == 2
    assert check["verdict"] == "supported"
    assert json.loads(converted["text"]) == [{"a": "1", "b": "2"}] and converted["to"] == "json"
    assert unparseable.value.field == "data"


async def test_planner_over_nats_and_a_missing_analysis_team_leaves_report_sections_empty(team: Team) -> None:
    async with team() as orch:
        planned = await call(orch, "planner", {"goal": "Convert the data to YAML format."})
        report = await call(
            orch,
            "workflow-runner",
            {"plan": BUILTIN_PLANS["report"]().model_dump(mode="json"), "input": {"text": "Cats are great."}},
        )
    assert planned["status"] == "planned" and planned["builtin"] is None
    assert planned["plan"]["steps"][0]["agent"] == "formatter"
    assert planned["plan"]["steps"][0]["input"]["to"] == "yaml" and planned["rationale"][0]["needs"] == []
    assert report["status"] == "succeeded"
    steps = {s["id"]: s for s in report["steps"]}
    assert steps["report"]["status"] == "succeeded"
    assert steps["sentiment"]["error"]["code"] in ("no_responders", "not_found")
    assert "## Sentiment\n\n_No result._" in report["output"]["markdown"]


async def test_rag_answerer_reports_the_failed_step_with_its_code(team: Team) -> None:
    async with team(registered=(RetrieverAgent,)) as orch:
        with pytest.raises(NoRespondersError) as err:
            await call(orch, "rag-answerer", {"question": "When is the invoice due?"})
        with pytest.raises(BadInputError) as bad:
            await call(orch, "rag-answerer", {"question": "x", "k": 0})
    assert "step 'retrieve' (retriever)" in err.value.message
    assert bad.value.field == "k"


DOCS = [
    "The invoice must be paid by Friday or a late fee of 40 euros applies.",
    "Our cat sleeps on the warm windowsill every afternoon.",
    "The database migration failed because a column was missing.",
]


async def test_rag_answerer_and_consensus_with_the_real_engine_and_vault(
    team: Team, engine: RyotEngine, tmp_path: Path
) -> None:
    """retriever (FAISS + MiniLM), context-optimizer (ΣLANG) and generator (Gemma 3 270M) for real."""
    config = VaultConfig(max_record_bytes=4096, max_batch=64)
    vault = Vault(tmp_path / "vault", config=config, embedder=MiniLMEmbedder())
    try:
        async with SigmaBridge(SigmaCodec(store=MemoryRSUStore())) as sigma:
            vault_bridge = VaultBridge(vault, config, timeout_s=30)
            others = [
                *storage_agents(vault_bridge, snapshot_dir=tmp_path / "snap"),
                ContextOptimizerAgent(sigma),
                GeneratorAgent(RyotBridge(engine)),
            ]
            async with team(*others) as orch:
                await testing.call(
                    orch,
                    "archivist",
                    {"records": [{"id": f"d{i}", "text": t} for i, t in enumerate(DOCS)]},
                    tenant="acme",
                )
                answer = await call(
                    orch,
                    "rag-answerer",
                    {"question": "When must the invoice be paid?", "k": 2, "max_tokens": 24},
                )
                vote = await call(
                    orch,
                    "consensus",
                    {"prompt": "The capital of France is", "n": 4, "temperature": 0.0, "max_tokens": 4},
                )
    finally:
        vault.close()
    assert [s["id"] for s in answer["sources"]][0] == "d0" and len(answer["sources"]) == 2
    assert answer["answer"] and [s["id"] for s in answer["steps"]] == [
        "retrieve",
        "context",
        "answer",
        "verify",
    ]
    assert all(s["status"] == "succeeded" for s in answer["steps"])
    assert answer["verification"]["verdict"] in ("supported", "partially_supported", "unsupported")
    assert "Friday" in answer["steps"][1]["output"]["text"]
    assert vote["n"] == 4 and vote["failed"] == 0 and len(vote["candidates"]) == 4
    assert vote["agreed"] is True and vote["votes"] == {vote["key"]: 4}  # greedy decoding: one answer

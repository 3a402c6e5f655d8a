"""The planner on the real roster and the real routing encoder (no NATS): plans, payloads, refusals."""

from __future__ import annotations

import pytest

from agents.errors import BadInputError
from agents.intent import parse_goal
from agents.plans import dependencies, parse_plan, resolve
from agents.roster import AGENTS_BY_TEAM, HELPERS, ROSTER, ROSTER_SIZE
from agents.synthesis import BUILTIN_PLANS, GoalPlanner
from agents.synthesis._planner import goal_planner

HELIOTROPE = (
    "Store the note 'the launch code word is heliotrope' and then tell me what the launch code word is."
)


@pytest.fixture(scope="module")
def planner() -> GoalPlanner:
    return goal_planner(ROSTER)


def agents_of(out: dict[str, object] | object) -> list[str]:
    plan = parse_plan(out.plan)  # type: ignore[attr-defined]
    return [s.agent or "" for s in plan.steps]


def test_the_roster_is_forty_agents_eight_per_team_and_the_embedder_is_internal() -> None:
    assert len(ROSTER) == ROSTER_SIZE == 40
    assert {team: len(classes) for team, classes in AGENTS_BY_TEAM.items()} == dict.fromkeys(
        AGENTS_BY_TEAM, 8
    )
    assert "embedder" not in {s.name for s in ROSTER}
    assert [cls.name for cls in HELPERS] == ["embedder"]


def test_store_then_ask_is_archivist_then_rag_answerer_with_the_fact_as_payload(planner: GoalPlanner) -> None:
    out = planner.plan(HELIOTROPE)
    assert out.status == "planned" and out.builtin is None
    plan = parse_plan(out.plan)
    store, ask = plan.steps
    assert (store.agent, ask.agent) == ("archivist", "rag-answerer")
    assert dependencies(ask) == {store.id}  # asked only once the note is stored
    stored = resolve(store.input, out.input, {})
    assert stored == {"records": [{"text": "the launch code word is heliotrope"}]}
    question = resolve(ask.input, out.input, {})["question"]
    assert "heliotrope" not in question and "launch code word" in question


def test_a_vague_or_foreign_goal_needs_clarification_with_candidates(planner: GoalPlanner) -> None:
    for goal in ("Do the thing.", "Make it better", "Book me a flight to Lisbon"):
        out = planner.plan(goal)
        assert out.status == "needs_clarification", (goal, out)
        assert out.plan == {} and out.reason
        assert out.rationale and len(out.rationale[0].candidates) >= 3


def test_the_payload_is_not_the_instruction(planner: GoalPlanner) -> None:
    text = "The committee met on Monday and agreed to postpone the vote until March."
    out = planner.plan(f"Summarize the following text: {text}")
    assert agents_of(out) == ["summarizer"]  # "vote" in the payload does not make it a consensus plan
    step = parse_plan(out.plan).steps[0]
    assert resolve(step.input, out.input, {}) == {"text": text}
    para = planner.plan(f"Give me a full analysis report of the letter below.\n\n{text}")
    assert para.builtin == "report" and para.input["text"] == text


def test_parameters_go_into_the_step_inputs(planner: GoalPlanner) -> None:
    out = planner.plan("Translate 'good morning' into German, then count the tokens")
    translate, count = parse_plan(out.plan).steps
    assert (translate.agent, count.agent) == ("translator", "tokenizer")
    assert resolve(translate.input, out.input, {}) == {"text": "good morning", "target": "German"}
    assert count.input == {"text": "${steps.s1-translator.translation}"}
    labels = planner.plan("Classify this ticket as bug, feature or question: the app crashes on save")
    assert parse_plan(labels.plan).steps[0].input["labels"] == ["bug", "feature", "question"]
    fit = planner.plan("Trim this context to a budget of 300 tokens: " + "word " * 50)
    assert parse_plan(fit.plan).steps[0].input["budget_tokens"] == 300
    fetch = planner.plan("Fetch the record with id note-7")
    assert parse_plan(fetch.plan).steps[0].input == {"id": "note-7"}


def test_a_missing_required_parameter_is_a_question_not_a_guess(planner: GoalPlanner) -> None:
    out = planner.plan("Translate this paragraph: Bonjour tout le monde.")
    assert out.status == "needs_clarification" and "target" in (out.reason or "")


def test_builtin_plans_are_chosen_by_meaning(planner: GoalPlanner) -> None:
    rag = planner.plan("What do our stored documents say about the database migration?")
    assert rag.builtin == "rag" and parse_plan(rag.plan) == BUILTIN_PLANS["rag"]()
    assert rag.input["question"].startswith("What do our stored") and rag.input["k"] == 4
    vote = planner.plan("Ask the model four times and go with the answer most of them agree on")
    assert vote.builtin == "consensus"


def test_numbered_lists_split_into_chained_steps(planner: GoalPlanner) -> None:
    out = planner.plan("1. extract the keywords\n2. format them as yaml")
    assert agents_of(out) == ["keyword-extractor", "formatter"]
    with pytest.raises(BadInputError) as err:
        planner.plan("1. summarize\n2. translate to French\n3. count the tokens", max_steps=2)
    assert err.value.field == "max_steps"


def test_a_long_goal_with_unclosed_quotes_is_taken_apart_whole() -> None:
    # 20,000 unclosed quotes: the pathological case for backtracking regexes (its time is measured by
    # benchmarks/planning.py; the per-test timeout catches a quadratic split)
    goal = "Summarize this: " + "a 'b " * 20_000
    parsed = parse_goal(goal)
    assert [s.instruction for s in parsed.subgoals] == ["Summarize this"]
    assert parsed.payload is not None and parsed.payload.count("'") == 20_000

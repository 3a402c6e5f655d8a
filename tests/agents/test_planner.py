"""The planner on the real roster and the real routing encoder (no NATS): plans, payloads, refusals."""

from __future__ import annotations

import json

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


def test_single_typos_are_repaired_against_the_examples_vocabulary_but_real_words_are_kept() -> None:
    from agents.intent._spelling import Speller

    speller = Speller(["Summarize the text", "Translate this", "Show the stats", "Process refunds"])
    assert speller.correct("sumarize it and tranlsate it") == "summarize it and translate it"
    assert speller.correct("stash it") == "stash it"  # a substitution turns one real word into another
    assert speller.correct("one refund") == "one refund"  # a letter at the end: an inflection
    assert speller.correct("summerize it") == "summarize it"  # a substitution in a long word: a typo


def test_a_misspelt_verb_still_routes_to_its_agent(planner: GoalPlanner) -> None:
    out = planner.plan("sumarize this: Cats sleep a lot and hunt at night.")
    assert out.status == "planned", out
    assert agents_of(out) == ["summarizer"]


def test_a_request_to_plan_steps_is_one_planner_step_not_the_steps(planner: GoalPlanner) -> None:
    out = planner.plan("Work out a plan to extract the keywords and then translate them, but don't run it.")
    assert out.status == "planned", out
    assert agents_of(out) == ["planner"]


def test_a_greeting_and_a_question_in_two_sentences_are_one_chat_request(planner: GoalPlanner) -> None:
    out = planner.plan("Hi there! Shall we chat for a while?")
    assert out.status == "planned", out
    assert agents_of(out) == ["chat"]


def test_negated_labels_and_for_me_are_read_right(planner: GoalPlanner) -> None:
    out = planner.plan("Is 'free money inside, act now' junk or not junk?")
    assert out.status == "planned", out
    (step,) = parse_plan(out.plan).steps
    assert step.agent == "classifier"
    assert resolve(step.input, out.input, {})["labels"] == ["junk", "not junk"]
    unclear = planner.plan("Translate this for me: Guten Tag")  # "me" is not a language: which target?
    assert unclear.status == "needs_clarification" and "target" in (unclear.reason or ""), unclear


def test_the_lead_verb_weight_is_chosen_by_leave_one_out_over_the_examples(planner: GoalPlanner) -> None:
    from agents.intent._router import _LEAD_WEIGHTS

    assert planner.router.lead_weight in _LEAD_WEIGHTS
    assert 0.5 < planner.router.loo_accuracy <= 1.0


def test_a_close_runner_up_whose_parameter_the_goal_states_is_chosen(planner: GoalPlanner) -> None:
    from agents.intent import NONE, Route
    from agents.synthesis._forms import stated_runner_up

    goal = "put 'good night' into Portuguese"
    parsed = parse_goal(goal, verbs=planner.verbs)
    (sub,) = parsed.subgoals

    def states(name: str) -> bool:
        return planner._states(name, sub, parsed)

    close = Route((("language-detector", 0.6), ("translator", 0.55), ("sentiment", 0.3)), 0.6)
    assert stated_runner_up(planner.router, close, states, planner._takes).best == "translator"
    far = Route((("language-detector", 0.7), ("translator", 0.55), ("sentiment", 0.3)), 0.6)
    assert stated_runner_up(planner.router, far, states, planner._takes) is far
    refused = Route(((NONE, 0.6), ("translator", 0.55), ("sentiment", 0.3)), 0.0)
    lifted = stated_runner_up(planner.router, refused, states, planner._takes)
    assert lifted.best == "translator" and 0.0 < lifted.confidence < 1.0
    unstated = parse_goal("put 'good night' into another language", verbs=planner.verbs)
    assert not planner._states("translator", unstated.subgoals[0], unstated)
    out = planner.plan("Do you know how to say 'good morning' in Swedish?")
    (step,) = parse_plan(out.plan).steps
    assert step.agent == "translator" and resolve(step.input, out.input, {})["target"] == "Swedish"


def test_semicolons_inside_tokens_do_not_split_but_between_steps_do() -> None:
    assert len(parse_goal("tl;dr please: the meeting ran long and nothing was decided").subgoals) == 1
    assert len(parse_goal("summarize it; then count its tokens").subgoals) == 2


def test_inline_step_markers_are_steps_not_a_colon_payload(planner: GoalPlanner) -> None:
    goal = "Step 1: find the keywords. Step 2: format them as YAML.\n\nSolar power is cheap and clean."
    out = planner.plan(goal)
    assert agents_of(out) == ["keyword-extractor", "formatter"], out
    out = planner.plan("(1) find the keywords (2) format them as YAML\n\nSolar power is cheap and clean.")
    assert agents_of(out) == ["keyword-extractor", "formatter"], out


def test_json_in_a_goal_is_payload_whole(planner: GoalPlanner) -> None:
    data = '{"name": "x", "tags": [1, 2], "inner": {"a": "b: c"}}'
    parsed = parse_goal(f"Convert this JSON to YAML: {data}")
    assert parsed.quotes == (data,) and len(parsed.subgoals) == 1
    out = planner.plan(f"Could you turn this into YAML? {data}")
    (step,) = parse_plan(out.plan).steps
    assert step.agent == "formatter" and resolve(step.input, out.input, {})["data"] == data
    assert parse_goal("{" * 50_000 + " summarize").subgoals  # unclosed braces: a bounded number of tries
    assert parse_goal("summarize " + "[" * 9_000).subgoals  # nested deeper than the decoder recurses


def test_context_before_a_request_is_not_a_step(planner: GoalPlanner) -> None:
    mail = "Dear shop, my order came late and the box was crushed. I want a refund. Regards, Sam"
    goal = (
        "Good afternoon. Our team answers lots of customer mail and we want to know how people feel. "
        f"Could you tell me whether this message is positive or negative? {mail}"
    )
    out = planner.plan(goal)
    (step,) = parse_plan(out.plan).steps
    assert step.agent == "sentiment" and "crushed" in json.dumps(resolve(step.input, out.input, {}))
    goal = (
        "My laptop keeps losing its settings and my colleague suggested it, so could you please write a "
        "bash script that backs up my dotfiles?"
    )
    assert agents_of(planner.plan(goal)) == ["coder"]
    goal = "A friend forwarded this and I can't make sense of it. What is the sentiment? The soup was cold."
    assert agents_of(planner.plan(goal)) == ["sentiment"]  # a statement before a request is context
    goal = (
        "I would like you to first detect the language of 'Merci', and after that translate it into English."
    )
    assert agents_of(planner.plan(goal)) == ["language-detector", "translator"]
    steps = planner.plan("Book a flight to Rome. Then summarize this: the flight was late.")
    assert steps.status == "needs_clarification"  # a marked step outside the collective is no context


def test_statements_after_a_request_that_points_at_a_text_are_its_payload(planner: GoalPlanner) -> None:
    goal = (
        "How good is the writing in this paragraph? The council met on Tuesday. It approved a plan for "
        "new bike lanes. Shop owners are worried."
    )
    out = planner.plan(goal)
    (step,) = parse_plan(out.plan).steps
    assert step.agent == "quality-critic" and "Shop owners" in json.dumps(resolve(step.input, out.input, {}))
    two = planner.plan("Summarize this text. Translate it into French.\n\nThe cat slept all day.")
    assert agents_of(two) == ["summarizer", "translator"]  # an instruction verb is a step, not payload


def test_capability_cues_meet_whole_words_not_shared_prefixes(planner: GoalPlanner) -> None:
    from agents.intent._router import _cue_key

    assert _cue_key("summarise") == _cue_key("summarize") and _cue_key("tokens") == _cue_key("token")
    assert _cue_key("short") != _cue_key("shorten")
    assert agents_of(planner.plan("Give me a short poem about the rain")) == ["generator"]


def test_the_form_of_a_request_chooses_between_close_classes(planner: GoalPlanner) -> None:
    from agents.intent import Route
    from agents.synthesis._forms import analysis_report, answer_or_search

    near = Route((("reporter", 0.6), ("plan:report", 0.58), ("sentiment", 0.3)), 0.6)
    assert analysis_report(near, "analyse this text and write a report").best == "plan:report"
    assert analysis_report(near, "lay these findings out as a report").best == "reporter"
    store = Route((("retriever", 0.6), ("fetcher", 0.59), ("rag-answerer", 0.57)), 0.5)
    assert answer_or_search(store, "from my notes, when is the dentist?").best == "rag-answerer"
    assert answer_or_search(store, "look up stored passages on parking").best == "retriever"
    far = Route((("retriever", 0.7), ("rag-answerer", 0.5)), 0.5)
    assert answer_or_search(far, "when is the dentist?") is far
    out = planner.plan("analyse this text and write a report: The launch went well and sales rose.")
    assert out.builtin == "report"


def test_labels_in_a_question_tail_are_read_without_its_quote(planner: GoalPlanner) -> None:
    out = planner.plan(
        "Is this ticket about billing, delivery or account access? 'I never got my parcel, sadly'"
    )
    (step,) = parse_plan(out.plan).steps
    inp = resolve(step.input, out.input, {})
    assert step.agent == "classifier" and inp["labels"] == ["billing", "delivery", "account access"]


def test_a_statement_and_the_request_after_it_for_the_same_agent_are_one_step(planner: GoalPlanner) -> None:
    out = planner.plan("Our KEK is a year old; rotate it.")
    assert out.status == "planned" and agents_of(out) == ["key-warden"]
    two = planner.plan("Rotate the key encryption key; then rotate it again.")  # two requests stay two
    assert agents_of(two) == ["key-warden", "key-warden"]


def test_a_stated_record_id_is_evidence_for_the_fetcher_unless_the_best_takes_it_too(
    planner: GoalPlanner,
) -> None:
    out = planner.plan("Pull record runbook-42 out of the vault.")
    (step,) = parse_plan(out.plan).steps
    assert step.agent == "fetcher" and resolve(step.input, out.input, {})["id"] == "runbook-42"
    for goal in ("permanently remove record old-42 from storage", "Get rid of record key-note-1 for good."):
        assert agents_of(planner.plan(goal)) == ["eraser"], goal  # the eraser takes the id as well
    assert planner._takes("eraser") and planner._takes("fetcher") and not planner._takes("entity-extractor")


def test_and_between_confident_requests_for_different_agents_is_two_steps(planner: GoalPlanner) -> None:
    goal = "Extract the entities from this email and save them in the vault: Hi Tom, call me on 4 May."
    assert agents_of(planner.plan(goal)) == ["entity-extractor", "archivist"]
    one = planner.plan("Write a story and make it funny.")  # the second half is no request of its own
    assert agents_of(one) == ["generator"]


def test_the_main_clause_names_what_a_request_makes(planner: GoalPlanner) -> None:
    out = planner.plan("Write a regex in Python that matches email addresses.")
    (step,) = parse_plan(out.plan).steps
    assert step.agent == "coder" and step.input["language"] == "python"
    task = resolve(step.input, out.input, {})["task"]
    assert "email addresses" in task  # the clause is still part of the task
    assert agents_of(planner.plan("Find the email addresses in this text that mention Tom: tom@x.io")) == [
        "entity-extractor"
    ]


def test_a_trailing_constraint_is_a_parameter_of_the_request_not_payload(planner: GoalPlanner) -> None:
    out = planner.plan(
        "Summarize this article. It should be under 50 words.\n\nThe ferry left at dawn. Gulls followed it."
    )
    (step,) = parse_plan(out.plan).steps
    inp = resolve(step.input, out.input, {})
    assert step.agent == "summarizer" and inp["max_words"] == 50
    assert inp["text"] == "The ferry left at dawn. Gulls followed it."  # the constraint is not summarized
    poem = planner.plan("Write a poem about the sea. It should be short.")
    (gen,) = parse_plan(poem.plan).steps
    assert gen.agent == "generator"  # not a summary of the poem
    assert resolve(gen.input, poem.input, {})["prompt"].startswith(
        "Write a poem about the sea. It should be short"
    )


def test_a_leading_statement_before_a_semicolon_is_context_not_a_step(planner: GoalPlanner) -> None:
    goal = "This design doc is too long for the prompt; cut it down to 40 tokens: The service reads events."
    out = planner.plan(goal)
    (step,) = parse_plan(out.plan).steps
    assert step.agent == "context-optimizer" and resolve(step.input, out.input, {})["budget_tokens"] == 40
    two = planner.plan("Summarize this; then translate it into German.\n\nThe service reads events.")
    assert agents_of(two) == ["summarizer", "translator"]  # a request before a semicolon is a step


def test_a_goal_naming_stored_material_reads_the_store_in_the_form_it_asks(planner: GoalPlanner) -> None:
    question = planner.plan("Using the docs we saved, what is the batch size of the ingest service?")
    assert question.builtin == "rag"  # a question answered from the store
    assert planner.plan("From what I saved, when do the parking permits have to be renewed?").builtin == "rag"
    assert agents_of(planner.plan("which of my saved notes talk about invoices?")) == ["retriever"]
    search = planner.plan("You can find for me the notes I saved about the holiday?")  # a search verb
    assert agents_of(search) == ["retriever"]
    summary = planner.plan("Summarize this note I saved: the ferry leaves at six and costs ten euros.")
    assert agents_of(summary) == ["summarizer"]  # a request far from the store's agents keeps its agent


def test_a_known_verb_of_other_classes_outweighs_a_capability_word_in_its_material(
    planner: GoalPlanner,
) -> None:
    out = planner.plan("Write a short release note announcing that exports to CSV are now 3x faster.")
    assert agents_of(out) == ["generator"]  # "write" is no verb of the formatter's examples; CSV is material
    assert agents_of(planner.plan('Convert this config to YAML: {"a": 1}')) == ["formatter"]
    assert agents_of(planner.plan("Write a regex in Python that matches email addresses.")) == ["coder"]


def test_a_question_about_the_world_that_no_agent_fits_is_the_generators(planner: GoalPlanner) -> None:
    for goal in ("What is a monad?", "Explain what a mutex is.", "What is a hash table?"):
        assert agents_of(planner.plan(goal)) == ["generator"], goal
    assert agents_of(planner.plan("What is the WAL size right now?")) == ["vault-stats"]  # the router is sure
    assert agents_of(planner.plan("What is the sentiment of this review? 'great'")) == ["sentiment"]
    live = planner.plan("What's the exchange rate of the dollar today?")  # a live fact: no agent has it
    assert live.status == "needs_clarification"


def test_given_answers_are_voted_on_and_a_question_alone_is_sampled(planner: GoalPlanner) -> None:
    assert planner.plan("ask several times and vote: what is 17 times 3?").builtin == "consensus"
    voted = planner.plan("Which answer wins the majority: '42', '42', '41'")
    (step,) = parse_plan(voted.plan).steps
    assert step.agent == "consensus" and len(step.input["candidates"]) == 3

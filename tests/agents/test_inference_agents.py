"""The Inference team's agents on a real nats-server and the real Gemma 3 270M, called through the
orchestrator. Completions stay short (a few tokens) so the file runs quickly on a busy CPU."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

import agents.inference as inference
from agents import BadInputError, Bus, TooLargeError
from agents.inference import INFERENCE_AGENTS, check_python, extract_code, labels_grammar, trim_summary
from agents.protocol import Chunk
from bridges import RyotBridge
from neurectomy.server.teams import start_inference
from neurectomy.settings import Settings
from orchestrator import Orchestrator
from orchestrator._dispatch import call_agent
from orchestrator.testing import call, running
from ryot import RyotEngine

pytestmark = pytest.mark.anyio
Team = Callable[[], AbstractAsyncContextManager[Orchestrator]]

AMAZON = (
    "The Amazon rainforest is the largest tropical rainforest in the world. It covers much of "
    "northwestern Brazil and extends into Colombia, Peru and other South American countries. It is "
    "famous for its biodiversity, hosting millions of species of insects, plants and birds."
)
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.fixture
def team(bus: Bus, engine: RyotEngine) -> Team:
    """All eight inference agents on one bridge over the session's engine, for an ``async with`` block."""

    def run() -> AbstractAsyncContextManager[Orchestrator]:
        bridge = RyotBridge(engine)  # not closed here: the engine belongs to the session
        return running(bus, [cls(bridge) for cls in INFERENCE_AGENTS])

    return run


def test_roster_order_and_declared_shapes() -> None:
    names = [cls.name for cls in INFERENCE_AGENTS]
    assert names == [
        "generator", "chat", "summarizer", "classifier", "extractor", "translator", "coder", "tokenizer"
    ]  # fmt: skip
    for cls in INFERENCE_AGENTS:
        assert cls.team == "inference" and cls.bridges == ("ryot",)
        assert cls.description.endswith(".") and cls.capabilities
        assert all(c == c.lower() and " " not in c for c in cls.capabilities)
        for model, field in ((cls.input_model, cls.text_input), (cls.output_model, cls.text_output)):
            assert model is not None and issubclass(model, BaseModel)
            assert model.model_config.get("frozen") and model.model_config.get("extra") == "forbid"
            assert field is None or field in {f.alias or n for n, f in model.model_fields.items()}
    assert isinstance(inference.__all__, tuple)
    assert all(hasattr(inference, name) for name in inference.__all__)


def test_code_extraction_and_python_syntax_check() -> None:
    assert extract_code("Here you go:\n```python\n\ndef f():\n    return 1\n```\nDone.") == (
        "def f():\n    return 1"
    )
    assert extract_code("```js\nlet x = 1;") == "let x = 1;"  # unclosed fence: runs to the end
    assert extract_code("\n    x = 1\n") == "    x = 1"  # no fence: the whole answer
    assert check_python("def f(n):\n    return n + 1\n").ok
    bad = check_python("x = 1\ndef f(:\n    pass\n")
    assert not bad.ok and bad.line == 2 and bad.error
    assert not check_python("a = 'unterminated").ok


def test_summary_trimming_and_label_grammar() -> None:
    text = "One two three. Four five six! Seven eight nine? Ten."
    assert trim_summary(text, max_sentences=2, max_words=None) == "One two three. Four five six!"
    assert trim_summary(text, max_sentences=3, max_words=4) == "One two three. Four"
    grammar = labels_grammar(['say "hi"', "back\\slash"])
    assert grammar == 'root ::= " "? ("say \\"hi\\"" | "back\\\\slash")\n'


async def test_tokenizer_round_trips_text_exactly(team: Team, engine: RyotEngine) -> None:
    text = "Hello, world!  Ünïcödé 日本語 👍\n\tend "
    async with team() as orch:
        out = await call(orch, "tokenizer", {"text": text, "pieces": True})
        back = await call(orch, "tokenizer", {"tokens": out["tokens"]})
        bare = await call(orch, "tokenizer", {"text": text, "add_bos": False})
        with pytest.raises(BadInputError) as bad_id:
            await call(orch, "tokenizer", {"tokens": [1, 10**9]})
        with pytest.raises(BadInputError) as neither:
            await call(orch, "tokenizer", {})
    assert out["tokens"] == engine.tokenize(text) and out["count"] == len(out["tokens"])
    assert "".join(out["pieces"][1:]).startswith("Hello, world!") and out["pieces"][0] == ""  # BOS
    assert back["text"] == text and back["tokens"] is None
    assert bare["count"] == out["count"] - 1
    assert bad_id.value.field == "tokens" and "vocabulary" in bad_id.value.message
    assert neither.value.field == "input"


async def test_classifier_always_answers_one_of_the_labels(team: Team) -> None:
    labels = ["positive", "negative", "neutral"]
    async with team() as orch:
        out = await call(orch, "classifier", {"text": "I love this film, it is wonderful!", "labels": labels})
        topic = await call(
            orch,
            "classifier",
            {"text": "The striker scored twice.", "labels": ["sports", "cooking"], "question": "Topic"},
        )
        with pytest.raises(BadInputError) as one_label:
            await call(orch, "classifier", {"text": "x", "labels": ["only"]})
        with pytest.raises(BadInputError) as twice:
            await call(orch, "classifier", {"text": "x", "labels": ["a", "a"]})
    assert out["label"] in labels and labels[out["index"]] == out["label"]
    assert topic["label"] in ("sports", "cooking")
    assert one_label.value.field == "labels" and twice.value.field == "labels"


async def test_extractor_output_follows_the_schema(team: Team) -> None:
    text = "Maria Lopez is 34 years old and lives in Madrid."
    async with team() as orch:
        out = await call(orch, "extractor", {"text": text, "schema": PERSON_SCHEMA, "max_tokens": 48})
        with pytest.raises(BadInputError) as not_object:
            await call(orch, "extractor", {"text": text, "schema": {"type": "string"}})
        with pytest.raises(BadInputError) as too_short:
            await call(orch, "extractor", {"text": text, "schema": PERSON_SCHEMA, "max_tokens": 3})
    data = out["data"]
    assert set(data) == {"name", "age"} and isinstance(data["name"], str)
    assert isinstance(data["age"], int) and not isinstance(data["age"], bool)
    assert not_object.value.field == "schema"
    assert too_short.value.field == "max_tokens"


async def test_chat_second_turn_sees_the_first(team: Team) -> None:
    async with team() as orch:
        first = await call(orch, "chat", {"session": "s1", "message": "My name is Ada.", "max_tokens": 4})
        second = await call(orch, "chat", {"session": "s1", "message": "What is my name?", "max_tokens": 3})
        other = await call(orch, "chat", {"session": "s2", "message": "What is my name?", "max_tokens": 3})
        again = await call(
            orch, "chat", {"session": "s1", "message": "What is my name?", "max_tokens": 4, "reset": True}
        )
    assert (first["turn"], first["history_turns"], first["remembered_turns"]) == (1, 0, 1)
    assert (second["turn"], second["history_turns"], second["remembered_turns"]) == (2, 1, 2)
    # The first turn (message and reply) is in the second prompt; a new session starts empty.
    assert second["usage"]["prompt_tokens"] > other["usage"]["prompt_tokens"] + 5
    assert (other["turn"], other["history_turns"]) == (1, 0)
    assert (again["turn"], again["history_turns"]) == (1, 0)
    assert again["usage"]["prompt_tokens"] == other["usage"]["prompt_tokens"]


async def test_coder_returns_code_and_reports_its_syntax(team: Team) -> None:
    payload = {"task": "a function that returns the square of n", "language": "python", "max_tokens": 24}
    async with team() as orch:
        streamed: list[str] = []
        output: dict[str, Any] = {}
        async for event in call_agent(
            orch.bus, "inference", "coder", payload, orch.context(), accept_timeout_s=5
        ):
            if isinstance(event, Chunk):
                streamed.append(event.data["text"])
            else:
                output = event.output
        with pytest.raises(BadInputError) as language:
            await call(orch, "coder", {"task": "hello world", "language": "brainfuck"})
    assert output["code"] and output["language"] == "python"
    assert "".join(streamed) == output["answer"]
    check = check_python(output["code"])
    assert output["syntax_ok"] is check.ok and output["error_line"] == check.line
    assert language.value.field == "language"


async def test_summarizer_summarizes_and_refuses_text_beyond_the_context(
    team: Team, engine: RyotEngine
) -> None:
    async with team() as orch:
        out = await call(
            orch, "summarizer", {"text": AMAZON, "max_sentences": 1, "max_words": 20, "max_tokens": 16}
        )
        with pytest.raises(TooLargeError) as too_long:
            await call(orch, "summarizer", {"text": "river " * 3000})
    assert out["summary"].strip() and out["sentences"] <= 1 and 0 < out["words"] <= 20
    assert out["input_tokens"] == len(engine.tokenize(AMAZON))
    assert too_long.value.field == "text" and "tokens" in too_long.value.message
    assert str(engine.n_ctx) in too_long.value.message


async def test_translator_translates_and_refuses_unknown_languages(team: Team) -> None:
    async with team() as orch:
        out = await call(
            orch, "translator", {"text": "The cat is sleeping.", "target": "French", "max_tokens": 12}
        )
        by_code = await call(orch, "translator", {"text": "Thank you.", "target": "DE", "max_tokens": 4})
        with pytest.raises(BadInputError) as unknown:
            await call(orch, "translator", {"text": "Hello", "target": "Klingon"})
    assert out["translation"] and "\n" not in out["translation"]
    assert (out["target"], out["target_name"]) == ("fr", "French")
    assert by_code["target"] == "de"
    assert unknown.value.field == "target" and "fr (French)" in unknown.value.message


async def test_start_inference_refuses_an_unknown_agent(bus: Bus, tmp_path: Any) -> None:
    async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
        with pytest.raises(ValueError, match="available: generator, chat, summarizer"):
            await start_inference(Settings(state_dir=tmp_path), stack, bus, tg, agent="poet")

"""Ryot engine on the real Gemma 3 270M model."""

from __future__ import annotations

import math
import queue
import threading
import time
from pathlib import Path

import pytest

from ryot import (
    ChatMessage,
    EngineBusyError,
    EngineClosedError,
    Event,
    Finished,
    InvalidRequestError,
    ModelLoadError,
    PromptTooLongError,
    RyotConfig,
    RyotEngine,
    SamplingParams,
    TokenChunk,
    TokenPrompt,
)
from tests.ryot.conftest import finish_together

GREEDY = SamplingParams(max_tokens=12, temperature=0.0)


def test_usage_matches_the_models_own_tokenization(engine: RyotEngine) -> None:
    prompt = "The three primary colours are"
    completion = engine.generate(prompt, GREEDY)
    assert completion.usage.prompt_tokens == len(engine.tokenize(prompt))
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 12
    assert completion.text.strip()


def test_stream_chunks_add_up_to_the_final_text(engine: RyotEngine) -> None:
    events = list(engine.stream("Once upon a time", SamplingParams(max_tokens=20, temperature=0.0)))
    chunks = [e for e in events if isinstance(e, TokenChunk)]
    final = events[-1]
    assert isinstance(final, Finished)
    assert len(chunks) >= 2
    assert "".join(c.text for c in chunks) == final.text
    assert final.usage.completion_tokens == 20


def test_greedy_is_deterministic_and_repeated_prompt_reuses_the_kv_prefix(engine: RyotEngine) -> None:
    engine.generate("An unrelated warm-up prompt about tea.", GREEDY)
    prompt = "Rivers flow into the sea because"
    first = engine.generate(prompt, GREEDY)
    second = engine.generate(prompt, GREEDY)
    assert first.text == second.text
    # Everything but the last two prompt tokens comes from the KV cache (they are re-evaluated to get
    # fresh logits, as a cold prefill computes them); at most the BOS token matched anything cached before.
    assert second.usage.cached_tokens == second.usage.prompt_tokens - 2
    assert first.usage.cached_tokens <= 1


def test_chat_uses_the_gemma_template(engine: RyotEngine) -> None:
    messages = [ChatMessage("system", "Answer briefly."), ChatMessage("user", "Name a colour.")]
    rendered = engine.render_chat(messages)
    assert rendered.startswith("<start_of_turn>user\n")
    assert rendered.endswith("<start_of_turn>model\n")
    completion = engine.generate(messages, GREEDY)
    assert completion.usage.prompt_tokens == len(engine.prompt_tokens(messages))
    assert completion.text


def test_stop_string_ends_the_completion_and_is_not_returned(engine: RyotEngine) -> None:
    completion = engine.generate(
        "Count: 1, 2, 3,", SamplingParams(max_tokens=40, temperature=0.0, stop=("7",))
    )
    assert completion.finish_reason == "stop"
    assert "7" not in completion.text
    assert "6" in completion.text


def test_cancel_frees_the_worker_within_one_decode_step(engine: RyotEngine) -> None:
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    handle = engine.submit(
        "Write a very long story about a dragon.", SamplingParams(max_tokens=1500), events.put
    )
    assert isinstance(events.get(timeout=30), TokenChunk)
    cancelled_at = time.perf_counter()
    handle.cancel()
    while not isinstance(event := events.get(timeout=30), Finished):
        pass
    # One decode step is ~25 ms on an idle machine; the bound leaves room for a loaded CI machine while
    # staying far below the ~30 s the 1500-token request would need.
    assert time.perf_counter() - cancelled_at < 5.0
    assert event.finish_reason == "cancelled"
    assert event.usage.completion_tokens < 100
    assert engine.active == 0  # the slot is free again


def test_full_queue_is_refused_with_busy() -> None:
    with RyotEngine(RyotConfig(n_ctx=512, parallel=1, queue_size=1)) as small:
        started = threading.Event()

        def sink(event: Event) -> None:
            started.set()

        running = small.submit("Tell me a long story.", SamplingParams(max_tokens=400), sink)
        assert started.wait(30)
        waiting = small.submit("Another story.", SamplingParams(max_tokens=400), lambda e: None)
        with pytest.raises(EngineBusyError) as info:
            small.submit("A third.", SamplingParams(max_tokens=4), lambda e: None)
        assert info.value.queue_size == 1
        running.cancel()
        waiting.cancel()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (SamplingParams(max_tokens=0), "max_tokens"),
        (SamplingParams(temperature=-0.5), "temperature"),
        (SamplingParams(top_p=0.0), "top_p"),
        (SamplingParams(top_k=-1), "top_k"),
        (SamplingParams(top_k=2**31), "top_k"),  # llama.cpp's int32_t
        (SamplingParams(repeat_penalty=0.0), "repeat_penalty"),
        (SamplingParams(repeat_penalty=math.inf), "repeat_penalty"),
        (SamplingParams(presence_penalty=math.nan), "presence_penalty"),
        (SamplingParams(frequency_penalty=-math.inf), "frequency_penalty"),
    ],
)
def test_invalid_parameters_name_the_field(engine: RyotEngine, params: SamplingParams, field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        engine.generate("Hi", params)
    assert info.value.field == field


def test_empty_prompt_and_overlong_requests_are_refused(engine: RyotEngine) -> None:
    with pytest.raises(InvalidRequestError) as info:
        engine.generate("", GREEDY)
    assert info.value.field == "prompt"
    with pytest.raises(PromptTooLongError) as too_long:
        engine.generate("Hi", SamplingParams(max_tokens=engine.n_ctx))
    assert too_long.value.n_ctx == engine.n_ctx
    with pytest.raises(InvalidRequestError):
        engine.generate([], GREEDY)


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        RyotEngine(RyotConfig(model_path=tmp_path / "nope.gguf"))
    assert "nope.gguf" in str(info.value)
    not_gguf = tmp_path / "garbage.gguf"
    not_gguf.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelLoadError):
        RyotEngine(RyotConfig(model_path=not_gguf))


def test_threads_default_to_physical_cores(engine: RyotEngine) -> None:
    from ryot import physical_cores

    assert engine.n_threads == physical_cores()


def test_concurrent_requests_decode_together_with_the_text_each_gets_alone() -> None:
    # Weight repacking and llama.cpp's tiled K-quant matmul are off (ryot/_kernels.py), so a sequence's
    # rows go through the same kernels whatever else is in the batch: greedy text decoded beside others
    # is the text decoded alone (test_batch_invariance.py does it for 8 at once).
    prompts = [f"{topic} are the subject of this short essay." for topic in ("Rivers", "Owls", "Trains")]
    params = SamplingParams(max_tokens=32, temperature=0.0)
    config = RyotConfig(n_ctx=256, parallel=3, prefix_cache_bytes=0)
    with RyotEngine(config) as solo:
        alone_texts = [solo.generate(p, params).text for p in prompts]  # one at a time, each in a fresh slot
    with RyotEngine(config) as fresh:
        together = finish_together(fresh, prompts, params, 60)
        for i, p in enumerate(prompts):
            assert together[i].usage.prompt_tokens == len(fresh.tokenize(p))
            assert together[i].finish_reason in ("length", "stop") and together[i].text
    assert [together[i].text for i in range(len(prompts))] == alone_texts
    # They ran side by side (continuous batching), not one after another: each was admitted before
    # any of them had finished decoding.
    shortest = min(e.timings.ttft_s + e.timings.decode_s for e in together.values())
    assert all(e.timings.queue_s < shortest for e in together.values())


def test_a_request_joins_while_another_is_decoding(engine: RyotEngine) -> None:
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    long = engine.submit(
        "Tell me a very long story about the sea.", SamplingParams(max_tokens=400), events.put
    )
    assert isinstance(events.get(timeout=30), TokenChunk)
    short = engine.generate("Hello", SamplingParams(max_tokens=3, temperature=0.0))
    assert short.usage.completion_tokens == 3
    # The short request was served while the long one kept decoding: it did not wait for it to end.
    pending = []
    while not events.empty():
        pending.append(events.get())
    assert not any(isinstance(e, Finished) for e in pending)
    long.cancel()


def test_vocab_only_tokenizer_matches_the_engine(engine: RyotEngine) -> None:
    from ryot import Tokenizer

    text = "Naïve café owners <start_of_turn> count 1, 2, 3 — 東京 🚀"
    with Tokenizer() as tokenizer:
        assert tokenizer.tokenize(text) == engine.tokenize(text)
        assert tokenizer.tokenize(text, add_bos=False, special=True) == engine.tokenize(
            text, add_bos=False, special=True
        )
        assert tokenizer.count(text) == len(engine.tokenize(text))


def test_json_schema_grammar_constrains_the_output(engine: RyotEngine) -> None:
    import json

    from ryot import grammar_from_json_schema

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    params = SamplingParams(max_tokens=64, temperature=0.7, seed=3, grammar=grammar_from_json_schema(schema))
    completion = engine.generate([ChatMessage("user", "Name a city and its population, as JSON.")], params)
    document = json.loads(completion.text)
    assert set(document) == {"city", "population"}
    assert isinstance(document["city"], str) and isinstance(document["population"], int)


def test_invalid_grammar_is_refused_naming_the_field(engine: RyotEngine) -> None:
    with pytest.raises(InvalidRequestError) as info:
        engine.generate("Hi", SamplingParams(grammar="root ::= ("))
    assert info.value.field == "grammar"


REPEAT_TEXT = (
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
    "How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow. "
)
REPEAT_PROMPT = (
    f"Repeat the following text exactly.\n\nText: {REPEAT_TEXT}\n\nRepeated text: {REPEAT_TEXT[:40]}"
)


def test_repeating_a_prompt_reuses_its_kv_and_gives_the_same_text(engine: RyotEngine) -> None:
    params = SamplingParams(max_tokens=24, temperature=0.0)
    runs = [engine.generate(REPEAT_PROMPT, params) for _ in range(3)]
    assert runs[0].text == runs[1].text == runs[2].text
    assert "Pack my box" in runs[0].text  # the model really continues the quoted text
    assert runs[1].usage.cached_tokens == runs[2].usage.cached_tokens == runs[0].usage.prompt_tokens - 2


def test_speculative_decoding_keeps_the_greedy_text_and_accepts_drafts(engine: RyotEngine) -> None:
    # On this prompt the texts with and without speculation have matched in every run: the batched
    # verification's other rounding flips a token only in a near tie (see docs/ryot.md), so a difference
    # here points at bookkeeping (a wrong token kept or dropped, a KV entry not removed).
    plain = engine.generate(REPEAT_PROMPT, SamplingParams(max_tokens=40, temperature=0.0))
    drafted, accepted = engine.draft_tokens, engine.draft_accepted
    spec = engine.generate(REPEAT_PROMPT, SamplingParams(max_tokens=40, temperature=0.0, speculative=True))
    assert spec.text == plain.text
    assert spec.usage.completion_tokens == plain.usage.completion_tokens
    assert engine.draft_tokens > drafted
    assert engine.draft_accepted - accepted >= 10  # the quoted text is drafted from the prompt and confirmed


def test_prompt_lookup_drafts_what_followed_the_last_ngram() -> None:
    from ryot._speculative import prompt_lookup

    history = [1, 5, 6, 7, 8, 9, 2, 5, 6]
    assert prompt_lookup(history, draft_max=3) == [7, 8, 9]
    assert prompt_lookup(history, draft_max=0) == []
    assert prompt_lookup([1, 2, 3, 4], draft_max=4) == []
    # a match must start on a token boundary of the packed array, not inside a token's bytes
    # (256, 0, 0 packs to bytes 00 01 00 00 00 00 ... which contain the bytes of (1, 0) one byte in)
    assert prompt_lookup([256, 0, 0, 7, 1, 0], draft_max=2, ngram_max=2, ngram_min=2) == []
    assert prompt_lookup([1, 0, 9, 256, 0, 0, 7, 1, 0], draft_max=2, ngram_max=2, ngram_min=2) == [9, 256]


def test_a_closed_engine_refuses_work_instead_of_crashing() -> None:
    small = RyotEngine(RyotConfig(n_ctx=128, parallel=1))
    small.close()
    with pytest.raises(EngineClosedError):
        small.tokenize("Hello")
    with pytest.raises(EngineClosedError):
        small.generate("Hello", SamplingParams(max_tokens=1))


def test_repeat_penalty_generates_and_the_engine_keeps_serving(engine: RyotEngine) -> None:
    prompt = "one two one two one two one two"
    penalised = engine.generate(prompt, SamplingParams(max_tokens=8, temperature=0, repeat_penalty=1.5))
    assert penalised.usage.completion_tokens > 0
    plain = engine.generate(prompt, SamplingParams(max_tokens=8, temperature=0))
    assert plain.usage.completion_tokens > 0  # the worker is alive after a penalised request


def test_a_long_prompt_joining_is_prefilled_in_chunks_between_the_others_tokens() -> None:
    chunk = 32
    config = RyotConfig(n_ctx=1024, parallel=2, prefill_chunk=chunk, prefix_cache_bytes=0)
    long_prompt = " ".join(
        f"Fact {i}: the red fox number {i} lives near Oslo and eats berries." for i in range(40)
    )
    log: list[tuple[str, Event]] = []
    with RyotEngine(config) as fresh:
        n_long = len(fresh.tokenize(long_prompt))
        assert n_long > 8 * chunk
        first = threading.Event()

        def decoding_sink(event: Event) -> None:
            log.append(("decoding", event))
            first.set()

        running = fresh.submit(
            "Tell me a very long story about the sea.",
            SamplingParams(max_tokens=300, temperature=0.0),
            decoding_sink,
        )
        assert first.wait(30)
        joined = fresh.generate(long_prompt, SamplingParams(max_tokens=2, temperature=0.0))
        running.cancel()
    assert joined.usage.prompt_tokens == n_long and joined.usage.cached_tokens == 1  # the primed BOS
    # While the long prompt was prefilled (ceil(n_long / chunk) steps, each also decoding the running
    # request), the running request kept receiving tokens; without chunking it would get ~2.
    steps = -(-n_long // chunk)
    tokens_meanwhile = sum(isinstance(e, TokenChunk) for _, e in log[1:])
    assert not any(isinstance(e, Finished) and e.finish_reason != "cancelled" for _, e in log)
    assert tokens_meanwhile >= steps // 2, (tokens_meanwhile, steps)


def test_a_request_ending_between_two_others_leaves_no_second_pass_and_no_trace_in_their_text() -> None:
    # Sequences 0 and 2 keep decoding after 1 ends: a placeholder token in sequence 1 keeps every step
    # one llama.cpp micro-batch (ryot._schedule), and neither it nor the batch shape changes their text.
    prompts = ["Rivers are the subject of this short essay.", "Hi", "Trains are the subject of this essay."]
    lengths = [24, 2, 24]
    config = RyotConfig(n_ctx=256, parallel=3, prefix_cache_bytes=0)
    with RyotEngine(config) as solo:
        alone = [
            solo.generate(p, SamplingParams(max_tokens=n, temperature=0.0)).text
            for p, n in zip(prompts, lengths, strict=True)
        ]
    with RyotEngine(config) as fresh:
        done: queue.SimpleQueue[tuple[int, Finished]] = queue.SimpleQueue()
        others_submitted: list[bool] = []

        def submit(i: int) -> None:
            fresh.submit(
                prompts[i], SamplingParams(max_tokens=lengths[i], temperature=0.0), lambda e: sink(i, e)
            )

        def sink(i: int, event: object) -> None:
            if isinstance(event, Finished):
                done.put((i, event))
            elif i == 0 and isinstance(event, TokenChunk) and not others_submitted:
                others_submitted.append(True)
                # On the worker thread, before its next admission: 1 and 2 start in the same step, in
                # sequences 1 and 2, however busy the machine (from the test's thread, 2 could come after 1
                # had ended, and take its sequence).
                submit(1)
                submit(2)

        submit(0)
        finished = dict(done.get(timeout=120) for _ in prompts)
        assert fresh.placeholders > 0
    assert [finished[i].text for i in range(3)] == alone


def test_first_token_handoff_pauses_only_where_the_compute_threads_fill_the_cpus() -> None:
    from pydantic import ValidationError

    from ryot.config import FIRST_TOKEN_HANDOFF_S, usable_cpus

    cpus = usable_cpus()
    assert RyotConfig(n_threads=cpus).resolved_first_token_handoff_s() == FIRST_TOKEN_HANDOFF_S
    if cpus > 1:  # a spare CPU runs the hand-off beside the compute threads: no pause
        assert RyotConfig(n_threads=cpus - 1).resolved_first_token_handoff_s() == 0.0
    assert RyotConfig(n_threads=1, first_token_handoff_s=0.01).resolved_first_token_handoff_s() == 0.01
    assert RyotConfig(first_token_handoff_s=0).resolved_first_token_handoff_s() == 0.0
    with pytest.raises(ValidationError, match="first_token_handoff_s"):
        RyotConfig(first_token_handoff_s=0.5)


def test_after_a_first_token_the_worker_waits_the_handoff_before_the_next_step(engine: RyotEngine) -> None:
    # The second token is sampled at least first_token_handoff_s after the first (the worker slept in
    # between, leaving the cores to the first token's consumers), and the text is the same as without.
    params = SamplingParams(max_tokens=2, temperature=0.0)
    prompt = "Rivers are the subject of this short essay."
    config = RyotConfig(n_ctx=256, parallel=1, prefix_cache_bytes=0, first_token_handoff_s=0.05)
    with RyotEngine(config) as paused:
        done = paused.generate(prompt, params)
    assert done.usage.completion_tokens == 2
    assert done.timings.decode_s >= 0.05
    assert done.text == engine.generate(prompt, params).text


def test_every_slots_first_text_prompt_skips_the_bos_token_the_engine_primed(engine: RyotEngine) -> None:
    # Each of three new prompts takes a slot nothing ran in (least recently used first), whose BOS the
    # engine evaluated at start: the prompt evaluates one row less, as raw llama-cpp-python's cold prompt
    # does after its first, and gets the text the session's engine gives it (its slots served many
    # prompts before; that the rest of a prompt after a primed BOS gets the logits of its whole prefill is
    # test_batch_invariance's test_a_prompt_after_a_primed_bos_gets_the_logits_of_its_whole_prefill).
    params = SamplingParams(max_tokens=4, temperature=0.0)
    prompts = [f"{topic} are fascinating. Write an essay about them." for topic in ("Owls", "Moss", "Ore")]
    with RyotEngine(RyotConfig(n_ctx=256, parallel=4, prefix_cache_bytes=0)) as fresh:
        first = [fresh.generate(p, params) for p in prompts]
        token_prompt = fresh.generate(TokenPrompt(tuple(fresh.tokenize(prompts[0])[1:])), params)
    assert [c.usage.cached_tokens for c in first] == [1, 1, 1]
    assert [c.usage.prompt_tokens for c in first] == [len(engine.tokenize(p)) for p in prompts]
    assert token_prompt.usage.cached_tokens == 0  # no BOS first: nothing of the primed slot is reused
    assert [c.text for c in first] == [engine.generate(p, params).text for p in prompts]

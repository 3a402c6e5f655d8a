"""Batch invariance on the real Gemma 3 270M: a sequence's logits and greedy text do not depend on how
many others share its decode step (ryot/_kernels.py explains the llama.cpp kernel switch behind it), nor
on whether its prompt was prefilled cold or served from a cached prefix (ryot._schedule.MIN_PROMPT_ROWS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ryot import Finished, RyotConfig, RyotEngine, SamplingParams
from tests.ryot.conftest import finish_together
from tests.ryot.test_prefix_cache import QUESTIONS, _facts

ROOT = Path(__file__).resolve().parents[2]
STEP_LOGITS = Path(__file__).with_name("step_logits.py")
CUT_LOGITS = Path(__file__).with_name("cut_logits.py")
TOPICS = ("Lighthouses", "Volcanoes", "Penguins", "Railways", "Glaciers", "Bees", "Comets", "Deserts")
PROMPTS = [f"{topic} {i}: write a long essay about them." for i, topic in enumerate(TOPICS)]
"""The prompts of ``benchmarks/llm_path.py``'s concurrency section."""


def fresh_interpreter(code: list[str], **env: str) -> str:
    """stdout of this interpreter running ``code`` with ``env`` and without the caller's kernel switches."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GGML_CPU_TILED_MM")}
    out = subprocess.run(  # noqa: S603 - this interpreter, our own script or fixed code
        [sys.executable, *code],
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout


def step_logits(**env: str) -> dict[str, float]:
    """``tests/ryot/step_logits.py``'s comparison of 8 batched rows with the same rows alone."""
    result: dict[str, float] = json.loads(fresh_interpreter([str(STEP_LOGITS)], **env))
    return result


def test_a_step_of_eight_sequences_gives_each_the_logits_it_gets_alone() -> None:
    result = step_logits()
    assert result["rows"] == 32
    assert result["differing"] == 0, result
    assert result["max_abs_diff"] == 0.0


def test_with_llama_cpps_tiled_kernel_the_same_step_gives_other_logits() -> None:
    """The cause: llama.cpp's tiled K-quant matmul, taken from 8 rows on, rounds differently from the
    kernel of a single row. (If a llama.cpp upgrade makes this fail, the kernel switch may be unneeded.)"""
    result = step_logits(GGML_CPU_TILED_MM="1")
    assert result["rows"] == 32
    assert result["differing"] > 0, result


def cut_logits(prompts: list[str], cuts: list[int | str]) -> dict[str, Any]:
    """``tests/ryot/cut_logits.py``'s comparison of prompts prefilled whole and cut before ``k`` tokens."""
    spec = json.dumps({"prompts": prompts, "cuts": cuts})
    result: dict[str, Any] = json.loads(fresh_interpreter([str(CUT_LOGITS), spec]))
    return result


def test_a_prompt_cut_before_its_last_two_tokens_gets_the_logits_of_its_whole_prefill() -> None:
    """What a cached prefix leaves to evaluate (two tokens or more) computes the last token as a cold
    prefill does; a last token evaluated alone does not (on the AMD EPYC here, AVX2: 3 of these 9 prompts
    differ by up to 0.72, the third one's greedy token flips; the Xeon with AVX-512 showed it on the long
    prompt). If a llama.cpp upgrade makes the second assertion fail, MIN_PROMPT_ROWS may be unneeded."""
    prompts = [*PROMPTS, _facts(15) + QUESTIONS[0]]
    result = cut_logits(prompts, [1, 2, 3])
    assert result["prompts"] == len(prompts)
    assert result["differing"] == {"1": result["differing"]["1"], "2": 0, "3": 0}, result
    assert result["differing"]["1"] > 0, result


def test_a_prompt_after_a_primed_bos_gets_the_logits_of_its_whole_prefill() -> None:
    """RyotEngine puts BOS into every slot at start, computed twice in one decode (ryot._kv_reuse
    ``_prime_slots``), so that a cold prompt evaluates one row less; the rest of the prompt then gets its
    whole prefill's logits (BOS computed as a row of its own did too on the AMD EPYC here, 2026-12-06;
    the two-row priming keeps to MIN_PROMPT_ROWS all the same)."""
    prompts = [*PROMPTS, _facts(15) + QUESTIONS[0]]
    result = cut_logits(prompts, ["primed"])
    assert result["prompts"] == len(prompts)
    assert result["differing"]["primed"] == 0, result


def test_importing_ryot_turns_the_tiled_kernel_off_and_an_operators_value_wins() -> None:
    code = ["-c", "import os, ryot; print(os.environ.get('GGML_CPU_TILED_MM'))"]
    assert fresh_interpreter(code).strip() == "0"
    assert fresh_interpreter(code, GGML_CPU_TILED_MM="1").strip() == "1"


@pytest.mark.slow
@pytest.mark.timeout(300)  # about 15 s on the idle machine; a loaded one stretches it several times
def test_eight_concurrent_greedy_requests_get_the_text_each_gets_alone() -> None:
    # With llama.cpp's tiled kernel on (GGML_CPU_TILED_MM=1), 3 of these 8 texts differ from the text
    # alone within 32 tokens (from the 3rd, 18th and 20th token); the benchmark saw 5 of 16 at 64 tokens.
    prompts = PROMPTS
    params = SamplingParams(max_tokens=32, temperature=0.0)
    config = RyotConfig(n_ctx=256, parallel=8, n_threads=2, prefix_cache_bytes=0)
    with RyotEngine(config) as solo:
        alone = [solo.generate(p, params).text for p in prompts]  # one at a time
    with RyotEngine(config) as fresh:
        together = finish_together(fresh, prompts, params, 240)
    assert all(together[i].finish_reason == "length" for i in range(len(prompts)))
    assert [together[i].text for i in range(len(prompts))] == alone
    # All eight were decoding at once: each was admitted before any of them had finished, so the steps
    # in between carried 8 rows (the shape that took llama.cpp's tiled kernel).
    shortest = min(e.timings.ttft_s + e.timings.decode_s for e in together.values())
    assert all(e.timings.queue_s < shortest for e in together.values())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_prompt_served_again_from_its_slot_or_the_prefix_cache_gets_the_text_of_its_cold_prefill() -> None:
    # The benchmark's rounds re-serve prompts it served before. With only the last prompt token evaluated
    # on a hit (MIN_PROMPT_ROWS = 1), "Penguins 2" got another text from a slot on the AVX2 EPYC (its
    # first token); "Deserts 7" and the long prompt other logits but the same 16 tokens there
    # (tests/ryot/cut_logits.py); on the AVX-512 Xeon the long prompt's 7th token differed.
    params = SamplingParams(max_tokens=16, temperature=0.0)
    prompts = [*PROMPTS, _facts(15) + QUESTIONS[0]]
    config = RyotConfig(n_ctx=512, parallel=1, n_threads=2)
    texts = {}
    with RyotEngine(config) as engine:
        for prompt in prompts:
            cold = engine.generate(prompt, params)  # the slot held another prompt: only BOS is shared
            assert cold.usage.cached_tokens <= 1
            warm = engine.generate(prompt, params)  # from the slot
            assert warm.usage.cached_tokens == warm.usage.prompt_tokens - 2
            assert warm.text == cold.text, prompt
            texts[prompt] = cold.text
        long = prompts[-1]
        engine.generate(PROMPTS[0], params)  # evicts the long prompt's slot; the cache holds its state
        restored = engine.generate(long, params)
        stats = engine.prefix_cache_stats
    assert stats is not None and stats["hits"] >= 1, stats
    assert restored.usage.cached_tokens == restored.usage.prompt_tokens - 2
    assert restored.text == texts[long]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_prompt_prefilled_in_chunks_beside_a_decoding_request_gets_its_text_alone() -> None:
    # "Penguins 2" has 13 tokens, 12 to evaluate after the BOS the engine primed its slots with: chunks of
    # at most 11 while another request decodes would be 11 + 1, and its last token alone gives it another
    # first token on the AVX2 EPYC (see the test above); ryot._schedule.prefill_piece makes them 10 + 2.
    prompt, params = PROMPTS[2], SamplingParams(max_tokens=16, temperature=0.0)
    config = RyotConfig(n_ctx=256, parallel=2, n_threads=2, prefill_chunk=11, prefix_cache_bytes=0)
    with RyotEngine(config) as solo:
        alone = solo.generate(prompt, params)
    assert alone.usage.prompt_tokens == 13
    with RyotEngine(config) as engine:
        other = engine.stream(PROMPTS[0], SamplingParams(max_tokens=100, temperature=0.0))
        first = next(other)  # the other request is decoding from here on
        assert not isinstance(first, Finished)
        beside = engine.generate(prompt, params)
        assert engine.active == 1  # the other request was still decoding when this one finished
        other.close()
    assert beside.usage.cached_tokens == 1  # the primed BOS
    assert beside.text == alone.text

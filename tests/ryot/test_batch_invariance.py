"""Batch invariance on the real Gemma 3 270M: a sequence's logits and greedy text do not depend on how
many others share its decode step (ryot/_kernels.py explains the llama.cpp kernel switch behind it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ryot import RyotConfig, RyotEngine, SamplingParams
from tests.ryot.conftest import finish_together

ROOT = Path(__file__).resolve().parents[2]
STEP_LOGITS = Path(__file__).with_name("step_logits.py")
TOPICS = ("Lighthouses", "Volcanoes", "Penguins", "Railways", "Glaciers", "Bees", "Comets", "Deserts")


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


def test_importing_ryot_turns_the_tiled_kernel_off_and_an_operators_value_wins() -> None:
    code = ["-c", "import os, ryot; print(os.environ.get('GGML_CPU_TILED_MM'))"]
    assert fresh_interpreter(code).strip() == "0"
    assert fresh_interpreter(code, GGML_CPU_TILED_MM="1").strip() == "1"


@pytest.mark.slow
@pytest.mark.timeout(300)  # about 15 s on the idle machine; a loaded one stretches it several times
def test_eight_concurrent_greedy_requests_get_the_text_each_gets_alone() -> None:
    # The prompts of benchmarks/llm_path.py's concurrency section. With llama.cpp's tiled kernel on
    # (GGML_CPU_TILED_MM=1), 3 of these 8 texts differ from the text alone within 32 tokens (from the
    # 3rd, 18th and 20th token); the benchmark saw 5 of 16 at 64 tokens.
    prompts = [f"{topic} {i}: write a long essay about them." for i, topic in enumerate(TOPICS)]
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

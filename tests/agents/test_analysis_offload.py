"""The Analysis team's heavy work stays off its event loop (``benchmarks/analysis_stalls.py`` measures the
stalls it caused: 0.3-0.6 s on the largest inputs).

keyword-extractor (YAKE) and code-analyzer (``ast.parse``, radon) run in the team's worker process: in a
thread they held the interpreter lock for 0.3 s at a time (full garbage collections of the process's heap
that their objects triggered, one long ``ast.parse``). So the agents' process spends a small part of the
work's CPU time on a call. similarity's Jaccard indexes and statistician's reading of numbers from a text
run in worker threads (pure Python, which lets the loop in every 5 ms): so the event loop's thread spends a
small part of their CPU time. CPU time, not wall time: the machine's load does not move it. Every answer
is the one the work gives when called directly.

The loop's thread also spends CPU on its own while it waits (heartbeats, timers: ~0.6 ms per second here),
so a call measured on the loop's thread must be short in wall time whatever the load: the similarity check
embeds with the static distillation of MiniLM (a table look-up) instead of the network, whose 33 texts took
60-120 s on a loaded 2-core machine (0.05-0.1 s of the loop's own CPU, more than the 0.03 s bound).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Any

import anyio
import numpy as np
import pytest
from numpy.typing import NDArray

from agents import Bus
from agents.analysis import (
    CodeAnalyzerAgent,
    KeywordExtractorAgent,
    KeywordsInput,
    SimilarityAgent,
    StatisticianAgent,
)
from agents.analysis._code import analyse_code
from agents.analysis._keywords import extract_keyphrases
from agents.analysis._similarity import jaccard_each
from agents.analysis._statistics import describe, numbers_in
from benchmarks.analysis_stalls import prose
from orchestrator import testing
from orchestrator.testing import running
from vault.static_embedding import StaticEmbedder

pytestmark = pytest.mark.anyio


def python_source(functions: int) -> str:
    """Python source with ``functions`` branchy functions."""
    body = "    if a > b and c:\n        return [x for x in c if x]\n"
    body += "    while b:\n        b -= 1\n    return b\n"
    return "".join(f"def f{i}(a, b=1, *c):\n{body}\n\n" for i in range(functions))


def limiters() -> dict[str, Any]:
    return {"limiter": anyio.CapacityLimiter(2), "processes": anyio.CapacityLimiter(1)}


async def served(bus: Bus, agent: Any, payload: dict[str, Any], clock: Any) -> tuple[dict[str, Any], float]:
    """The agent's answer to ``payload`` through the orchestrator, and ``clock()`` seconds spent on it.

    No garbage collection during the call: a full collection of the test session's heap (0.1-0.4 s
    once torch is loaded; a loaded fresh-clone run counted 0.43 s of this process's CPU for a call whose
    work ran in the worker process) runs on whichever thread allocates next, which is not what the
    tests measure.
    """
    async with running(bus, [agent], concurrency=2) as orch:
        gc.disable()
        try:
            started = clock()
            out = await testing.call(orch, agent.name, payload, timeout_s=60)
            return out, clock() - started
        finally:
            gc.enable()


class StaticEmbedding:
    """:class:`vault.static_embedding.StaticEmbedder` (MiniLM's distilled token table) as the similarity
    agent's embedder (``agents.analysis._embedding.TextEmbedder``), in a worker thread."""

    def __init__(self) -> None:
        self.model = StaticEmbedder()

    async def embed(
        self, texts: Sequence[str], *, timeout_s: float | None = None
    ) -> tuple[NDArray[np.float32], list[int]]:
        def run() -> tuple[NDArray[np.float32], list[int]]:
            return self.model.embed(texts), [len(self.model.token_ids(t)) for t in texts]

        return await anyio.to_thread.run_sync(run)


def cpu_of(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.process_time()
    out = fn(*args)
    return out, time.process_time() - started


async def test_keyword_extractor_runs_yake_in_a_worker_process(bus: Bus) -> None:
    text = prose(100_000)
    extract_keyphrases(KeywordsInput(text="Warm up: import yake here first."))
    direct, work_s = cpu_of(extract_keyphrases, KeywordsInput(text=text, top_k=20))
    out, spent_s = await served(
        bus, KeywordExtractorAgent(**limiters()), {"text": text, "top_k": 20}, time.process_time
    )
    assert out == direct.model_dump() and len(out["keyphrases"]) == 20
    assert spent_s < work_s / 10, f"{spent_s:.3f} s of CPU here for {work_s:.3f} s of YAKE"


async def test_code_analyzer_parses_and_measures_in_a_worker_process(bus: Bus) -> None:
    code = python_source(1_500)  # ~135,000 characters
    analyse_code("def warm_up():\n    pass\n")
    direct, work_s = cpu_of(analyse_code, code)
    out, spent_s = await served(bus, CodeAnalyzerAgent(**limiters()), {"code": code}, time.process_time)
    assert out == direct.model_dump() and out["max_complexity"] == 6
    assert spent_s < work_s / 10, f"{spent_s:.3f} s of CPU here for {work_s:.3f} s of parsing and radon"


async def test_similarity_computes_jaccard_off_the_event_loop(bus: Bus) -> None:
    """The event loop's thread (this one: ``time.thread_time``) does not tokenise the texts; the old code
    tokenised ``text`` again for every candidate, on the loop: twice the work below."""
    text, candidates = prose(20_000, 1), [prose(20_000, 2 + i) for i in range(32)]
    lexical, work_s = cpu_of(jaccard_each, text, candidates)
    embedding = StaticEmbedding()
    await anyio.to_thread.run_sync(embedding.model.load)
    agent = SimilarityAgent(embedding, **limiters())
    out, spent_s = await served(bus, agent, {"text": text, "candidates": candidates}, time.thread_time)
    assert {m["index"]: m["jaccard"] for m in out["matches"]} == dict(enumerate(lexical))
    assert spent_s < work_s / 2, f"{spent_s:.3f} s of the loop's CPU for {work_s:.3f} s of tokenising"


async def test_statistician_reads_a_long_texts_numbers_off_the_event_loop(bus: Bus) -> None:
    text = "1 2.5 -3 4 " * 18_000  # 198,000 characters, 72,000 numbers
    values, work_s = cpu_of(numbers_in, text)
    out, spent_s = await served(bus, StatisticianAgent(**limiters()), {"text": text}, time.thread_time)
    assert out == describe(values, "text").model_dump() and out["n"] == 72_000
    assert spent_s < work_s / 4, f"{spent_s:.3f} s of the loop's CPU for {work_s:.3f} s of reading numbers"

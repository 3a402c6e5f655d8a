"""The roster: every agent of the collective, by team, in one readable registry.

=========== ==================================================================================
team        agents (8 each)
=========== ==================================================================================
inference   generator, chat, summarizer, classifier, extractor, translator, coder, tokenizer
compression compressor, decompressor, deduplicator, glyph-encoder, context-optimizer,
            dictionary-trainer, rsu-manager, codec-inspector
storage     archivist, retriever, fetcher, eraser, key-warden, indexer, snapshotter, vault-stats
analysis    sentiment, keyword-extractor, entity-extractor, language-detector, similarity,
            code-analyzer, statistician, quality-critic
synthesis   rag-answerer, planner, aggregator, reporter, consensus, formatter, verifier,
            workflow-runner
=========== ==================================================================================

The ``embedder`` behind ``/v1/embeddings`` is an internal service (:data:`HELPERS`), not a member of a
team: the Storage team's process runs it, but it is not in :data:`ROSTER`, ``GET /v1/agents`` or the SDK.

Each entry (:class:`~agents.collective.AgentSpec`) gives name, team, capabilities, description, input
and output JSON schemas and the bridges used; ``GET /v1/agents/{name}`` serves it, and the orchestrator's
selection reads it.
"""

from __future__ import annotations

from agents.actor import Agent
from agents.analysis import ANALYSIS_AGENTS
from agents.collective import AgentSpec, spec_of
from agents.compression import COMPRESSION_AGENTS
from agents.inference import INFERENCE_AGENTS
from agents.storage import (
    ArchivistAgent,
    EmbedderAgent,
    EraserAgent,
    FetcherAgent,
    IndexerAgent,
    KeyWardenAgent,
    RetrieverAgent,
    SnapshotterAgent,
    VaultStatsAgent,
)
from agents.synthesis import SYNTHESIS_AGENTS

__all__ = ("AGENTS_BY_TEAM", "HELPERS", "ROSTER", "ROSTER_SIZE", "spec")

STORAGE_AGENTS: tuple[type[Agent], ...] = (
    ArchivistAgent,
    RetrieverAgent,
    FetcherAgent,
    EraserAgent,
    KeyWardenAgent,
    IndexerAgent,
    SnapshotterAgent,
    VaultStatsAgent,
)

AGENTS_BY_TEAM: dict[str, tuple[type[Agent], ...]] = {
    "inference": INFERENCE_AGENTS,
    "compression": COMPRESSION_AGENTS,
    "storage": STORAGE_AGENTS,
    "analysis": ANALYSIS_AGENTS,
    "synthesis": SYNTHESIS_AGENTS,
}
"""The 40 agent classes of the collective, by team, in roster order."""

HELPERS: tuple[type[Agent], ...] = (EmbedderAgent,)
"""Internal services the runtime also starts (the embedder behind ``/v1/embeddings``); they announce
``internal: true`` in their metadata, so discovery leaves them out of the agent listing."""

ROSTER: tuple[AgentSpec, ...] = tuple(spec_of(cls) for classes in AGENTS_BY_TEAM.values() for cls in classes)
"""The 40 agents of the collective (the internal services in :data:`HELPERS` are not members)."""

ROSTER_SIZE = sum(len(classes) for classes in AGENTS_BY_TEAM.values())
"""Agents of the collective proper (40)."""


def spec(name: str) -> AgentSpec:
    """The roster entry of ``name``.

    Raises:
        KeyError: No agent of that name.
    """
    for entry in ROSTER:
        if entry.name == name:
            return entry
    raise KeyError(name)

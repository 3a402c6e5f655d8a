"""``orchestrator.models_from_stats``: what a model *is* is taken from whichever replica knows it."""

from __future__ import annotations

from typing import Any

from orchestrator._models import models_from_stats

FACTS = {
    "architecture": "gemma3",
    "parameter_count": 268_098_176,
    "quantization": "Q4_K_M",
    "context_length_trained": 32768,
    "embedding_length": 640,
    "file_size": 253_113_024,
    "file_mtime": 1_796_596_842.4,
    "metadata": {"general.architecture": "gemma3", "general.file_type": 15},
}


def _pool(pool: str, state: str, **facts: Any) -> dict[str, Any]:
    status = {"name": "gemma", "pool": pool, "state": state, "n_ctx": 2048, "parallel": 4, **facts}
    return {
        "name": "generator",
        "metadata": {"team": "inference"},
        "endpoints": [{"data": {"models": [status]}}],
    }


def test_a_replica_that_has_not_read_the_file_leaves_the_facts_to_one_that_has() -> None:
    for answers in (
        [_pool("a", "unloaded"), _pool("b", "loaded", **FACTS)],
        [_pool("b", "loaded", **FACTS), _pool("a", "unloaded")],
    ):
        (model,) = models_from_stats(answers)
        assert model.replicas == 2 and model.loaded_replicas == 1 and model.status == "loaded"
        assert model.parameter_count == 268_098_176 and model.quantization == "Q4_K_M"
        assert model.architecture == "gemma3" and model.context_length_trained == 32768
        assert model.file_size == 253_113_024 and model.file_mtime == 1_796_596_842.4
        assert model.metadata["general.file_type"] == 15


def test_the_embedding_models_facts_come_from_the_embedders_stats() -> None:
    similarity = {"name": "similarity", "metadata": {"team": "analysis", "model": "all-MiniLM-L6-v2"}}
    embedder = {
        "name": "embedder",
        "metadata": {"team": "storage", "model": "all-MiniLM-L6-v2"},
        "endpoints": [{"data": {"model_facts": {"architecture": "bert", "parameter_count": 22_713_216}}}],
    }
    for answers in ([similarity, embedder], [embedder, similarity]):
        (model,) = models_from_stats(answers)
        assert model.kind == "embedding" and model.architecture == "bert"
        assert model.parameter_count == 22_713_216 and model.quantization is None
    (unknown,) = models_from_stats([similarity])
    assert unknown.parameter_count is None and unknown.metadata == {}

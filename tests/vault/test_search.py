"""Store -> search -> fetch on real text embedded by all-MiniLM-L6-v2, filters, thresholds, index kinds."""

from __future__ import annotations

import numpy as np
import pytest

from vault import IndexConfig, NewRecord, VaultConfig

# (document, paraphrased query) pairs on distinct topics.
PAIRS = [
    ("The invoice must be paid by Friday or a late fee applies.", "When is the bill due?"),
    ("Our cat sleeps on the warm windowsill every afternoon.", "Where does the kitty nap during the day?"),
    ("The database migration failed because a column was missing.", "Why did the schema upgrade break?"),
    ("Heavy rain is expected across the north of the country tomorrow.", "What is the weather forecast?"),
    ("She trained for months to run her first marathon in Berlin.", "Who prepared for a long race?"),
    ("Add two cups of flour and a pinch of salt to the dough.", "How much flour goes into the recipe?"),
    ("The telescope captured images of a distant spiral galaxy.", "What did the observatory photograph?"),
    ("Interest rates were raised by the central bank to fight inflation.", "Why did borrowing get costlier?"),
    ("The patient was prescribed antibiotics for a throat infection.", "What medicine did the doctor give?"),
    ("Our team won the football match with a goal in the last minute.", "Who scored the late winner?"),
    ("The new phone has a larger battery and a brighter screen.", "What improved in the latest handset?"),
    ("Volcanic ash grounded flights across Europe for a week.", "Why were planes unable to fly?"),
    ("The library extended its opening hours during exam season.", "When can students study later?"),
    ("A memory leak in the server caused it to crash every night.", "What made the service go down?"),
    (
        "The orchestra performed Beethoven's ninth symphony on Sunday.",
        "Which concert was played this weekend?",
    ),
    ("Farmers harvested a record wheat crop this summer.", "How was the grain harvest?"),
]


@pytest.fixture
def corpus_vault(make_vault):
    v = make_vault()
    records = [
        NewRecord(text=doc, id=f"doc-{i}", metadata={"topic": i, "parity": "even" if i % 2 == 0 else "odd"})
        for i, (doc, _) in enumerate(PAIRS)
    ]
    v.put_many("acme", records)
    return v


def test_paraphrased_queries_find_their_source(corpus_vault) -> None:
    top1 = 0
    for i, (_, query) in enumerate(PAIRS):
        hits = corpus_vault.search("acme", query, k=3)
        ids = [h.record.id for h in hits]
        assert f"doc-{i}" in ids, (query, ids)
        top1 += ids[0] == f"doc-{i}"
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert top1 / len(PAIRS) >= 0.8


def test_fetch_returns_what_was_stored(corpus_vault) -> None:
    record = corpus_vault.get("acme", "doc-3")
    assert record.text == PAIRS[3][0]
    assert record.metadata == {"topic": 3, "parity": "odd"}
    assert record.tenant == "acme"
    assert record.embedding.shape == (384,)
    assert record.embedding.dtype == np.float32
    assert np.linalg.norm(record.embedding) == pytest.approx(1.0, abs=1e-5)


def test_metadata_filter_only_returns_matching_records(corpus_vault) -> None:
    hits = corpus_vault.search("acme", "When is the bill due?", k=5, where={"parity": "odd"})
    assert len(hits) == 5
    assert all(h.record.metadata["parity"] == "odd" for h in hits)
    assert "doc-0" not in [h.record.id for h in hits]
    # A filter matching one record far from the query still finds it (over-fetch keeps doubling).
    hits = corpus_vault.search("acme", "When is the bill due?", k=3, where={"topic": 15})
    assert [h.record.id for h in hits] == ["doc-15"]
    assert corpus_vault.search("acme", "bill", k=3, where={"topic": 99}) == []
    assert corpus_vault.search("acme", "bill", k=3, where={"topic": True}) == []


def test_score_threshold_cuts_weak_hits(corpus_vault) -> None:
    hits = corpus_vault.search("acme", PAIRS[0][0], k=10, min_score=0.9)
    assert [h.record.id for h in hits] == ["doc-0"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_k_larger_than_tenant_returns_everything(corpus_vault) -> None:
    assert len(corpus_vault.search("acme", "anything at all", k=100)) == len(PAIRS)


def test_caller_vectors_and_vector_queries(make_vault, unit_vectors) -> None:
    v = make_vault()
    vectors = unit_vectors(20)
    ids = v.put_many("t", [NewRecord(text=f"item {i}", embedding=vec * 3.0) for i, vec in enumerate(vectors)])
    got = v.get("t", ids[7]).embedding
    np.testing.assert_allclose(got, vectors[7], atol=1e-6)  # stored normalised
    assert v.search("t", vectors[7], k=1)[0].record.id == ids[7]


def test_same_id_replaces_record(corpus_vault) -> None:
    corpus_vault.put("acme", "Penguins live in the southern hemisphere.", id="doc-0", metadata={"v": 2})
    assert corpus_vault.count("acme") == len(PAIRS)
    assert corpus_vault.get("acme", "doc-0").metadata == {"v": 2}
    hits = corpus_vault.search("acme", "Where do penguins live?", k=1)
    assert hits[0].record.id == "doc-0"
    assert "invoice" not in hits[0].record.text


def test_tenants_are_isolated(corpus_vault) -> None:
    corpus_vault.put("other", "The invoice must be paid by Friday.", id="o1")
    assert {h.record.id for h in corpus_vault.search("other", "When is the bill due?", k=5)} == {"o1"}
    assert corpus_vault.tenants() == ["acme", "other"]


def test_hnsw_beyond_threshold_keeps_recall(make_vault) -> None:
    config = VaultConfig(index=IndexConfig(hnsw_threshold=8))
    v = make_vault(config=config)
    v.put_many("acme", [NewRecord(text=doc, id=f"doc-{i}") for i, (doc, _) in enumerate(PAIRS)])
    assert v.join_background(30)
    assert v.stats().index_kinds == {"acme": "hnsw"}
    found = sum(
        f"doc-{i}" in [h.record.id for h in v.search("acme", q, k=3)] for i, (_, q) in enumerate(PAIRS)
    )
    assert found == len(PAIRS)
    v.close()
    reopened = make_vault(config=config)
    assert reopened.stats().index_kinds == {"acme": "hnsw"}
    assert reopened.search("acme", PAIRS[5][1], k=3)[0].record.id == "doc-5"


def test_embedders_of_one_model_share_it_within_a_process(embedder) -> None:
    from vault import MiniLMEmbedder

    other = MiniLMEmbedder(batch_size=8)  # e.g. the Analysis team's, beside the Storage team's
    texts = ["a shared model", "gives the same vectors"]
    assert np.array_equal(other.embed(texts), embedder.embed(texts))
    assert other._loaded_model() == embedder._loaded_model()  # one model and one lock, not two copies

"""The Storage team's eight agents on a real nats-server over a real vault (FAISS, MiniLM, AES-GCM).

Each test calls the agents through the orchestrator, the way the API does; the tenant travels in the
NATS header of the call.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from agents import AgentRunner, BadInputError, Bus, Call, DeadlineExceededError, NotFoundError, TooLargeError
from agents.collective import spec_of
from agents.limits import ENVELOPE_RESERVE_BYTES
from agents.storage import (
    STORAGE_AGENT_NAMES,
    ArchivistAgent,
    EmbedderAgent,
    RetrieverAgent,
    StorageAgent,
    storage_agents,
    vault_error,
)
from bridges.vault import VaultBridge
from orchestrator import Orchestrator, OrchestratorConfig, testing
from orchestrator.testing import running
from tests.agents.conftest import discovered
from vault import IntegrityError, MiniLMEmbedder, RecordTooLargeError, Vault, VaultConfig
from vault._private.wal import OP_PUT, scan_wal, wal_generations, wal_path

pytestmark = pytest.mark.anyio

DOCS = {
    "invoice": ("The invoice must be paid by Friday or a late fee applies.", {"kind": "finance"}),
    "cat": ("Our cat sleeps on the warm windowsill every afternoon.", {"kind": "pets"}),
    "migration": ("The database migration failed because a column was missing.", {"kind": "ops"}),
    "rain": ("Heavy rain is expected across the north of the country tomorrow.", {"kind": "weather"}),
    "leak": ("A memory leak in the server caused it to crash every night.", {"kind": "ops"}),
    "flour": ("Add two cups of flour and a pinch of salt to the dough.", {"kind": "food"}),
}
CONFIG = VaultConfig(max_record_bytes=4096, max_batch=64)


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    model = MiniLMEmbedder()
    model.load()
    return model


@pytest.fixture(autouse=True)
def _no_kek_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No KEK from the environment; per-vault key files under a private config dir (never ~/.config)."""
    monkeypatch.delenv("NEURECTOMY_VAULT_KEK", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def bridge(tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[VaultBridge]:
    v = Vault(tmp_path / "vault", config=CONFIG, embedder=embedder)
    yield VaultBridge(v, CONFIG, timeout_s=30)
    v.close()


@pytest.fixture
async def bus(nats_server: Any) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats_server.url, name="tests-storage") as connected:
        yield connected


@pytest.fixture
async def team(bus: Bus, bridge: VaultBridge, tmp_path: Path) -> AsyncIterator[Orchestrator]:
    """All eight agents running; yields an orchestrator to call them."""
    async with running(bus, storage_agents(bridge, snapshot_dir=tmp_path / "snapshots")) as orch:
        yield orch


async def call(
    orch: Orchestrator, agent: str, payload: dict[str, Any], tenant: str = "acme"
) -> dict[str, Any]:
    """One call in the tenant these tests use (``acme`` unless said)."""
    return await testing.call(orch, agent, payload, tenant=tenant)


async def load_docs(orch: Orchestrator, tenant: str = "acme") -> None:
    records = [{"id": i, "text": t, "metadata": m} for i, (t, m) in DOCS.items()]
    out = await call(orch, "archivist", {"records": records}, tenant)
    assert out == {"ids": list(DOCS), "count": len(DOCS), "sequence": None}  # file WAL: no log sequence


async def test_all_eight_agents_register_in_the_storage_team(team: Orchestrator) -> None:
    agents = await team.agents()
    assert sorted(a.name for a in agents) == sorted(STORAGE_AGENT_NAMES)
    assert {a.team for a in agents} == {"storage"}
    assert all(a.subject == f"neurectomy.agent.storage.{a.name}" for a in agents)


async def test_archivist_then_retriever_finds_paraphrases(team: Orchestrator) -> None:
    await load_docs(team)
    for query, expected in [
        ("When is the bill due?", "invoice"),
        ("Why did the schema upgrade break?", "migration"),
        ("What is the weather forecast?", "rain"),
    ]:
        hits = (await call(team, "retriever", {"query": query, "k": 3}))["hits"]
        assert hits[0]["id"] == expected, (query, hits)
        assert hits[0]["text"] == DOCS[expected][0]
        assert hits[0]["metadata"] == DOCS[expected][1]
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


async def test_retriever_filters_threshold_and_vector_query(team: Orchestrator) -> None:
    await load_docs(team)
    ops = await call(team, "retriever", {"query": "Why did the service crash?", "filters": {"kind": "ops"}})
    assert {h["id"] for h in ops["hits"]} == {"leak", "migration"}
    strict = await call(team, "retriever", {"query": "Why did the service crash?", "min_score": 0.45})
    assert strict["hits"] and all(h["score"] >= 0.45 for h in strict["hits"])
    assert len(strict["hits"]) < len(DOCS)
    cat = await call(team, "fetcher", {"id": "cat", "with_vector": True})
    assert len(cat["vector"]) == 384
    by_vector = await call(team, "retriever", {"vector": cat["vector"], "k": 1})
    assert by_vector["hits"][0]["id"] == "cat"
    assert by_vector["hits"][0]["score"] == pytest.approx(1.0, abs=1e-4)


async def test_upsert_replaces_and_fetcher_returns_the_new_version(team: Orchestrator) -> None:
    await load_docs(team)
    await call(
        team, "archivist", {"records": [{"id": "cat", "text": "The dog barks.", "metadata": {"v": 2}}]}
    )
    record = await call(team, "fetcher", {"id": "cat"})
    assert record == {
        "id": "cat",
        "tenant": "acme",
        "text": "The dog barks.",
        "metadata": {"v": 2},
        "vector": None,
    }
    generated = await call(team, "archivist", {"records": [{"text": "No id given."}]})
    assert len(generated["ids"][0]) == 32


async def test_tenant_in_the_header_isolates_tenants(team: Orchestrator) -> None:
    await load_docs(team, "acme")
    await call(team, "archivist", {"records": [{"id": "other", "text": "Globex builds rockets."}]}, "globex")
    hits = (await call(team, "retriever", {"query": "When is the bill due?", "k": 10}, "globex"))["hits"]
    assert [h["id"] for h in hits] == ["other"]
    with pytest.raises(NotFoundError):
        await call(team, "fetcher", {"id": "invoice"}, "globex")
    with pytest.raises(NotFoundError):
        await call(team, "eraser", {"id": "invoice"}, "globex")
    assert (await call(team, "fetcher", {"id": "invoice"}, "acme"))["tenant"] == "acme"
    nobody = await call(team, "retriever", {"query": "anything"}, "nobody")
    assert nobody == {"hits": []}


async def test_eraser_deletes_records_and_shreds_the_callers_tenant(
    team: Orchestrator, bridge: VaultBridge
) -> None:
    await load_docs(team)
    erased = await call(team, "eraser", {"id": "cat"})
    assert erased == {"deleted": "record", "id": "cat", "tenant": "acme", "sequence": None}
    with pytest.raises(NotFoundError) as gone:
        await call(team, "fetcher", {"id": "cat"})
    assert gone.value.field == "id"
    with pytest.raises(BadInputError) as other:
        await call(team, "eraser", {"tenant": "globex"})
    assert other.value.field == "tenant"
    shred = await call(team, "eraser", {"tenant": "acme"})
    assert shred == {"deleted": "tenant", "id": None, "tenant": "acme", "sequence": None}
    assert "acme" not in bridge.vault.tenants()
    with pytest.raises(NotFoundError):
        await call(team, "fetcher", {"id": "invoice"})
    assert (await call(team, "retriever", {"query": "When is the bill due?"}))["hits"] == []
    with pytest.raises(NotFoundError):
        await call(team, "eraser", {"tenant": "acme"})
    for path in bridge.data_dir.rglob("*"):
        if path.is_file():
            assert b"invoice must be paid" not in path.read_bytes(), path


async def test_key_warden_rotates_kek_and_data_key(team: Orchestrator, bridge: VaultBridge) -> None:
    await load_docs(team)
    kek_file = bridge.vault.kek_file
    assert kek_file is not None and not kek_file.is_relative_to(bridge.data_dir)
    before = kek_file.read_bytes()
    rotated = await call(team, "key-warden", {"scope": "kek"})
    assert rotated["scope"] == "kek" and len(rotated["kek_id"]) == 16
    assert kek_file.read_bytes() != before
    data_key = await call(team, "key-warden", {"scope": "data_key"})
    assert data_key["tenant"] == "acme" and data_key["key_version"] >= 2
    await call(team, "archivist", {"records": [{"id": "new", "text": "Written under the new data key."}]})
    assert (await call(team, "fetcher", {"id": "invoice"}))["text"] == DOCS["invoice"][0]
    assert (await call(team, "fetcher", {"id": "new"}))["text"] == "Written under the new data key."
    with pytest.raises(NotFoundError):
        await call(team, "key-warden", {"scope": "data_key"}, "nobody")


async def test_indexer_compacts_tombstones(team: Orchestrator) -> None:
    await load_docs(team)
    for record_id in ("cat", "rain"):
        await call(team, "eraser", {"id": record_id})
    status = await call(team, "indexer", {"op": "status"})
    assert status["tombstones"] == 2 and status["records"] == len(DOCS) - 2
    assert status["index_kind"] == "flat"
    out = await call(team, "indexer", {"op": "compact"})
    assert out["tombstones_removed"] == 2 and out["tombstones"] == 0
    assert out["records"] == len(DOCS) - 2
    hits = (await call(team, "retriever", {"query": "Where does the kitty nap?", "k": 10}))["hits"]
    assert "cat" not in {h["id"] for h in hits}


async def test_snapshotter_snapshot_list_restore(team: Orchestrator) -> None:
    await load_docs(team)
    snap = await call(team, "snapshotter", {"op": "snapshot", "name": "before"})
    assert snap["name"] == "before" and snap["generation"] >= 1
    await call(team, "archivist", {"records": [{"id": "later", "text": "Added after the snapshot."}]})
    await call(team, "eraser", {"id": "cat"})
    listed = await call(team, "snapshotter", {"op": "list"})
    assert [s["name"] for s in listed["snapshots"]] == ["before"]
    with pytest.raises(BadInputError) as exists:
        await call(team, "snapshotter", {"op": "snapshot", "name": "before"})
    assert exists.value.field == "name"
    await call(team, "snapshotter", {"op": "restore", "name": "before"})
    assert (await call(team, "fetcher", {"id": "cat"}))["text"] == DOCS["cat"][0]
    with pytest.raises(NotFoundError):
        await call(team, "fetcher", {"id": "later"})
    with pytest.raises(NotFoundError) as unknown:
        await call(team, "snapshotter", {"op": "restore", "name": "nope"})
    assert unknown.value.field == "name"


async def test_cache_keeper_reports_hit_ratio(team: Orchestrator) -> None:
    await load_docs(team)
    for _ in range(3):
        await call(team, "fetcher", {"id": "invoice"})
    stats = await call(team, "vault-stats", {})
    assert stats["tenant"] == "acme" and stats["tenant_records"] == len(DOCS)
    assert stats["l1_hits"] >= 2 and 0.0 < stats["hit_ratio"] <= 1.0
    assert stats["index_kind"] == "flat" and stats["gpu"] is False
    other = await call(team, "vault-stats", {}, "globex")
    assert other["tenant_records"] == 0 and other["index_kind"] is None


async def test_embedder_returns_the_vaults_vectors_and_token_counts(
    bus: Bus, bridge: VaultBridge, embedder: MiniLMEmbedder
) -> None:
    texts = ["The invoice is due on Friday.", "A cat sleeps."]
    async with anyio.create_task_group() as tg:
        await tg.start(AgentRunner(bus, EmbedderAgent(bridge)).run)
        orch = Orchestrator(bus)
        out = await call(orch, "embedder", {"texts": texts}, tenant="nobody-needed")
        listed = [a.name for a in await orch.agents()]
        models = {m.id: m for m in await orch.models()}
        with pytest.raises(BadInputError) as bad:
            await call(orch, "embedder", {"texts": ["fine", " "]})
        tg.cancel_scope.cancel()
    assert out["model"] == "all-MiniLM-L6-v2" and out["dim"] == 384
    assert "embedder" not in listed  # an internal service, not a member of the Storage team
    assert models["all-MiniLM-L6-v2"].agent == "embedder" and models["all-MiniLM-L6-v2"].kind == "embedding"
    expected = embedder.embed(texts)
    assert abs(expected - out["vectors"]).max() < 1e-5
    assert out["tokens"] == [len(t) for t in embedder._loaded_model()[0].tokenizer(texts)["input_ids"]]
    assert bad.value.field == "texts.1"


@pytest.mark.parametrize(
    ("agent", "payload", "field"),
    [
        ("archivist", {"records": []}, "records"),
        ("archivist", {"records": [{"text": ""}]}, "records.0.text"),
        ("archivist", {"records": [{"text": "ok"}, {"text": "   "}]}, "records.1.text"),
        ("archivist", {"records": [{"text": "ok", "vector": [0.1, 0.2]}]}, "records.0.vector"),
        ("archivist", {"records": [{"text": "ok", "colour": "red"}]}, "records.0.colour"),
        ("archivist", {"records": [{"text": f"r{i}"} for i in range(65)]}, "records"),
        ("retriever", {"query": "x", "k": 0}, "k"),
        ("retriever", {"query": "x", "vector": [1.0] * 384}, "query"),
        ("retriever", {}, "query"),
        ("retriever", {"vector": [0.0] * 384}, "vector"),
        ("retriever", {"vector": [1.0] * 3}, "vector"),
        ("retriever", {"query": "x", "filters": {"kind": ["a"]}}, "filters.kind.str"),
        ("fetcher", {}, "id"),
        ("eraser", {}, "id"),
        ("key-warden", {"scope": "everything"}, "scope"),
        ("snapshotter", {"op": "snapshot", "name": "../escape"}, "name"),
        ("snapshotter", {"op": "restore"}, "name"),
    ],
)
async def test_bad_input_names_the_field(
    team: Orchestrator, agent: str, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadInputError) as info:
        await call(team, agent, payload)
    assert info.value.field == field, info.value


async def test_oversized_record_is_too_large_with_the_limit(team: Orchestrator) -> None:
    with pytest.raises(TooLargeError) as info:
        await call(team, "archivist", {"records": [{"text": "x" * 5000}]})
    assert "4096" in info.value.message


async def test_output_over_the_nats_payload_is_refused(bus: Bus, bridge: VaultBridge) -> None:
    big = [{"id": f"r{i}", "text": f"record {i} " + "word " * 700} for i in range(8)]  # ~3.5 kB each
    small_bus = ENVELOPE_RESERVE_BYTES + 16 * 1024  # room for 16 KiB of output
    archivist = storage_agents(bridge, snapshot_dir=Path("/nonexistent"))[0]
    async with running(bus, [archivist, RetrieverAgent(bridge, max_payload_bytes=small_bus)]) as orch:
        await call(orch, "archivist", {"records": big})
        with pytest.raises(TooLargeError) as info:
            await call(orch, "retriever", {"query": "record", "k": 8})
        assert "smaller k" in info.value.message
        assert len((await call(orch, "retriever", {"query": "record", "k": 2}))["hits"]) == 2


def test_every_storage_agent_publishes_its_output_model_and_must_declare_one(bridge: VaultBridge) -> None:
    for agent in [*storage_agents(bridge, snapshot_dir=Path("/nonexistent")), EmbedderAgent(bridge)]:
        schema = spec_of(type(agent)).output_schema  # what GET /v1/agents/{name} serves
        assert agent.output_model is not None and agent.output_model.__module__ == "agents.storage.wire"
        assert schema["title"] == agent.output_model.__name__ and schema["properties"], agent.name

    class Undeclared(StorageAgent):
        name = "t-undeclared"
        description = "Declares no output model."

        async def work(self, call: Call) -> BaseModel:
            raise NotImplementedError

    with pytest.raises(TypeError, match="output_model"):
        Undeclared(bridge)


def test_vault_error_mapping_names_file_and_limit(tmp_path: Path) -> None:
    corrupt = vault_error(IntegrityError(tmp_path / "t_x" / "segment.1", "bad tag", offset=12))
    assert corrupt.code == "internal" and "segment.1" in corrupt.message and "byte 12" in corrupt.message
    large = vault_error(RecordTooLargeError(5000, 4096))
    assert large.code == "too_large" and "4096" in large.message


async def test_start_storage_runs_one_agent_and_closes_the_vault(bus: Bus, tmp_path: Path) -> None:
    from contextlib import AsyncExitStack

    from neurectomy.server.teams import start_storage
    from neurectomy.settings import Settings

    settings = Settings(state_dir=tmp_path / "state")
    async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
        with pytest.raises(ValueError, match="no agent 'librarian'"):
            await start_storage(settings, stack, bus, tg, agent="librarian")
    async with AsyncExitStack() as stack:
        async with anyio.create_task_group() as tg:
            await start_storage(settings, stack, bus, tg, agent="vault-stats", replicas=2)
            agents = await discovered(
                Orchestrator(bus), lambda agents: bool(agents) and agents[0].replicas >= 2
            )
            assert [(a.name, a.replicas) for a in agents] == [("vault-stats", 2)]
            orch = Orchestrator(bus)
            stats = await orch.call_once("storage", "vault-stats", {}, orch.context(tenant="acme"))
            assert stats["records"] == 0
            tg.cancel_scope.cancel()
        keys = tmp_path / "config" / "neurectomy" / "vault-keys"
        assert [p.stat().st_mode & 0o777 for p in keys.glob("*.key")] == [0o600]
        assert not list((tmp_path / "state" / "vault").glob("*.key"))
    # Closed: the directory lock is free again, so another vault can open it.
    Vault(tmp_path / "state" / "vault", embedder=MiniLMEmbedder()).close()


# ----------------------------------------------------------------- retries, timeouts and idempotency
FAST = OrchestratorConfig(backoff_base_s=0.01, backoff_max_s=0.05)


class LateArchivist(ArchivistAgent):
    """Commits the write, then answers too late the first time (the answer of a write that happened is
    lost, as when a reply is delayed): the router times the attempt out and retries."""

    def __init__(self, bridge: VaultBridge) -> None:
        super().__init__(bridge)
        self.calls = 0

    async def work(self, call: Call) -> dict[str, Any]:
        out = await super().work(call)
        self.calls += 1
        if self.calls == 1:
            await anyio.sleep(call.remaining_s() + 0.05)  # until the attempt's deadline has passed
        return out


class BlockingEmbedder:
    """The real MiniLM, but its first call waits for ``release`` (a write stuck past its deadline)."""

    def __init__(self, inner: MiniLMEmbedder) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.release = threading.Event()
        self.blocked = threading.Event()

    def embed(self, texts: Any) -> Any:
        if not self.blocked.is_set():
            self.blocked.set()
            self.release.wait(30)
        return self.inner.embed(texts)


def wal_puts(data_dir: Path, tenant: str) -> list[str]:
    """Record ids of every PUT in the vault's WAL files (each write logged, duplicates included)."""
    return [
        e.record_id
        for gen in wal_generations(data_dir)
        for e in scan_wal(wal_path(data_dir, gen)).entries
        if e.op == OP_PUT and e.tenant == tenant
    ]


async def test_write_whose_answer_came_too_late_is_retried_by_the_router_and_exists_once(
    bus: Bus, bridge: VaultBridge
) -> None:
    late = LateArchivist(bridge)
    orch = Orchestrator(bus, FAST, specs=[spec_of(ArchivistAgent)])
    records = [{"text": "A write retried by the router."}, {"text": "Its second record, without an id."}]
    ctx = orch.context(tenant="acme", timeout_s=30)
    async with anyio.create_task_group() as tg:
        await tg.start(AgentRunner(bus, late).run)
        inv = await orch.invoke("archivist", {"records": records}, ctx, timeout_s=5.0, retries=2)
        tg.cancel_scope.cancel()
    # The first answer is always late; on a loaded machine a second attempt can time out too (a third
    # then answers): what matters is that the router retried and the records exist once.
    assert inv.attempts >= 2 and "archivist: timeout" in inv.failovers and late.calls >= 2
    ids = inv.output["ids"]
    assert inv.output["count"] == 2 and len(set(ids)) == 2
    assert await bridge.count("acme") == 2
    assert wal_puts(bridge.data_dir, "acme") == ids  # written once, not once per attempt
    assert (await bridge.get("acme", ids[1])).text == records[1]["text"]


async def test_write_that_timed_out_did_not_happen_and_a_retry_writes_it_once(
    bus: Bus, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    blocking = BlockingEmbedder(embedder)
    v = Vault(tmp_path / "slow-vault", config=CONFIG, embedder=blocking)
    slow = VaultBridge(v, CONFIG, timeout_s=30)
    orch = Orchestrator(bus, FAST, specs=[spec_of(ArchivistAgent)])
    payload = {"records": [{"id": "late", "text": "Embedding this took longer than the caller waited."}]}
    ctx = orch.context(tenant="acme", timeout_s=30, idempotency_key="client-call-1")  # the caller's retries
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(AgentRunner(bus, ArchivistAgent(slow)).run)
            with pytest.raises(DeadlineExceededError):
                await orch.invoke("archivist", payload, ctx, timeout_s=0.5, retries=0)  # the API's 504
            assert blocking.blocked.is_set()
            blocking.release.set()  # the stuck thread goes on, past its deadline
            with anyio.fail_after(10):
                while slow.metrics.op("put_many").timeouts == 0:
                    await anyio.sleep(0.01)
            assert await slow.count("acme") == 0  # did not happen, and never will
            assert wal_puts(v.data_dir, "acme") == []
            again = await orch.invoke("archivist", payload, ctx, timeout_s=5.0, retries=0)
            assert again.output == {"ids": ["late"], "count": 1, "sequence": None}
            repeat = await orch.invoke("archivist", payload, ctx, timeout_s=5.0, retries=0)
            assert repeat.output == again.output
            tg.cancel_scope.cancel()
        assert wal_puts(v.data_dir, "acme") == ["late"]
    finally:
        blocking.release.set()
        v.close()

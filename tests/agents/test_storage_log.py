"""ΣVAULT's record log on a real JetStream: two Storage replicas (two vaults) serve the same records.

One nats-server with JetStream (the session's); the replicas are two :class:`RecordLog` over two vault
directories sharing one KEK, in this process. The cluster test (tests/neurectomy/test_cluster_e2e.py)
runs them as separate ``neurectomy agent --team storage`` processes on a three-node cluster.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from agents import BadInputError, Bus, TooLargeError
from agents.jetstream import JetStream
from agents.storage import LogBehindError, RecordLog, VaultLogConfig, storage_agents
from bridges.vault import VaultBridge
from orchestrator import testing
from orchestrator.testing import running
from vault import (
    KeyEncryptionKeyError,
    MiniLMEmbedder,
    NewRecord,
    RecordNotFoundError,
    TenantNotFoundError,
    Vault,
    VaultConfig,
)

pytestmark = pytest.mark.anyio

CONFIG = VaultConfig(max_record_bytes=4096, max_batch=64)
Replica = Callable[[str], AbstractAsyncContextManager[RecordLog]]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    model = MiniLMEmbedder()
    model.load()
    return model


@pytest.fixture(autouse=True)
def _shared_kek(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every replica has the same KEK (as a cluster's Storage replicas get it from one secret)."""
    monkeypatch.setenv("NEURECTOMY_VAULT_KEK", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def log_config() -> VaultLogConfig:
    """A stream and bucket of this test only (the session's server is shared)."""
    tag = uuid.uuid4().hex[:8]
    return VaultLogConfig(
        mode="jetstream",
        stream=f"VAULT_LOG_{tag}",
        subject_prefix=f"test.{tag}.vault.log",
        keyring_bucket=f"vault_keyring_{tag}",
        read_wait_s=0.3,
    )


@pytest.fixture
def replica(bus: Bus, embedder: MiniLMEmbedder, log_config: VaultLogConfig, tmp_path: Path) -> Replica:
    """``async with replica("a") as log``: a replica on ``tmp_path/a``, following the stream meanwhile."""

    @asynccontextmanager
    async def run(name: str) -> AsyncIterator[RecordLog]:
        vault = Vault(tmp_path / name, config=CONFIG, embedder=embedder)
        bridge = VaultBridge(vault, CONFIG, timeout_s=30)
        try:
            record_log = RecordLog(bridge, JetStream(bus), log_config, max_payload_bytes=bus.max_payload)
            await record_log.open()
            async with anyio.create_task_group() as tg:
                await tg.start(record_log.run)
                yield record_log
                tg.cancel_scope.cancel()
        finally:
            await bridge.aclose()

    return run


async def call(bus_orch: Any, agent: str, payload: dict[str, Any], tenant: str = "acme") -> dict[str, Any]:
    return await testing.call(bus_orch, agent, payload, tenant=tenant)


async def test_a_write_through_one_replica_is_served_by_the_other(
    bus: Bus, replica: Replica, tmp_path: Path
) -> None:
    async with replica("a") as a, replica("b") as b:
        agents_a = storage_agents(a.bridge, snapshot_dir=tmp_path / "snapshots", log=a)
        async with running(bus, agents_a) as orch:
            record = {"id": "inv", "text": "The invoice is due on Friday."}
            out = await call(orch, "archivist", {"records": [record]})
            assert out["ids"] == ["inv"] and out["sequence"] >= 1
            found = await call(orch, "fetcher", {"id": "inv", "after_sequence": out["sequence"]})
            assert found["text"] == record["text"]  # the writer applied its own write before answering
            erased = await call(orch, "eraser", {"id": "inv"})
            assert erased["sequence"] > out["sequence"]
            with pytest.raises(BadInputError) as kek:  # one replica cannot re-key the cluster's vault
                await call(orch, "key-warden", {"scope": "kek"})
            assert kek.value.field == "scope"
            with pytest.raises(BadInputError) as restore:  # the stream, not a snapshot copy, is the truth
                await call(orch, "snapshotter", {"op": "restore", "name": "any"})
            assert restore.value.field == "op"
            a.max_payload_bytes = 8192
            many = [{"id": f"r{i}", "text": f"record {i}"} for i in range(8)]
            with pytest.raises(TooLargeError) as large:  # sealed: 8 x ~1.6 KB of vectors and text
                await call(orch, "archivist", {"records": many})
            assert large.value.field == "records" and "8192" in large.value.message
        assert await b.wait_applied(out["sequence"], 10)
        assert a.replica.tenant_keys("acme") == b.replica.tenant_keys("acme")  # one data key, shared
        assert await b.wait_applied(erased["sequence"], 10)
        with pytest.raises(RecordNotFoundError):
            await b.bridge.get("acme", "inv")
        with pytest.raises(LogBehindError):
            await b.caught_up(erased["sequence"] + 1000, timeout_s=5)  # bounded by read_wait_s (0.3 s)


async def test_replicas_agree_on_keys_rotation_and_shred(replica: Replica) -> None:
    async with replica("a") as a, replica("b") as b:
        async with anyio.create_task_group() as tg:  # both create the tenant's key at once: one wins
            tg.start_soon(a.ensure_key, "acme")
            tg.start_soon(b.ensure_key, "acme")
        assert a.replica.tenant_keys("acme") == b.replica.tenant_keys("acme")
        ids, first = await a.put_many(
            "acme", [NewRecord("old key", id="r1")], idempotency_key=None, timeout_s=10
        )
        version = await b.rotate_data_key("acme")
        ids, second = await a.put_many(
            "acme", [NewRecord("new key", id="r2")], idempotency_key=None, timeout_s=10
        )
        assert await b.wait_applied(second, 10)
        assert (await b.bridge.get("acme", "r2")).text == "new key"  # sealed under the rotated key
        assert (await b.bridge.get("acme", "r1")).text == "old key"
        assert version > 1 and b.replica.has_key("acme", version)
        shred = await b.shred("acme", idempotency_key="shred-1", timeout_s=10)
        assert await a.wait_applied(shred, 10)
        assert await a.shred("acme", idempotency_key="shred-1", timeout_s=10) == a.applied  # a retry: done
        for r in (a, b):
            with pytest.raises(TenantNotFoundError):
                await r.bridge.get("acme", "r1")
        ids, again = await a.put_many(
            "acme", [NewRecord("reborn", id="r3")], idempotency_key=None, timeout_s=10
        )
        assert await b.wait_applied(again, 10) and (await b.bridge.get("acme", "r3")).text == "reborn"


async def test_a_restarted_replica_catches_up_from_its_snapshot_and_the_stream(replica: Replica) -> None:
    async with replica("a") as a:
        async with replica("b") as b:
            _, seq = await a.put_many(
                "acme",
                [NewRecord(f"note {i}", id=f"n{i}") for i in range(5)],
                idempotency_key="k",
                timeout_s=10,
            )
            assert await b.wait_applied(seq, 10)
        # b is closed (snapshot on close); writes go on without it
        _, later = await a.put_many(
            "acme", [NewRecord("while b was away", id="late")], idempotency_key=None, timeout_s=10
        )
        async with replica("b") as b:  # started() only once caught up with the stream's last sequence
            assert b.applied >= later
            assert (await b.bridge.get("acme", "late")).text == "while b was away"
            assert await b.bridge.count("acme") == 6
            ids, same = await b.put_many("acme", [NewRecord("x")], idempotency_key="k", timeout_s=10)
            assert ids == [f"n{i}" for i in range(5)]  # the first call's answer: nothing written again


async def test_a_replica_with_another_kek_is_refused_at_start(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with replica("a") as a:
        await a.ensure_key("acme")
        monkeypatch.setenv("NEURECTOMY_VAULT_KEK", base64.b64encode(os.urandom(32)).decode())
        with pytest.raises(KeyEncryptionKeyError, match="same KEK"):  # else it would serve an empty vault
            async with replica("b"):
                pass

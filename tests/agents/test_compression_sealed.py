"""ΣLANG RSUs sealed at rest with the tenant's vault data key: the Compression agents on a real
nats-server over a `DiskRSUStore` with `VaultChunkSealer` (real AES-256-GCM, real SQLite, real vault)."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agents import Bus, NotFoundError
from agents.compression import COMPRESSION_AGENTS
from bridges.sigma import SigmaBridge
from bridges.tenant_seal import VaultChunkSealer
from bridges.vault import VaultBridge
from orchestrator import Orchestrator, testing
from orchestrator.testing import running
from sigmalang import DictionaryRegistry, DiskRSUStore, MissingRSUError, RSUStoreError, SigmaCodec
from sigmalang.chunking import rsu_id
from vault import Vault, VaultConfig

pytestmark = pytest.mark.anyio

CANARY = b"canary-7f3a9c1e-sealed-at-rest-"
SHARED = b"The same system prompt for every tenant: answer briefly, cite sources, never guess. " * 30


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@asynccontextmanager
async def sealed_team(bus: Bus, state: Path, v: Vault) -> AsyncIterator[tuple[Orchestrator, DiskRSUStore]]:
    store = DiskRSUStore(state / "sigma" / "rsu.db", sealer=VaultChunkSealer(v))
    codec = SigmaCodec(store=store, dictionaries=DictionaryRegistry(state / "sigma" / "dictionaries"))
    async with (
        SigmaBridge(codec, count_tokens=None) as bridge,
        running(bus, [cls(bridge) for cls in COMPRESSION_AGENTS]) as orchestrator,
    ):
        yield orchestrator, store


async def call(orch: Orchestrator, agent: str, payload: dict[str, Any], tenant: str) -> dict[str, Any]:
    return await testing.call(orch, agent, payload, tenant=tenant)


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_sealed_rsus_hide_content_and_sharing_and_are_shredded_with_the_tenant(
    bus: Bus, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    message = SHARED + CANARY * 40
    with Vault(state / "vault") as v:
        async with sealed_team(bus, state, v) as (orch, store):
            made: dict[str, str] = {}
            for t in ("acme", "globex"):
                await call(orch, "compressor", {"data": b64(message), "stream": "s"}, t)
                # The second turn references the first's RSUs (a frame without references carries its
                # content itself and needs no store).
                second = await call(
                    orch, "compressor", {"data": b64(message + b"next turn"), "stream": "s"}, t
                )
                assert second["report"]["glyphs"] > 0
                made[t] = second["frame"]
            for t, frame in made.items():
                out = await call(orch, "decompressor", {"frame": frame}, t)
                assert base64.b64decode(out["data"]) == message + b"next turn"
            # Nothing of the content is in any file of the state directory (the WAL included).
            assert files_holding(state / "sigma", CANARY) == []
            assert files_holding(state, CANARY) == [] and files_holding(state, SHARED[:64]) == []
            # The same chunk stored by two tenants: different row ids, no row id is a content id.
            rows: dict[str, dict[bytes, int]] = {}
            with sqlite3.connect(state / "sigma" / "rsu.db") as db:
                for t in made:
                    rows[t] = {
                        bytes(i): s
                        for i, s in db.execute("SELECT id, seq FROM rsu_v3 WHERE tenant = ?", (t,))
                    }
            assert rows["acme"] and rows["acme"].keys().isdisjoint(rows["globex"].keys())
            chunks = store.get_many("acme", sorted(rows["acme"].values()))
            assert chunks == store.get_many("globex", sorted(rows["globex"].values()))  # the same chunks
            content_ids = [rsu_id(c) for c in chunks]
            assert set(content_ids).isdisjoint(rows["acme"].keys() | rows["globex"].keys())
            # Lookups still take content ids.
            assert store.seqs("acme", content_ids) == dict(
                zip(content_ids, sorted(rows["acme"].values()), strict=True)
            )

            # Crypto-shred acme: its frames now fail with not-found, globex is untouched.
            v.delete_tenant("acme")
            with pytest.raises(NotFoundError):
                await call(orch, "decompressor", {"frame": made["acme"]}, "acme")
            with pytest.raises(MissingRSUError):
                store.get_many("acme", [1])
            assert store.stats("acme").rsus == 0  # its rows were dropped when the dead key was seen
            out = await call(orch, "decompressor", {"frame": made["globex"]}, "globex")
            assert base64.b64decode(out["data"]) == message + b"next turn"
            # acme may start again (a new data key, new row-id key); the old frame stays unreadable.
            again = (await call(orch, "compressor", {"data": b64(message)}, "acme"))["frame"]
            assert (
                base64.b64decode((await call(orch, "decompressor", {"frame": again}, "acme"))["data"])
                == message
            )
            with pytest.raises(NotFoundError):
                await call(orch, "decompressor", {"frame": made["acme"]}, "acme")


def test_an_altered_sealed_row_raises_instead_of_returning_bytes(tmp_path: Path) -> None:
    with Vault(tmp_path / "vault") as v:
        store = DiskRSUStore(tmp_path / "rsu.db", sealer=VaultChunkSealer(v))
        [(seq, _)] = store.put_many("acme", [(rsu_id(b"hello world"), b"hello world")])
        store.close()
        with sqlite3.connect(tmp_path / "rsu.db") as db:
            db.execute("UPDATE rsu_data_v3 SET data = CAST(data || x'00' AS BLOB)")  # noqa: S608 - test
        with DiskRSUStore(tmp_path / "rsu.db", sealer=VaultChunkSealer(v)) as again:
            with pytest.raises(RSUStoreError, match="does not open"):
                again.get_many("acme", [seq])
            # Another tenant's sealed row moved under this tenant's id does not open either.
            [(other, _)] = again.put_many("globex", [(rsu_id(b"other"), b"other")])
            [(mine, _)] = again.put_many("acme", [(rsu_id(b"mine"), b"mine")])
            with sqlite3.connect(tmp_path / "rsu.db") as db:
                (blob,) = db.execute(
                    "SELECT data FROM rsu_data_v3 WHERE tenant = 'globex' AND seq = ?", (other,)
                ).fetchone()
                db.execute("UPDATE rsu_data_v3 SET data = ? WHERE tenant = 'acme' AND seq = ?", (blob, mine))
            again.close()
        with DiskRSUStore(tmp_path / "rsu.db", sealer=VaultChunkSealer(v)) as again:
            with pytest.raises(RSUStoreError, match="does not open"):
                again.get_many("acme", [mine])
        with pytest.raises(RSUStoreError, match="holds sealed content"):
            DiskRSUStore(tmp_path / "rsu.db")


def test_sealed_byte_counts_are_the_stored_length(tmp_path: Path) -> None:
    with (
        Vault(tmp_path / "vault") as v,
        DiskRSUStore(tmp_path / "rsu.db", sealer=VaultChunkSealer(v)) as store,
    ):
        store.put_many("acme", [(rsu_id(b"x" * 100), b"x" * 100), (rsu_id(b"y" * 50), b"y" * 50)])
        assert store.stats("acme").bytes == 150 + 2 * 32
        assert store.get_many("acme", [2, 1]) == [b"y" * 50, b"x" * 100]


async def test_deleting_the_tenant_through_the_vault_bridge_drops_its_rows(tmp_path: Path) -> None:
    with Vault(tmp_path / "vault") as v:
        store = DiskRSUStore(tmp_path / "rsu.db", sealer=VaultChunkSealer(v))
        codec = SigmaCodec(store=store, dictionaries=DictionaryRegistry(tmp_path / "dictionaries"))
        vault = VaultBridge(v, VaultConfig())
        async with SigmaBridge(codec, count_tokens=None) as sigma:
            vault.on_tenant_deleted.append(sigma.forget_tenant)  # as `start_compression` wires it
            await sigma.compress(SHARED, tenant="acme", stream="s")
            await sigma.compress(SHARED, tenant="globex", stream="s")
            assert store.stats("acme").rsus > 0
            await vault.delete_tenant("acme")
            assert store.stats("acme").rsus == 0 and store.stats("globex").rsus > 0

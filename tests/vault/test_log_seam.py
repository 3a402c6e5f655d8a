"""The log seam: writes sealed on one vault and applied, in log order, by two (real crypto, real FAISS).

The record log and the shared keyring are played here by a list and a dict with compare-and-set (in the
service they are a replicated JetStream stream and a KV bucket: tests/neurectomy/test_cluster_e2e.py).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from vault import (
    IntegrityError,
    KeyEncryptionKeyError,
    LogReplica,
    NewRecord,
    RecordNotFoundError,
    TenantNotFoundError,
    Vault,
)
from vault.log import SealedWrite

VaultFactory = Callable[..., Vault]


class SharedLog:
    """The record log (sequence = position + 1) and the shared keyring (key → document, CAS on create)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.keyring: dict[str, bytes] = {}
        self.next_version = 1

    def append(self, write: SealedWrite) -> int:
        self.messages.append(write.data)
        return len(self.messages)

    def ensure_key(self, replica: LogReplica, tenant: str) -> None:
        if tenant not in self.keyring:
            self.keyring[tenant] = replica.new_tenant_key(tenant, self.next_version, None)
            self.next_version += 1
        replica.install_tenant_keys(tenant, self.keyring[tenant])

    def catch_up(self, replica: LogReplica) -> int:
        applied = 0
        for seq in range(replica.sequence + 1, len(self.messages) + 1):
            data = self.messages[seq - 1]
            for tenant, version in replica.key_versions(data):
                if not replica.has_key(tenant, version):
                    if tenant in self.keyring:
                        replica.install_tenant_keys(tenant, self.keyring[tenant])
                    else:
                        replica.forget_key_versions({version})
            applied += replica.apply(data, seq)
        return applied


@pytest.fixture(autouse=True)
def _shared_kek(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURECTOMY_VAULT_KEK", base64.b64encode(os.urandom(32)).decode())


def test_records_sealed_on_one_replica_are_served_by_the_other(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    a, b = LogReplica(make_vault(tmp_path / "a")), LogReplica(make_vault(tmp_path / "b"))
    log = SharedLog()
    log.ensure_key(a, "acme")
    texts = ["The invoice is due on Friday.", "Cats sleep most of the day.", "Rust has no garbage collector."]
    write = a.seal_put("acme", [NewRecord(t, {"n": i}) for i, t in enumerate(texts)], idempotency_key="k1")
    seq = log.append(write)
    with pytest.raises(RecordNotFoundError):
        a.vault.get("acme", write.result[0])  # sealed, not applied: nothing stored yet
    assert log.catch_up(a) == 1 and log.catch_up(b) == 1
    assert a.sequence == b.sequence == seq
    hit = b.vault.search("acme", "when must the bill be paid?", k=1)[0]
    assert (hit.record.text, hit.record.metadata) == (texts[0], {"n": 0})
    assert [b.vault.get("acme", i).text for i in write.result] == texts
    assert b.done("acme", "k1") == write.result  # the idempotency result travelled with the records
    assert b.apply(log.messages[0], seq) is False  # a redelivered message changes nothing


def test_delete_and_shred_go_through_the_log(make_vault: VaultFactory, tmp_path: Path) -> None:
    a, b = LogReplica(make_vault(tmp_path / "a")), LogReplica(make_vault(tmp_path / "b"))
    log = SharedLog()
    log.ensure_key(a, "acme")
    ids = a.seal_put("acme", [NewRecord("first"), NewRecord("second")]).result
    log.append(a.seal_put("acme", [NewRecord("first", id="r1"), NewRecord("second", id="r2")]))
    log.catch_up(a)
    log.append(a.seal_delete("acme", "r1"))
    log.catch_up(a), log.catch_up(b)
    assert len(ids) == 2
    for v in (a.vault, b.vault):
        with pytest.raises(RecordNotFoundError):
            v.get("acme", "r1")
        assert v.get("acme", "r2").text == "second"
    with pytest.raises(RecordNotFoundError):
        b.seal_delete("acme", "r1")
    del log.keyring["acme"]  # the shred's commit: the shared keyring forgets the keys
    log.append(a.seal_shred("acme"))
    log.catch_up(a), log.catch_up(b)
    for v in (a.vault, b.vault):
        assert v.tenants() == []
        with pytest.raises(TenantNotFoundError):
            v.get("acme", "r2")
    c = LogReplica(make_vault(tmp_path / "c"))  # a new replica replays the whole log
    assert log.catch_up(c) == 3 and c.vault.tenants() == [] and c.sequence == 3


def test_a_restarted_replica_resumes_after_its_last_applied_sequence(
    make_vault: VaultFactory, embedder: object, tmp_path: Path
) -> None:
    a = LogReplica(make_vault(tmp_path / "a"))
    log = SharedLog()
    log.ensure_key(a, "acme")
    for i in range(3):
        log.append(a.seal_put("acme", [NewRecord(f"note {i}", id=f"n{i}")]))
    b_dir = tmp_path / "b"
    b = Vault(b_dir, embedder=embedder)  # type: ignore[arg-type]
    log.catch_up(LogReplica(b))
    b.snapshot()  # the snapshot records the sequence (a WAL started empty would forget it)
    log.append(a.seal_put("acme", [NewRecord("note 3", id="n3")]))
    log.catch_up(LogReplica(b))
    b.close()
    reopened = LogReplica(make_vault(b_dir))
    assert reopened.sequence == 4 and reopened.vault.count("acme") == 4
    log.append(a.seal_put("acme", [NewRecord("note 4", id="n4")]))
    assert log.catch_up(reopened) == 1 and reopened.vault.get("acme", "n4").text == "note 4"


def test_a_replica_with_another_kek_is_refused(
    make_vault: VaultFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a = LogReplica(make_vault(tmp_path / "a"))
    log = SharedLog()
    log.ensure_key(a, "acme")
    monkeypatch.setenv("NEURECTOMY_VAULT_KEK", base64.b64encode(os.urandom(32)).decode())
    other = LogReplica(make_vault(tmp_path / "other"))
    with pytest.raises(KeyEncryptionKeyError, match="same KEK"):
        other.install_tenant_keys("acme", log.keyring["acme"])


def test_a_message_not_sealed_with_the_kek_is_refused(make_vault: VaultFactory, tmp_path: Path) -> None:
    a, b = LogReplica(make_vault(tmp_path / "a")), LogReplica(make_vault(tmp_path / "b"))
    log = SharedLog()
    log.ensure_key(a, "acme")
    log.append(a.seal_put("acme", [NewRecord("kept", id="r1")]))
    log.catch_up(b)
    forged = bytearray(a.seal_delete("acme", "r1").data if a.apply(log.messages[0], 1) else b"")
    forged[0] ^= 1  # anyone may publish to the log subject; only a KEK holder can make a valid MAC
    with pytest.raises(IntegrityError, match="MAC"):
        b.apply(bytes(forged), 2)
    assert b.vault.get("acme", "r1").text == "kept" and b.sequence == 1


def test_sealing_never_creates_a_data_key(make_vault: VaultFactory, tmp_path: Path) -> None:
    a = LogReplica(make_vault(tmp_path / "a"))
    with pytest.raises(TenantNotFoundError):
        a.seal_put("acme", [NewRecord("no key yet")])
    assert a.vault.tenants() == []


def test_keys_a_replica_makes_on_its_own_never_meet_shared_versions(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    a, b = LogReplica(make_vault(tmp_path / "a")), LogReplica(make_vault(tmp_path / "b"))
    a.vault.put("local", "sealed by this vault alone (e.g. a task record)", id="x")
    local = json.loads(a.tenant_keys("local") or b"{}")
    assert min(int(v) for v in local["keys"]) >= 2**31  # shared versions come from a counter below 2**31
    log = SharedLog()
    log.ensure_key(b, "acme")  # version 1, made on b
    log.ensure_key(a, "acme")
    assert json.loads(a.tenant_keys("acme") or b"{}")["active"] == 1
    assert a.vault.get("local", "x").text.startswith("sealed by this vault alone")


def test_apply_many_commits_a_backlog_at_once_and_skips_a_forged_message(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    a, b = LogReplica(make_vault(tmp_path / "a")), LogReplica(make_vault(tmp_path / "b"))
    log = SharedLog()
    log.ensure_key(a, "acme")
    log.ensure_key(b, "acme")
    for i in range(5):
        log.append(a.seal_put("acme", [NewRecord(f"note {i}", id=f"n{i}")]))
    forged = bytearray(log.messages[2])
    forged[5] ^= 1
    messages = [(m, i) for i, m in enumerate(log.messages, 1)]
    messages[2] = (bytes(forged), 3)
    skipped = b.apply_many(messages)
    assert [seq for seq, _ in skipped] == [3] and "MAC" in skipped[0][1]
    assert b.sequence == 5 and sorted(r.id for r in [b.vault.get("acme", f"n{i}") for i in (0, 1, 3, 4)]) == [
        "n0",
        "n1",
        "n3",
        "n4",
    ]
    with pytest.raises(RecordNotFoundError):
        b.vault.get("acme", "n2")
    assert b.apply_many(messages) == []  # all at or below the applied sequence: nothing happens

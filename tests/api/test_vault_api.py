"""ΣVAULT through the real service: SDK / raw HTTP / CLI → REST → orchestrator → NATS → Storage team → vault.

The ``service`` fixture is one ``neurectomy serve`` process for the session; each test uses its own
tenants so tests do not see each other's records.
"""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import httpx
import pytest

from neurectomy import AsyncClient, BadRequestError, Client, NotFoundError, TooLargeError

NOTES = [
    ("invoice", "The invoice must be paid by Friday or a late fee applies.", {"kind": "finance"}),
    ("cat", "Our cat sleeps on the warm windowsill every afternoon.", {"kind": "pets"}),
    ("migration", "The database migration failed because a column was missing.", {"kind": "ops"}),
    ("leak", "A memory leak in the server caused it to crash every night.", {"kind": "ops"}),
]
TENANT = "X-Neurectomy-Tenant"


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def load_notes(client: Client, tenant: str) -> list[str]:
    records = [{"id": i, "text": t, "metadata": m} for i, t, m in NOTES]
    return client.vault.upsert(records, tenant=tenant)


def test_sdk_upsert_search_get_delete(service: str) -> None:
    tenant = fresh("sdk")
    with Client(service) as client:
        vault = client.vault.with_tenant(tenant)
        assert load_notes(client, tenant) == [n[0] for n in NOTES]
        hits = vault.search("When is the bill due?", k=2)
        assert hits[0].id == "invoice" and hits[0].text == NOTES[0][1]
        assert hits[0].metadata == {"kind": "finance"} and hits[0].score > hits[1].score
        ops = vault.search("Why did the service crash?", filters={"kind": "ops"}, k=10)
        assert {h.id for h in ops} == {"leak", "migration"}
        record = vault.get("cat", with_vector=True)
        assert record.text == NOTES[1][1] and record.tenant == tenant and len(record.vector or []) == 384
        by_vector = vault.search(vector=record.vector, k=1)
        assert by_vector[0].id == "cat"
        new_id = vault.add("A note without an id.", metadata={"kind": "misc"})
        assert vault.get(new_id).metadata == {"kind": "misc"}
        assert vault.delete("cat").deleted == "record"
        with pytest.raises(NotFoundError):
            vault.get("cat")
        with pytest.raises(NotFoundError):
            vault.delete("cat")
        stats = vault.stats()
        assert stats.tenant == tenant and stats.tenant_records == len(NOTES)
        assert stats.records >= len(NOTES) and stats.l1_hits + stats.l1_misses > 0
        assert 0.0 <= stats.hit_ratio <= 1.0


@pytest.mark.anyio
async def test_async_sdk_round_trip(service: str) -> None:
    tenant = fresh("async")
    async with AsyncClient(service) as client:
        vault = client.vault.with_tenant(tenant)
        ids = await vault.upsert([{"id": "a", "text": "Heavy rain is expected tomorrow in the north."}])
        assert ids == ["a"]
        hits = await vault.search("What is the weather forecast?", k=1)
        assert hits[0].id == "a"
        assert (await vault.get("a")).text.startswith("Heavy rain")
        assert (await vault.rotate_keys("data_key")).key_version is not None
        assert (await vault.delete_tenant()).deleted == "tenant"
        assert await vault.search("weather") == []


def test_raw_http_round_trip_and_default_tenant(service: str) -> None:
    tenant = fresh("raw")
    with httpx.Client(base_url=service, timeout=60, headers={TENANT: tenant}) as http:
        body = {
            "records": [
                {"id": "n1", "text": "The orchestra played Beethoven on Sunday.", "metadata": {"a": 1}}
            ]
        }
        stored = http.post("/v1/vault/records", json=body)
        assert stored.status_code == 200 and stored.json() == {"ids": ["n1"], "count": 1, "sequence": None}
        found = http.post("/v1/vault/search", json={"query": "Which concert was played?", "k": 3})
        assert found.status_code == 200
        hit = found.json()["hits"][0]
        assert set(hit) == {"id", "score", "text", "metadata"} and hit["id"] == "n1"
        got = http.get("/v1/vault/records/n1")
        assert got.json()["metadata"] == {"a": 1} and got.headers["x-request-id"]
        assert http.delete("/v1/vault/records/n1").json() == {
            "deleted": "record",
            "id": "n1",
            "tenant": tenant,
            "sequence": None,
        }
        assert http.get("/v1/vault/records/n1").status_code == 404
    # No header: the "default" tenant, which never sees the record above.
    other = httpx.post(f"{service}/v1/vault/search", json={"query": "concert", "k": 50}, timeout=60)
    assert other.status_code == 200
    assert "n1" not in {h["id"] for h in other.json()["hits"]}


def test_tenants_are_isolated(service: str) -> None:
    a, b = fresh("iso-a"), fresh("iso-b")
    with Client(service) as client:
        load_notes(client, a)
        client.vault.add("Globex builds rockets.", id="rocket", tenant=b)
        hits = client.vault.search("When is the bill due?", k=10, tenant=b)
        assert [h.id for h in hits] == ["rocket"]
        with pytest.raises(NotFoundError):
            client.vault.get("invoice", tenant=b)
        with pytest.raises(NotFoundError):
            client.vault.get("rocket", tenant=a)
        assert client.vault.stats(tenant=b).tenant_records == 1


def test_delete_tenant_crypto_shreds(service: str) -> None:
    tenant = fresh("shred")
    with Client(service) as client:
        load_notes(client, tenant)
        assert client.vault.get("invoice", tenant=tenant).text == NOTES[0][1]
        shred = client.vault.delete_tenant(tenant)
        assert shred.deleted == "tenant" and shred.tenant == tenant
        with pytest.raises(NotFoundError):
            client.vault.get("invoice", tenant=tenant)
        assert client.vault.search("When is the bill due?", tenant=tenant) == []
        assert client.vault.stats(tenant=tenant).tenant_records == 0
        with pytest.raises(NotFoundError):
            client.vault.delete_tenant(tenant)
    # The path tenant must match the header when one is sent.
    mismatch = httpx.delete(
        f"{service}/v1/vault/tenants/{tenant}", headers={TENANT: "someone-else"}, timeout=30
    )
    assert mismatch.status_code == 400 and mismatch.json()["error"]["field"] == "tenant"


def test_key_rotation_keeps_records_readable(service: str) -> None:
    tenant = fresh("keys")
    with Client(service) as client:
        load_notes(client, tenant)
        first = client.vault.rotate_keys()
        second = client.vault.rotate_keys(tenant=tenant)
        assert first.scope == "kek" and first.kek_id and second.kek_id and first.kek_id != second.kek_id
        data_key = client.vault.rotate_keys("data_key", tenant=tenant)
        assert data_key.tenant == tenant and data_key.key_version
        client.vault.add("Written after the rotations.", id="after", tenant=tenant)
        assert client.vault.get("invoice", tenant=tenant).text == NOTES[0][1]
        assert client.vault.get("after", tenant=tenant).text == "Written after the rotations."
        with pytest.raises(BadRequestError) as bad:
            client.vault.rotate_keys("everything")
        assert bad.value.field == "scope"
    no_body = httpx.post(f"{service}/v1/vault/keys/rotate", timeout=30)
    assert no_body.status_code == 200 and no_body.json()["scope"] == "kek"


def test_snapshot_and_restore(service: str) -> None:
    tenant = fresh("snap")
    name = fresh("copy")
    with Client(service) as client:
        load_notes(client, tenant)
        taken = client.vault.snapshot(name)
        assert taken.name == name and taken.generation
        client.vault.add("After the snapshot.", id="later", tenant=tenant)
        assert name in {s.name for s in client.vault.snapshots().snapshots}
        client.vault.restore(name)
        with pytest.raises(NotFoundError):
            client.vault.get("later", tenant=tenant)
        assert client.vault.get("cat", tenant=tenant).text == NOTES[1][1]
        with pytest.raises(NotFoundError):
            client.vault.restore("no-such-copy")
        assert client.vault.compact().tombstones == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/vault/records", {"records": []}, "records"),
        ("POST", "/v1/vault/records", {"records": [{"text": ""}]}, "records.0.text"),
        ("POST", "/v1/vault/records", {"records": [{"text": "ok"}, {"text": "  "}]}, "records.1.text"),
        ("POST", "/v1/vault/records", {"records": [{"text": "ok", "vector": [0.5] * 3}]}, "records.0.vector"),
        ("POST", "/v1/vault/records", {"records": [{"text": "ok", "metadata": "x"}]}, "records.0.metadata"),
        ("POST", "/v1/vault/records", {"records": [{"text": "ok", "id": "a/b"}]}, "records.0.id"),
        ("POST", "/v1/vault/records", {"rows": []}, "records"),
        ("POST", "/v1/vault/search", {"query": "x", "k": 0}, "k"),
        ("POST", "/v1/vault/search", {"query": "x", "k": 5000}, "k"),
        ("POST", "/v1/vault/search", {"k": 3}, "query"),
        ("POST", "/v1/vault/search", {"query": "x", "vector": [1.0] * 384}, "query"),
        ("POST", "/v1/vault/search", {"vector": [1.0] * 7}, "vector"),
        ("POST", "/v1/vault/search", {"vector": [0.0] * 384}, "vector"),
        ("POST", "/v1/vault/search", {"query": "x", "min_score": 3}, "min_score"),
        ("POST", "/v1/vault/keys/rotate", {"scope": "all"}, "scope"),
        ("POST", "/v1/vault/snapshots", {"name": "../up"}, "name"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    service: str, method: str, path: str, body: object, field: str
) -> None:
    response = httpx.request(method, f"{service}{path}", json=body, headers={TENANT: "bad-input"}, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"
    assert response.json()["error"]["field"] == field, response.json()


def test_bad_tenant_header_and_malformed_json_are_400(service: str) -> None:
    bad = httpx.get(f"{service}/v1/vault/stats", headers={TENANT: "no spaces!"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "X-Neurectomy-Tenant"
    broken = httpx.post(
        f"{service}/v1/vault/search",
        content=b"{nope",
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert broken.status_code == 400


def test_unknown_ids_are_404(service: str) -> None:
    with Client(service) as client:
        client.vault.add("exists", id="present", tenant="known-404")
        with pytest.raises(NotFoundError):
            client.vault.get("absent", tenant="known-404")
        with pytest.raises(NotFoundError):
            client.vault.get("absent", tenant=fresh("never-written"))
        with pytest.raises(NotFoundError):
            client.vault.delete("absent", tenant="known-404")


def test_oversized_record_is_413_with_its_limit(service: str) -> None:
    big = "x" * (1024 * 1024 + 10)  # over the default max_record_bytes of 1 MiB, under the 4 MiB body limit
    with Client(service) as client:
        with pytest.raises(TooLargeError) as info:
            client.vault.add(big, tenant="too-large")
    assert info.value.status_code == 413 and "1048576" in info.value.message
    raw = httpx.post(f"{service}/v1/vault/records", json={"records": [{"text": big}]}, timeout=60)
    assert raw.status_code == 413 and "1048576" in raw.json()["error"]["message"]


def test_batch_over_the_nats_payload_is_413(service: str) -> None:
    # 3.6 MB of UTF-8 body (under the 4 MiB HTTP limit) but 10.8 MB as ASCII JSON on the bus (an emoji is
    # 4 bytes of UTF-8 and 12 as the escaped surrogate pair "\ud83d\ude00").
    text = "\U0001f600" * 90_000
    records = [{"text": text} for _ in range(10)]
    response = httpx.post(f"{service}/v1/vault/records", json={"records": records}, timeout=60)
    assert response.status_code == 413, response.text
    assert "NATS max payload" in response.json()["error"]["message"]


def _stdlib_docstrings(limit: int) -> list[dict[str, object]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[dict[str, object]] = []
    for path in sorted(root.glob("*.py")):
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        except (SyntaxError, UnicodeDecodeError):
            continue
        if doc and len(doc) > 40:
            out.append({"id": path.stem, "text": doc[:2000], "metadata": {"module": path.stem}})
        if len(out) == limit:
            break
    return out


def test_cli_vault_add_jsonl_then_search_and_rm(service: str, tmp_path: Path) -> None:
    tenant = fresh("cli")
    records = _stdlib_docstrings(150)
    assert len(records) >= 100
    assert {"argparse", "getopt"} & {r["id"] for r in records}
    jsonl = tmp_path / "stdlib.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    cli = [sys.executable, "-m", "neurectomy", "vault"]
    common = ["--url", service, "--tenant", tenant]
    added = subprocess.run(
        [*cli, "add", str(jsonl), "--batch-size", "40", *common], capture_output=True, text=True, timeout=120
    )
    assert added.returncode == 0, added.stderr
    assert f"stored {len(records)} records" in added.stderr
    with Client(service) as client:
        assert client.vault.stats(tenant=tenant).tenant_records == len(records)
    found = subprocess.run(
        [*cli, "search", "parse command-line options and arguments", "-k", "3", "--json", *common],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert {"argparse", "getopt", "optparse"} & {h["id"] for h in hits}, [h["id"] for h in hits]
    removed = subprocess.run([*cli, "rm", hits[0]["id"], *common], capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0, removed.stderr
    missing = subprocess.run([*cli, "rm", hits[0]["id"], *common], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "404" in missing.stderr
    single = subprocess.run(
        [*cli, "add", "A single note.", "--id", "one", *common], capture_output=True, text=True, timeout=60
    )
    assert single.returncode == 0 and single.stdout.strip() == "one"


def test_idempotency_key_header_writes_a_retried_call_once(service: str) -> None:
    tenant = fresh("idem")
    key = {"Idempotency-Key": fresh("upsert")}
    body = {"records": [{"text": "Stored once however often it is sent."}, {"text": "Its sibling."}]}
    with httpx.Client(base_url=service, timeout=60, headers={TENANT: tenant}) as http:
        first = http.post("/v1/vault/records", json=body, headers=key)
        again = http.post("/v1/vault/records", json=body, headers=key)  # a client retrying after a 504
        assert first.status_code == again.status_code == 200 and first.json() == again.json()
        assert http.get("/v1/vault/stats").json()["tenant_records"] == 2
        other = http.post("/v1/vault/records", json=body, headers={"Idempotency-Key": fresh("new")})
        assert set(other.json()["ids"]).isdisjoint(first.json()["ids"])
        gone = {"Idempotency-Key": fresh("delete")}
        rid = first.json()["ids"][0]
        assert http.delete(f"/v1/vault/records/{rid}", headers=gone).status_code == 200
        assert http.delete(f"/v1/vault/records/{rid}", headers=gone).status_code == 200  # the retry
        assert http.delete(f"/v1/vault/records/{rid}").status_code == 404  # a new call
        long = http.post("/v1/vault/records", json=body, headers={"Idempotency-Key": "k" * 257})
        assert long.status_code == 400 and long.json()["error"]["field"] == "Idempotency-Key"


@pytest.mark.slow
def test_full_vault_disk_is_507_and_reads_keep_working(tmp_path: Path) -> None:
    """The service's vault directory on a 2 MiB tmpfs, filled through ``POST /v1/vault/records``."""
    from neurectomy.testing import start_serve, stop_serve

    state = tmp_path / "state"
    vault_dir = state / "vault"
    vault_dir.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(vault_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        (vault_dir / "ballast").write_bytes(b"\x01" * 256 * 1024)
        proc, url = start_serve(state, env={"NEURECTOMY_TEAMS": json.dumps(["inference", "storage"])})
        try:
            with httpx.Client(base_url=url, timeout=60, headers={TENANT: "full"}) as http:
                stored: dict[str, str] = {}
                vectors: dict[str, list[float]] = {}
                refused = None
                for i in range(1000):  # precomputed vectors: the disk fills, not the embedder's time
                    rid, text = f"r{i}", f"record {i} " + os.urandom(1500).hex()
                    vectors[rid] = [math.sin(i * 7.0 + j) for j in range(384)]
                    record = {"id": rid, "text": text, "vector": vectors[rid]}
                    answer = http.post("/v1/vault/records", json={"records": [record]})
                    if answer.status_code != 200:
                        refused = answer
                        break
                    stored[rid] = text
                assert refused is not None and refused.status_code == 507, refused and refused.text
                error = refused.json()["error"]
                assert error["code"] == "insufficient_storage" and str(vault_dir) in error["message"]
                assert len(stored) > 20
                for rid in list(stored)[:: max(1, len(stored) // 10)]:
                    got = http.get(f"/v1/vault/records/{rid}")
                    assert got.status_code == 200 and got.json()["text"] == stored[rid]
                hits = http.post("/v1/vault/search", json={"vector": vectors["r1"], "k": 1})
                assert hits.status_code == 200 and hits.json()["hits"][0]["id"] == "r1"
                (vault_dir / "ballast").unlink()  # space returns
                room = {"records": [{"id": "z", "text": "room again", "vector": vectors["r1"]}]}
                after = http.post("/v1/vault/records", json=room)
                assert after.status_code == 200 and after.json()["ids"] == ["z"]
                assert http.get("/v1/vault/stats").json()["tenant_records"] == len(stored) + 1
        finally:
            stop_serve(proc)
    finally:
        subprocess.run(["umount", "-l", str(vault_dir)], check=False)

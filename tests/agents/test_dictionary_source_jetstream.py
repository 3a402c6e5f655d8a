"""Trained ΣLANG dictionaries shared through JetStream KV (`JetStreamDictionarySource`), real nats-server.

Two replicas (each its own event loop and NATS connection, as two Compression processes) share the RSU
bucket, the frame secret and the dictionary bucket; each keeps its own registry directory (its cache).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.compression.dictionary_source import JetStreamDictionarySource
from agents.compression.rsu_store import shared_frame_secret
from agents.jetstream import kv_put
from bridges.tenant_seal import VaultChunkSealer
from neurectomy.server.natsserver import EmbeddedNats
from sigmalang import Dictionary, DictionaryRegistry, MissingDictionaryError, SigmaCodec, train_dictionary
from tests.agents.test_rsu_store_jetstream import Replica, replicas  # noqa: F401 - the fixture
from vault import Vault

SAMPLES = [
    json.dumps(
        {"event": "order", "id": i, "customer": f"c{i % 7}", "items": [{"sku": f"s{i % 5}", "n": i % 3}]}
    ).encode()
    for i in range(200)
]
MESSAGE = json.dumps(
    {"event": "order", "id": 9999, "customer": "c3", "items": [{"sku": "s2", "n": 1}]}
).encode()


class Node:
    """One replica's codec: the shared RSU bucket and secret, its own registry on the shared source."""

    def __init__(self, replica: Replica, rsus: str, dicts: str, directory: Path) -> None:
        self.replica = replica
        secret = replica.portal.call(lambda: shared_frame_secret(replica.js, bucket=rsus))
        self.source = replica.portal.call(
            lambda: JetStreamDictionarySource.open(replica.js, replica.portal, bucket=dicts)
        )
        self.directory = directory
        self.codec = SigmaCodec(
            store=replica.store(rsus),
            dictionaries=DictionaryRegistry(directory, source=self.source),
            secret=secret,
        )


@pytest.fixture
def nodes(replicas: list[Replica], tmp_path: Path) -> Iterator[list[Node]]:  # noqa: F811 - the fixture
    stamp = time.monotonic_ns()
    rsus, dicts = f"dict_rsus_{stamp}", f"dict_source_{stamp}"
    made = [Node(r, rsus, dicts, tmp_path / f"replica{i}") for i, r in enumerate(replicas)]
    yield made
    for node in made:
        node.codec.store.close()
    for bucket in (rsus, dicts):
        replicas[0].portal.call(replicas[0].js.delete_stream, f"KV_{bucket}")


def test_a_dictionary_trained_on_replica_a_decodes_frames_on_replica_b(nodes: list[Node]) -> None:
    a, b = nodes
    dictionary = a.codec.train_dictionary(SAMPLES, tenant="acme")
    assert dictionary is not None
    alone = a.codec.compress(MESSAGE, tenant="acme", dedup=False)  # self-contained: the dictionary only
    assert alone.report.dict_id == dictionary.dict_id and alone.report.dictionary_saved > 0
    stored = a.codec.compress(MESSAGE, tenant="acme")  # store-backed
    assert stored.report.dict_id == dictionary.dict_id
    assert not b.codec.dictionaries.has(dictionary.dict_id, tenant="acme")  # B never saw it
    assert b.codec.decompress(alone.frame, tenant="acme") == MESSAGE  # fetched from KV
    assert b.codec.decompress(stored.frame, tenant="acme") == MESSAGE
    cached = b.directory / "t" / b"acme".hex() / f"{dictionary.dict_id:08x}.fetched.zdict"
    assert cached.read_bytes() == dictionary.data  # kept locally: a restart needs no fetch
    assert b.codec.dictionaries.active_for("acme") is None  # fetched to decode, not activated
    # A dictionary a replica held before it had the source (its directory) is published when it opens.
    legacy = train_dictionary([s.replace(b"order", b"invoice") for s in SAMPLES])
    assert legacy is not None
    DictionaryRegistry(a.directory / "old").add(legacy)
    DictionaryRegistry(a.directory / "old", source=a.source)
    assert b.codec.dictionaries.get(legacy.dict_id, tenant="acme") == legacy  # shared: any tenant
    # Without the shared source, replica B's registry cannot decode the frame (what this issue fixed).
    isolated = SigmaCodec(dictionaries=DictionaryRegistry())
    with pytest.raises(MissingDictionaryError, match=f"{dictionary.dict_id:#010x}"):
        isolated.decompress(alone.frame, tenant="acme")


def test_a_tenant_cannot_fetch_another_tenants_dictionary(nodes: list[Node]) -> None:
    a, b = nodes
    dictionary = a.codec.train_dictionary(SAMPLES, tenant="acme")
    assert dictionary is not None
    alone = a.codec.compress(MESSAGE, tenant="acme", dedup=False)
    assert alone.report.dict_id == dictionary.dict_id
    with pytest.raises(MissingDictionaryError, match=f"{dictionary.dict_id:#010x}"):
        b.codec.decompress(alone.frame, tenant="globex")  # the same frame, asked for as globex
    with pytest.raises(MissingDictionaryError):
        a.codec.dictionaries.get(dictionary.dict_id, tenant="globex")  # not even where it was trained
    assert b.source.fetch("globex", dictionary.dict_id) is None
    assert b.source.fetch(None, dictionary.dict_id) is None  # nor is it shared
    assert a.codec.compress(MESSAGE, tenant="globex", dedup=False).report.dict_id != dictionary.dict_id
    assert b.codec.decompress(alone.frame, tenant="acme") == MESSAGE  # its own tenant still can


def test_a_damaged_or_substituted_copy_is_never_used(nodes: list[Node]) -> None:
    a, b = nodes
    dictionary = a.codec.train_dictionary(SAMPLES, tenant="acme")
    other = train_dictionary([s.replace(b"order", b"refund") for s in SAMPLES])
    assert dictionary is not None and other is not None and other.dict_id != dictionary.dict_id
    alone = a.codec.compress(MESSAGE, tenant="acme", dedup=False)
    key = f"t.{b'acme'.hex()}.{dictionary.dict_id:08x}"
    bucket = b.source._bucket
    damaged = b"P" + b"\0" * 32 + dictionary.data  # its digest does not match
    b.replica.portal.call(kv_put, bucket, key, damaged)
    with pytest.raises(MissingDictionaryError, match="damaged"):
        b.codec.decompress(alone.frame, tenant="acme")
    forged = (
        b"P" + hashlib.blake2b(other.data, digest_size=32).digest() + other.data
    )  # valid digest, wrong id
    b.replica.portal.call(kv_put, bucket, key, forged)
    with pytest.raises(MissingDictionaryError, match="does not match"):
        b.codec.decompress(alone.frame, tenant="acme")
    assert not b.codec.dictionaries.has(dictionary.dict_id, tenant="acme")  # nothing wrong was kept
    assert isinstance(a.codec.dictionaries.get(dictionary.dict_id, tenant="acme"), Dictionary)


class CountingSource:
    """The real KV source, counting by id the fetches that found a dictionary."""

    def __init__(self, inner: JetStreamDictionarySource) -> None:
        self.inner = inner
        self.fetched: Counter[int] = Counter()

    def publish(self, tenant: str | None, dictionary: Dictionary) -> None:
        self.inner.publish(tenant, dictionary)

    def fetch(self, tenant: str | None, dict_id: int) -> bytes | None:
        data = self.inner.fetch(tenant, dict_id)
        if data is not None:
            self.fetched[dict_id] += 1
        return data


def test_fetched_dictionaries_are_bounded_and_fetched_again_from_kv(
    nodes: list[Node], tmp_path: Path
) -> None:
    a, b = nodes
    made = []
    for word in (b"order", b"refund", b"invoice"):
        dictionary = a.codec.train_dictionary([s.replace(b"order", word) for s in SAMPLES], tenant="acme")
        assert dictionary is not None
        message = MESSAGE.replace(b"order", word)
        alone = a.codec.compress(message, tenant="acme", dedup=False)
        assert alone.report.dict_id == dictionary.dict_id
        made.append((dictionary, alone.frame, message))
    assert len({d.dict_id for d, _, _ in made}) == 3
    spy = CountingSource(b.source)
    bounded = DictionaryRegistry(
        tmp_path / "bounded", source=spy, fetched_max_bytes=max(len(d) for d, _, _ in made)
    )
    reader = SigmaCodec(
        store=b.codec.store, dictionaries=bounded, secret=b.codec._secret
    )  # B's shared secret
    folder = tmp_path / "bounded" / "t" / b"acme".hex()
    for dictionary, frame, message in made * 2:  # room for one: each decode evicts the one before
        assert reader.decompress(frame, tenant="acme") == message
        assert sorted(p.name for p in folder.glob("*.zdict")) == [f"{dictionary.dict_id:08x}.fetched.zdict"]
    assert reader.decompress(made[-1][1], tenant="acme") == made[-1][2]  # still held: no fetch
    assert spy.fetched == Counter({d.dict_id: 2 for d, _, _ in made})  # fetched again from KV once evicted


def test_sealed_dictionaries_hide_their_samples_and_are_shredded_with_the_tenant(
    replicas: list[Replica],  # noqa: F811 - the fixture
    nats_server: EmbeddedNats,
    tmp_path: Path,
) -> None:
    bucket = f"dict_sealed_{time.monotonic_ns()}"
    canary = b"dict-canary-7f3a91-sealed-"
    samples = [canary + s for s in SAMPLES]
    with Vault(tmp_path / "vault") as vault:
        sealer = VaultChunkSealer(vault)
        one, two = (
            r.portal.call(
                lambda r=r: JetStreamDictionarySource.open(r.js, r.portal, bucket=bucket, sealer=sealer)
            )
            for r in replicas
        )
        trained = DictionaryRegistry(source=one)
        dictionary = train_dictionary(samples)
        assert dictionary is not None and canary in dictionary.data
        trained.add(dictionary, tenant="acme")
        assert DictionaryRegistry(source=two).get(dictionary.dict_id, tenant="acme") == dictionary
        stored = [p for p in nats_server.store_dir.rglob("*") if p.is_file() and canary in p.read_bytes()]
        assert stored == []  # the training content never reaches JetStream's files in clear
        plain = replicas[1].portal.call(
            lambda: JetStreamDictionarySource.open(replicas[1].js, replicas[1].portal, bucket=bucket)
        )
        with pytest.raises(MissingDictionaryError, match="no vault"):
            DictionaryRegistry(source=plain).get(dictionary.dict_id, tenant="acme")
        vault.delete_tenant("acme")  # crypto-shred: the dictionary can never be fetched again
        with pytest.raises(MissingDictionaryError, match=f"{dictionary.dict_id:#010x}"):
            DictionaryRegistry(source=two).get(dictionary.dict_id, tenant="acme")
    replicas[0].portal.call(replicas[0].js.delete_stream, f"KV_{bucket}")

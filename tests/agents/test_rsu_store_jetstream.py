"""The ΣLANG RSU store on JetStream KV: the one RSUStore contract, then frames across replicas.

The contract tests are ``tests/sigmalang/test_store_contract.py``'s own functions, collected again here
with ``make_store`` building :class:`JetStreamRSUStore` on the session's real nats-server (a fresh bucket
per test). The store is driven from this synchronous test thread through a blocking portal into the event
loop that owns the NATS connection, as the codec drives it from its worker threads.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from agents import Bus
from agents.compression import _rsu_records
from agents.compression.rsu_store import JetStreamRSUStore, shared_frame_secret
from agents.jetstream import JetStream
from bridges.tenant_seal import VaultChunkSealer
from neurectomy.server.natsserver import EmbeddedNats
from sigmalang import (
    FrameAuthenticationError,
    MissingRSUError,
    Retention,
    RSUStore,
    RSUStoreError,
    SigmaCodec,
)
from sigmalang.chunking import rsu_id
from tests.sigmalang.test_read_cache import BOUND, check_read_cache
from tests.sigmalang.test_store_contract import (  # noqa: F401 - collected here against this store
    test_acquire_counts_present_seqs_once_per_call,
    test_closed_store_refuses_work,
    test_codec_frames_hold_references_until_released,
    test_gc_removes_only_unreferenced_unpinned,
    test_missing_rsu_is_named,
    test_pinned_content_is_used_and_survives_gc,
    test_put_keeps_sequence_numbers_and_get_returns_the_bytes,
    test_release_below_zero_fails_and_changes_nothing,
    test_retention_by_age_spares_pinned,
    test_retention_by_bytes_evicts_least_recently_used_unreferenced_first,
    test_tenants_are_isolated,
)
from vault import Vault

_buckets = itertools.count()


class Replica:
    """One Compression process: an event loop with its own NATS connection."""

    def __init__(self, url: str, portal: BlockingPortal) -> None:
        self.portal = portal
        self.bus: Bus = portal.call(lambda: Bus.connect(url, name="rsu-replica"))
        self.js = JetStream(self.bus)

    def store(self, bucket: str, **kwargs: object) -> JetStreamRSUStore:
        return self.portal.call(lambda: JetStreamRSUStore.open(self.js, self.portal, bucket=bucket, **kwargs))  # type: ignore[arg-type]

    def close(self) -> None:
        self.portal.call(self.bus.aclose)


@pytest.fixture
def replicas(nats_server: EmbeddedNats) -> Iterator[list[Replica]]:
    with start_blocking_portal() as p1, start_blocking_portal() as p2:
        made = [Replica(nats_server.url, p1), Replica(nats_server.url, p2)]
        try:
            yield made
        finally:
            for r in made:
                r.close()


@pytest.fixture
def make_store(replicas: list[Replica]) -> Iterator[Callable[..., RSUStore]]:
    """JetStream stores on a fresh bucket (unsealed: the contract's byte counts are of plain content;
    sealing is checked below, as ``DiskRSUStore``'s is in ``test_compression_sealed``)."""
    bucket = f"rsu_contract_{next(_buckets)}_{time.monotonic_ns()}"
    made: list[JetStreamRSUStore] = []

    def make(retention: Retention | None = None, clock: Callable[[], float] = time.time) -> RSUStore:
        store = replicas[0].store(bucket, retention=retention, clock=clock)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
    replicas[0].portal.call(replicas[0].js.delete_stream, f"KV_{bucket}")


@pytest.fixture
def store(make_store: Callable[..., RSUStore]) -> RSUStore:
    return make_store()


def test_a_frame_compressed_on_one_replica_decodes_on_another(replicas: list[Replica]) -> None:
    bucket = f"rsu_replicas_{time.monotonic_ns()}"
    secrets = [r.portal.call(lambda r=r: shared_frame_secret(r.js, bucket=bucket)) for r in replicas]
    assert secrets[0] == secrets[1] and len(secrets[0]) == 32  # the first replica's, read by the other
    one = SigmaCodec(store=replicas[0].store(bucket), secret=secrets[0])
    two = SigmaCodec(store=replicas[1].store(bucket), secret=secrets[1])
    doc = b"".join(b"row %d: the value of sensor %d is %d\n" % (i, i % 17, i * i) for i in range(800))
    one.compress(doc, tenant="acme")
    second = one.compress(doc + b"one more line\n", tenant="acme")  # references the first's RSUs
    assert one.inspect(second.frame, tenant="acme").context  # the frame needs the shared store
    assert second.report.ratio > 20
    assert two.decompress(second.frame, tenant="acme") == doc + b"one more line\n"
    third = two.compress(doc + b"from two\n", tenant="acme")  # replica 2 reuses replica 1's RSUs
    assert third.report.ratio > 20
    assert one.decompress(third.frame, tenant="acme") == doc + b"from two\n"
    with pytest.raises(FrameAuthenticationError):
        two.decompress(second.frame, tenant="globex")  # bound to its tenant
    with pytest.raises(MissingRSUError):  # and another tenant's store holds none of its RSUs
        two.store.get_many("globex", list(one.inspect(second.frame, tenant="acme").context))
    replicas[0].portal.call(replicas[0].js.delete_stream, f"KV_{bucket}")


def test_sealed_rsus_hide_content_and_are_shredded_with_the_tenant(
    replicas: list[Replica], nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    bucket = f"rsu_sealed_{time.monotonic_ns()}"
    canary = b"kv-canary-41c7e2-sealed-at-rest-" * 60
    with Vault(tmp_path / "vault") as vault:
        sealer = VaultChunkSealer(vault)
        store = replicas[0].store(bucket, sealer=sealer)
        put = store.put_many("acme", [(rsu_id(canary), canary)])
        store.put_many("globex", [(rsu_id(canary), canary)])
        assert store.get_many("acme", [put[0][0]]) == [canary]
        other = replicas[1].store(bucket, sealer=sealer)  # another replica opens it with the same keys
        assert other.seqs("acme", [rsu_id(canary)]) == {rsu_id(canary): put[0][0]}
        assert other.get_many("acme", [put[0][0]]) == [canary]
        stored = [
            p for p in nats_server.store_dir.rglob("*") if p.is_file() and canary[:64] in p.read_bytes()
        ]
        assert stored == []  # neither content nor, keyed per tenant, a shared id reaches JetStream's files
        with pytest.raises(RSUStoreError, match="sealed"):
            replicas[1].store(bucket)  # a plain store refuses a sealed bucket
        vault.delete_tenant("acme")  # crypto-shred: the RSUs can never be opened again
        with pytest.raises(MissingRSUError):
            other.get_many("acme", [put[0][0]])
        assert store.seqs("acme", [rsu_id(canary)]) == {}
        assert store.get_many("globex", [1]) == [canary]  # another tenant is untouched
    replicas[0].portal.call(replicas[0].js.delete_stream, f"KV_{bucket}")


def test_read_cache_is_least_recently_used_within_its_byte_bound(
    replicas: list[Replica], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_rsu_records, "CACHE_BYTES", BOUND)
    bucket = f"rsu_cache_{time.monotonic_ns()}"
    store = replicas[0].store(bucket)
    try:
        cache = store._records._cache
        check_read_cache(store, cache)
        assert cache.currsize <= BOUND
        store.close()
        assert len(cache) == 0  # closing drops the cached content
    finally:
        replicas[0].portal.call(replicas[0].js.delete_stream, f"KV_{bucket}")

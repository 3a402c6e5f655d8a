"""Dictionaries trained from a tenant's own traffic (`sigmalang.autotrain`), on coding-agent sessions.

Real zstd, real codec; each test waits for the background training to be idle, never for a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sigmalang
from benchmarks.sigma_corpus import Session
from benchmarks.sigma_corpus_coding import build_coding_sessions
from sigmalang import (
    Dictionary,
    DictionaryRegistry,
    FrameAuthenticationError,
    MemoryRSUStore,
    MissingDictionaryError,
    SigmaCodec,
    SigmaConfig,
)

AUTO = SigmaConfig(
    auto_dictionary_min_new_bytes=32 * 1024,
    auto_dictionary_retrain_max_new_bytes=64 * 1024,
    auto_dictionary_sample_max_bytes=128 * 1024,
    auto_dictionary_drift_period_bytes=0,
)
"""Trained at 32 KiB of new bytes and again at 64 KiB, then no more (drift retraining:
test_auto_dictionary_drift.py): the draws below pass both."""

Item = tuple[str, str, bytes]


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    return build_coding_sessions(7, tenants=2, sessions_per_tenant=4, turns=(4, 10))


def items_of(sessions: list[Session], tenant: str | None = None) -> list[Item]:
    return [(s.tenant, s.session_id, m) for s in sessions if tenant in (None, s.tenant) for m in s.turns]


def compress_all(codec: SigmaCodec, items: list[Item]) -> list[bytes]:
    frames = []
    for tenant, stream, message in items:
        frames.append(codec.compress(message, tenant=tenant, stream=stream).frame)
        assert codec.wait_auto_dictionaries(timeout_s=60)
    return frames


class MemorySource:
    """A `DictionarySource` in memory (what the service's JetStream KV bucket is between processes)."""

    def __init__(self) -> None:
        self.held: dict[tuple[str | None, int], Dictionary] = {}

    def publish(self, tenant: str | None, dictionary: Dictionary) -> None:
        self.held.setdefault((tenant, dictionary.dict_id), dictionary)

    def fetch(self, tenant: str | None, dict_id: int) -> bytes | None:
        found = self.held.get((tenant, dict_id))
        return None if found is None else found.data


def test_traffic_past_the_threshold_gets_the_tenants_dictionary_and_smaller_frames(
    sessions: list[Session],
) -> None:
    tenant = sessions[0].tenant
    items = items_of(sessions, tenant)
    auto = SigmaCodec(config=AUTO)
    plain = SigmaCodec(config=AUTO.model_copy(update={"auto_dictionary_min_new_bytes": 0}))
    frames = compress_all(auto, items)
    baseline = [plain.compress(m, tenant=t, stream=s).frame for t, s, m in items]

    status = auto.auto_dictionary_status(tenant)
    assert status is not None and status.state == "trained" and status.trainings == 2
    assert status.kept >= 1 and status.dict_id is not None
    own = auto.dictionaries.own_active(tenant)
    assert own is not None and own.dict_id == status.dict_id
    named = [auto.inspect(f, tenant=tenant).dict_id for f in frames]
    generic = sigmalang.generic_dictionary().dict_id
    first = next(i for i, d in enumerate(named) if d != generic)
    assert first > 0 and all(d == generic for d in named[:first])  # before: the generic dictionary
    assert all(auto.dictionaries.has(d, tenant=tenant) for d in named[first:])  # after: the tenant's
    assert named[-1] == status.dict_id
    later = sum(map(len, frames[first:]))
    assert later < sum(map(len, baseline[first:])), "later frames are smaller than with the generic one"
    for frame, (t, _, message) in zip(frames, items, strict=True):  # before and after, byte for byte
        assert auto.decompress(frame, tenant=t) == message
    auto.close()


def test_a_tenants_auto_dictionary_is_never_used_for_or_found_by_another_tenant(
    sessions: list[Session],
) -> None:
    acme = sessions[0].tenant
    codec = SigmaCodec(config=AUTO)
    frames = compress_all(codec, items_of(sessions, acme))
    status = codec.auto_dictionary_status(acme)
    assert status is not None and status.dict_id is not None
    other = b'{"model": "x", "messages": [{"role": "user", "content": "hello"}]}' * 30
    result = codec.compress(other, tenant="globex", stream="g")
    assert codec.inspect(result.frame, tenant="globex").dict_id == sigmalang.generic_dictionary().dict_id
    assert codec.dictionaries.active_for("globex") is None
    assert not codec.dictionaries.has(status.dict_id, tenant="globex")
    with pytest.raises(MissingDictionaryError):
        codec.dictionaries.get(status.dict_id, tenant="globex")
    with pytest.raises(FrameAuthenticationError):
        codec.decompress(frames[-1], tenant="globex")
    codec.close()


def test_another_codec_on_the_same_source_decodes_frames_made_with_the_auto_dictionary(
    sessions: list[Session], tmp_path: Path
) -> None:
    source, store, secret = MemorySource(), MemoryRSUStore(), b"s" * 32
    maker = SigmaCodec(
        store=store,
        secret=secret,
        config=AUTO,
        dictionaries=DictionaryRegistry(tmp_path / "a", source=source),
    )
    items = items_of(sessions)
    frames = compress_all(maker, items)
    trained = {maker.auto_dictionary_status(t).dict_id for t, _, _ in items}  # type: ignore[union-attr]
    assert None not in trained and len(trained) == 2
    assert {dict_id for _, dict_id in source.held} >= trained  # published, each under its tenant
    registry = DictionaryRegistry(tmp_path / "b", source=source)  # another process's: empty
    reader = SigmaCodec(store=store, secret=secret, dictionaries=registry)
    for frame, (tenant, _, message) in zip(frames, items, strict=True):
        assert reader.decompress(frame, tenant=tenant) == message
    maker.close()


def test_forget_tenant_drops_the_samples_and_the_auto_dictionary(
    sessions: list[Session], tmp_path: Path
) -> None:
    acme = sessions[0].tenant
    codec = SigmaCodec(config=AUTO, dictionaries=DictionaryRegistry(tmp_path))
    items = items_of(sessions, acme)
    frames = compress_all(codec, items)
    status = codec.auto_dictionary_status(acme)
    assert status is not None and status.dict_id is not None
    assert (tmp_path / "t" / acme.encode().hex() / f"{status.dict_id:08x}.auto.zdict").exists()
    named = next(f for f in reversed(frames) if codec.inspect(f, tenant=acme).dict_id == status.dict_id)

    codec.forget_tenant(acme)

    assert codec.auto_dictionary_status(acme) is None
    assert codec.dictionaries.own_active(acme) is None
    assert not (tmp_path / "t" / acme.encode().hex()).exists()
    with pytest.raises(MissingDictionaryError, match=f"{status.dict_id:#010x}"):
        codec.decompress(named, tenant=acme)
    codec.close()


def test_forgetting_a_tenant_while_its_training_is_queued_leaves_no_dictionary(
    sessions: list[Session],
) -> None:
    acme = sessions[0].tenant
    codec = SigmaCodec(config=AUTO)
    for tenant, stream, message in items_of(sessions, acme):
        codec.compress(message, tenant=tenant, stream=stream)
        status = codec.auto_dictionary_status(acme)
        if status is not None and status.state == "training":
            break
    else:
        pytest.fail("no training was queued")
    codec.forget_tenant(acme)
    assert codec.wait_auto_dictionaries(timeout_s=60)
    assert codec.dictionaries.own_active(acme) is None and codec.auto_dictionary_status(acme) is None
    codec.close()


def test_the_sample_buffer_stays_within_its_byte_bound_under_a_long_stream(sessions: list[Session]) -> None:
    bound = 16 * 1024
    config = SigmaConfig(auto_dictionary_min_new_bytes=1 << 40, auto_dictionary_sample_max_bytes=bound)
    codec = SigmaCodec(config=config)
    seen = 0
    for tenant, stream, message in items_of(sessions):
        codec.compress(message, tenant="one", stream=f"{tenant}/{stream}")
        status = codec.auto_dictionary_status("one")
        assert status is not None and status.sample_bytes <= bound
        seen = status.new_bytes
    assert seen > 8 * bound  # long enough for the bound to matter
    assert status.sample_bytes > bound // 2  # the buffer keeps recent samples, not nothing
    codec.close()


def test_an_explicitly_trained_dictionary_is_not_replaced(sessions: list[Session]) -> None:
    acme, globex = sessions[0].tenant, sessions[-1].tenant
    codec = SigmaCodec(config=AUTO)
    samples = [m for _, _, m in items_of(sessions, globex)]
    explicit = codec.train_dictionary(samples, tenant=acme)  # through the codec
    by_registry = sigmalang.train_dictionary(samples[::-1], size_bytes=16 * 1024)
    assert explicit is not None and by_registry is not None
    codec.dictionaries.add(by_registry, tenant=globex)  # straight into the registry
    compress_all(codec, items_of(sessions))
    assert codec.dictionaries.own_active(acme) == explicit
    assert codec.dictionaries.own_active(globex) == by_registry
    for tenant in (acme, globex):
        status = codec.auto_dictionary_status(tenant)
        assert status is not None and status.state == "own" and status.kept == 0
    codec.close()


def test_a_dictionary_trained_on_request_after_an_automatic_one_stays(sessions: list[Session]) -> None:
    acme, globex = sessions[0].tenant, sessions[-1].tenant
    codec = SigmaCodec(config=AUTO)
    items = items_of(sessions, acme)
    sent = 0
    for tenant, stream, message in items:  # until its first automatic dictionary is registered
        codec.compress(message, tenant=tenant, stream=stream)
        sent += 1
        assert codec.wait_auto_dictionaries(timeout_s=60)
        status = codec.auto_dictionary_status(acme)
        if status is not None and status.kept:
            break
    else:
        pytest.fail("no automatic dictionary was registered")
    assert status.state == "collecting" and sent < len(items)  # a retraining would still come
    explicit = codec.train_dictionary([m for _, _, m in items_of(sessions, globex)], tenant=acme)
    assert explicit is not None
    compress_all(codec, items[sent:])
    assert codec.dictionaries.own_active(acme) == explicit
    final = codec.auto_dictionary_status(acme)
    assert final is not None and final.state == "own"
    codec.close()

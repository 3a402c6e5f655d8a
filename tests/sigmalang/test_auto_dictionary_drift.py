"""Automatic dictionaries across a restart and under drifting traffic (`sigmalang.autotrain`).

Real zstd, real codec, coding-agent sessions; each test waits for the background training to be idle
(`wait_auto_dictionaries`), never for a time. A drifting stream is one tenant's sessions of one
repository followed by another tenant's (another package and envelope) sent as the same tenant.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sigmalang
from benchmarks.sigma_corpus import Session
from benchmarks.sigma_corpus_coding import build_coding_sessions
from sigmalang import (
    DictionaryRegistry,
    MemoryRSUStore,
    MissingDictionaryError,
    SigmaCodec,
    SigmaConfig,
)
from tests.sigmalang.test_auto_dictionary import MemorySource, compress_all

K = 1024
DRIFT = SigmaConfig(
    auto_dictionary_min_new_bytes=32 * K,
    auto_dictionary_retrain_max_new_bytes=32 * K,
    auto_dictionary_drift_period_bytes=32 * K,
    auto_dictionary_sample_max_bytes=32 * K,
    auto_dictionary_max_kept=2,
)
"""Trained at 32 KiB of new bytes, then retrained every 32 KiB on the last 32 KiB; two kept."""
SECRET = b"s" * 32

Item = tuple[str, str, bytes]


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    return build_coding_sessions(7, tenants=2, sessions_per_tenant=4, turns=(4, 10))


def as_tenant(sessions: list[Session], source: str, tenant: str = "acme") -> list[Item]:
    """``source``'s turns sent as ``tenant`` (streams keep their session ids)."""
    return [(tenant, s.session_id, m) for s in sessions if s.tenant == source for m in s.turns]


def tenant_files(directory: Path, tenant: str) -> list[str]:
    return sorted(p.name for p in (directory / "t" / tenant.encode().hex()).glob("*.zdict"))


def test_after_a_restart_an_automatic_dictionary_is_still_automatic_and_trained_again(
    sessions: list[Session], tmp_path: Path
) -> None:
    first, second = sessions[0].tenant, sessions[-1].tenant
    store, source = MemoryRSUStore(), MemorySource()
    before = SigmaCodec(
        store=store, secret=SECRET, config=DRIFT, dictionaries=DictionaryRegistry(tmp_path, source=source)
    )
    old_items = as_tenant(sessions, first)
    old_frames = compress_all(before, old_items)
    trained = before.auto_dictionary_status("acme")
    assert trained is not None and trained.kept >= 1 and trained.dict_id is not None
    assert source.held[("acme", trained.dict_id)].automatic  # the source is told it is automatic
    before.close()

    after = SigmaCodec(
        store=store, secret=SECRET, config=DRIFT, dictionaries=DictionaryRegistry(tmp_path, source=source)
    )
    active = after.dictionaries.own_active("acme")
    assert active is not None and active.dict_id == trained.dict_id and active.automatic
    status = after.auto_dictionary_status("acme")  # before any traffic: from the directory
    assert status is not None and status.state == "collecting" and status.dict_id == trained.dict_id
    for frame, (_, _, message) in zip(old_frames, old_items, strict=True):
        assert after.decompress(frame, tenant="acme") == message
    compress_all(after, as_tenant(sessions, second))  # new traffic, another repository
    again = after.auto_dictionary_status("acme")
    assert again is not None and again.state == "collecting" and again.trainings >= 1
    assert again.kept >= 1 and again.dict_id != trained.dict_id  # trained again, not left as "own"
    newest = after.dictionaries.own_active("acme")
    assert newest is not None and newest.automatic and newest.dict_id == again.dict_id
    after.close()

    without_drift = DRIFT.model_copy(update={"auto_dictionary_drift_period_bytes": 0})
    idle = SigmaCodec(config=without_drift, dictionaries=DictionaryRegistry(tmp_path))
    settled = idle.auto_dictionary_status("acme")
    assert settled is not None and settled.state == "trained" and settled.dict_id == again.dict_id
    idle.close()


def test_after_a_restart_an_explicit_dictionary_is_still_own_and_never_replaced(
    sessions: list[Session], tmp_path: Path
) -> None:
    first, second = sessions[0].tenant, sessions[-1].tenant
    before = SigmaCodec(config=DRIFT, dictionaries=DictionaryRegistry(tmp_path))
    explicit = before.train_dictionary([m for _, _, m in as_tenant(sessions, second)], tenant="acme")
    assert explicit is not None and not explicit.automatic
    before.close()
    assert tenant_files(tmp_path, "acme") == [f"{explicit.dict_id:08x}.zdict"]

    after = SigmaCodec(config=DRIFT, dictionaries=DictionaryRegistry(tmp_path))
    status = after.auto_dictionary_status("acme")
    assert status is not None and status.state == "own"
    compress_all(after, as_tenant(sessions, first))
    assert after.dictionaries.own_active("acme") == explicit
    status = after.auto_dictionary_status("acme")
    assert status is not None and status.state == "own" and status.trainings == 0
    assert tenant_files(tmp_path, "acme") == [f"{explicit.dict_id:08x}.zdict"]
    after.close()


def test_directory_entries_without_the_mark_load_as_before(sessions: list[Session], tmp_path: Path) -> None:
    samples = [m for _, _, m in as_tenant(sessions, sessions[0].tenant)]
    shared = sigmalang.train_dictionary(samples[::2], size_bytes=8 * K, min_samples=4)
    legacy = sigmalang.train_dictionary(samples[1::2], size_bytes=8 * K, min_samples=4)
    assert shared is not None and legacy is not None
    # As a checkout before the mark wrote them (an automatic one then was written like any other).
    (tmp_path / f"{shared.dict_id:08x}.zdict").write_bytes(shared.data)
    folder = tmp_path / "t" / b"acme".hex()
    folder.mkdir(parents=True)
    (folder / f"{legacy.dict_id:08x}.zdict").write_bytes(legacy.data)

    codec = SigmaCodec(config=DRIFT, dictionaries=DictionaryRegistry(tmp_path))
    assert codec.dictionaries.active == shared and not codec.dictionaries.active.automatic
    own = codec.dictionaries.own_active("acme")
    assert own == legacy and not own.automatic
    status = codec.auto_dictionary_status("acme")
    assert status is not None and status.state == "own"  # unmarked: a user's choice, as before
    frame = codec.compress(samples[0], tenant="acme").frame
    assert codec.inspect(frame, tenant="acme").dict_id == legacy.dict_id
    assert codec.decompress(frame, tenant="acme") == samples[0]
    codec.close()


def test_a_dictionary_fetched_to_decode_is_not_made_active_by_a_restart(
    sessions: list[Session], tmp_path: Path
) -> None:
    store, source = MemoryRSUStore(), MemorySource()
    maker = SigmaCodec(
        store=store,
        secret=SECRET,
        config=DRIFT,
        dictionaries=DictionaryRegistry(tmp_path / "a", source=source),
    )
    items = as_tenant(sessions, sessions[0].tenant)
    frames = compress_all(maker, items)
    trained = maker.auto_dictionary_status("acme")
    assert trained is not None and trained.dict_id is not None
    maker.close()
    reader = SigmaCodec(
        store=store,
        secret=SECRET,
        config=DRIFT,
        dictionaries=DictionaryRegistry(tmp_path / "b", source=source),
    )
    for frame, (_, _, message) in zip(frames, items, strict=True):
        assert reader.decompress(frame, tenant="acme") == message  # fetched from the source
    assert f"{trained.dict_id:08x}.fetched.zdict" in tenant_files(tmp_path / "b", "acme")
    restarted = SigmaCodec(config=DRIFT, dictionaries=DictionaryRegistry(tmp_path / "b"))
    assert restarted.dictionaries.own_active("acme") is None  # not the tenant's own: it only decodes
    assert restarted.dictionaries.has(trained.dict_id, tenant="acme")
    assert restarted.auto_dictionary_status("acme") is None
    for codec in (reader, restarted):
        codec.close()


def test_drifting_traffic_gets_a_new_dictionary_and_the_kept_ones_are_bounded(
    sessions: list[Session], tmp_path: Path
) -> None:
    first, second = sessions[0].tenant, sessions[-1].tenant
    codec = SigmaCodec(config=DRIFT, dictionaries=DictionaryRegistry(tmp_path))
    items = as_tenant(sessions, first) + as_tenant(sessions, second)
    switch = len(as_tenant(sessions, first))
    frames, history = [], []
    for tenant, stream, message in items:
        frames.append(codec.compress(message, tenant=tenant, stream=stream).frame)
        assert codec.wait_auto_dictionaries(timeout_s=60)
        status = codec.auto_dictionary_status("acme")
        assert status is not None and status.state == "collecting"  # retrained for as long as it sends
        history.append(status)
    at_switch, final = history[switch - 1], history[-1]
    # Retrainings on the first repository's traffic that did not beat the dictionary in use were not kept.
    assert at_switch.trainings > at_switch.kept >= 1
    # The second repository's traffic got a dictionary of its own, which its later frames name.
    assert final.kept > at_switch.kept and final.dict_id != at_switch.dict_id
    assert codec.inspect(frames[-1], tenant="acme").dict_id == final.dict_id
    # At most `auto_dictionary_max_kept` automatic dictionaries stay, in memory and in the directory.
    named = {codec.inspect(f, tenant="acme").dict_id for f in frames}
    kept = {d for d in named if codec.dictionaries.has(d, tenant="acme")} - {
        sigmalang.generic_dictionary().dict_id
    }
    assert final.dict_id in kept and len(kept) == DRIFT.auto_dictionary_max_kept
    assert tenant_files(tmp_path, "acme") == sorted(f"{d:08x}.auto.zdict" for d in kept)
    dropped = 0
    for frame, (_, _, message) in zip(frames, items, strict=True):
        dict_id = codec.inspect(frame, tenant="acme").dict_id
        if dict_id in kept or dict_id == sigmalang.generic_dictionary().dict_id:
            assert codec.decompress(frame, tenant="acme") == message
        else:  # a dictionary beyond the bound: no source to fetch it from
            dropped += 1
            with pytest.raises(MissingDictionaryError, match=f"{dict_id:#010x}"):
                codec.decompress(frame, tenant="acme")
    assert dropped > 0, "the stream made more dictionaries than the bound keeps"
    codec.close()


def test_a_dropped_dictionary_still_decodes_through_the_source(
    sessions: list[Session], tmp_path: Path
) -> None:
    source = MemorySource()
    codec = SigmaCodec(config=DRIFT, dictionaries=DictionaryRegistry(tmp_path, source=source))
    items = as_tenant(sessions, sessions[0].tenant) + as_tenant(sessions, sessions[-1].tenant)
    frames = compress_all(codec, items)
    named = [codec.inspect(f, tenant="acme").dict_id for f in frames]
    dropped = {d for d in named if not codec.dictionaries.has(d, tenant="acme")}
    assert dropped and all(source.held[("acme", d)].automatic for d in dropped)
    for frame, (_, _, message) in zip(frames, items, strict=True):
        assert codec.decompress(frame, tenant="acme") == message
    codec.close()

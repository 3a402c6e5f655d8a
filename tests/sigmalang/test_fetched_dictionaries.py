"""Dictionaries fetched from a `DictionarySource` are a bounded, least-recently-used cache.

A registry that decodes other replicas' frames fetches each dictionary it lacks; it keeps at most
``fetched_max_bytes`` of them (memory and directory), fetches an evicted one again when a frame names
it, and never evicts a tenant's own or the shared dictionaries. Real zstd dictionaries and frames; a
spy source counts the fetches.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import sigmalang
from sigmalang import (
    Dictionary,
    DictionaryRegistry,
    MemoryRSUStore,
    SigmaCodec,
    SigmaConfig,
    train_dictionary,
)
from tests.sigmalang.test_auto_dictionary import MemorySource

SIZE = 1024
"""Bytes of each dictionary here (trained to exactly this size)."""
KEPT = 3
"""Fetched dictionaries that fit the readers' bound."""
PLAIN = SigmaConfig(auto_dictionary_min_new_bytes=0)  # no automatic training: the tests add each dictionary
SECRET = b"s" * 32


class SpySource(MemorySource):
    """The in-memory source, counting the fetches that found a dictionary, by (tenant, id)."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: Counter[tuple[str | None, int]] = Counter()

    def fetch(self, tenant: str | None, dict_id: int) -> bytes | None:
        found = super().fetch(tenant, dict_id)
        if found is not None:
            self.fetched[(tenant, dict_id)] += 1
        return found


def vocabulary(seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9))) for _ in range(60)
    ]


def message(words: list[str], rng: random.Random) -> bytes:
    text = " ".join(rng.choice(words) for _ in range(50))
    return f'{{"role": "user", "tool": "search", "content": "{text}"}}'.encode()


def dictionary_of(seed: int) -> tuple[Dictionary, bytes]:
    """A dictionary trained on messages of its own vocabulary, and one more such message (under 512 B)."""
    words, rng = vocabulary(seed), random.Random(seed)
    trained = train_dictionary([message(words, rng) for _ in range(64)], size_bytes=SIZE, min_samples=16)
    assert trained is not None and len(trained) == SIZE
    return trained, message(words, rng)


@pytest.fixture(scope="module")
def dictionaries() -> list[tuple[Dictionary, bytes]]:
    made = [dictionary_of(seed) for seed in range(8)]
    assert len({d.dict_id for d, _ in made}) == len(made)
    return made


def codec_of(store: MemoryRSUStore, registry: DictionaryRegistry) -> SigmaCodec:
    """A replica of the tests' service: the shared store and secret, no automatic training."""
    return SigmaCodec(store=store, secret=SECRET, config=PLAIN, dictionaries=registry)


def frames_of(
    dictionaries: list[tuple[Dictionary, bytes]], tmp_path: Path, store: MemoryRSUStore, source: SpySource
) -> list[tuple[int, bytes, bytes]]:
    """Another replica's frames of tenant ``acme``, one per dictionary: (id, frame, message)."""
    maker = codec_of(store, DictionaryRegistry(tmp_path / "maker", source=source))
    frames = []
    for dictionary, text in dictionaries:
        maker.dictionaries.add(dictionary, tenant="acme")
        frame = maker.compress(text, tenant="acme").frame
        assert maker.inspect(frame, tenant="acme").dict_id == dictionary.dict_id
        frames.append((dictionary.dict_id, frame, text))
    maker.close()
    return frames


def fetched_files(directory: Path, tenant: str | None = "acme") -> set[int]:
    folder = directory if tenant is None else directory / "t" / tenant.encode().hex()
    return {int(p.name[:8], 16) for p in folder.glob("*.fetched.zdict")}


def test_more_fetched_dictionaries_than_the_bound_keep_the_bound_and_still_decode(
    dictionaries: list[tuple[Dictionary, bytes]], tmp_path: Path
) -> None:
    store, source = MemoryRSUStore(), SpySource()
    frames = frames_of(dictionaries, tmp_path, store, source)
    registry = DictionaryRegistry(tmp_path / "reader", source=source, fetched_max_bytes=KEPT * SIZE)
    reader = codec_of(store, registry)
    generic = sigmalang.generic_dictionary().dict_id

    def decode(i: int) -> None:
        dict_id, frame, text = frames[i]
        assert reader.decompress(frame, tenant="acme") == text
        held = {d for d in registry if d != generic}
        assert len(held) <= KEPT and dict_id in held  # the one it just needed is kept
        assert fetched_files(tmp_path / "reader") == held  # memory and directory agree

    for i in range(len(frames)):  # each fetched once, the oldest evicted beyond KEPT
        decode(i)
    assert source.fetched == Counter({("acme", d): 1 for d, _, _ in frames})
    last = [d for d, _, _ in frames[-KEPT:]]
    assert {d for d in registry if d != generic} == set(last)

    for i in range(len(frames) - KEPT, len(frames)):  # kept: decoded without a fetch
        decode(i)
    assert sum(source.fetched.values()) == len(frames)

    decode(len(frames) - KEPT)  # a decode is a use: the oldest kept becomes the most recent ...
    decode(0)  # ... so the one evicted for the re-fetched first frame is the next oldest
    assert source.fetched[("acme", frames[0][0])] == 2
    assert not registry.has(last[1], tenant="acme") and registry.has(last[0], tenant="acme")
    decode(len(frames) - KEPT + 1)  # evicted, so fetched again
    assert source.fetched[("acme", last[1])] == 2
    assert sum(source.fetched.values()) == len(frames) + 2
    reader.close()


def test_own_and_shared_dictionaries_are_never_evicted(
    dictionaries: list[tuple[Dictionary, bytes]], tmp_path: Path
) -> None:
    store, source = MemoryRSUStore(), SpySource()
    frames = frames_of(dictionaries[:5], tmp_path, store, source)
    (own, own_text), (shared, shared_text) = dictionaries[5], dictionaries[6]
    registry = DictionaryRegistry(tmp_path / "reader", source=source, fetched_max_bytes=0)
    reader = codec_of(store, registry)
    registry.add(shared)  # shared (tenant None), active for tenants without their own
    registry.add(own, tenant="acme")
    own_frame = reader.compress(own_text, tenant="acme").frame
    shared_frame = reader.compress(shared_text, tenant="globex").frame
    assert reader.inspect(shared_frame, tenant="globex").dict_id == shared.dict_id
    for dict_id, frame, text in frames * 2:  # bound 0: only the latest fetched one stays
        assert reader.decompress(frame, tenant="acme") == text
        assert fetched_files(tmp_path / "reader") == {dict_id}
    assert reader.decompress(own_frame, tenant="acme") == own_text
    assert reader.decompress(shared_frame, tenant="globex") == shared_text
    assert registry.own_active("acme") == own and registry.active == shared
    assert registry.has(sigmalang.generic_dictionary().dict_id)  # the builtin one
    assert source.fetched[("acme", own.dict_id)] == source.fetched[(None, shared.dict_id)] == 0
    assert sum(source.fetched.values()) == 2 * len(frames)  # every fetched frame, both times
    tenant_dir = tmp_path / "reader" / "t" / b"acme".hex()
    assert (tenant_dir / f"{own.dict_id:08x}.zdict").exists()
    assert (tmp_path / "reader" / f"{shared.dict_id:08x}.zdict").exists()

    fetched_id = frames[-1][0]  # held as fetched; added by a user, it becomes the tenant's own
    registry.add(Dictionary(source.fetch("acme", fetched_id) or b""), activate=False, tenant="acme")
    assert fetched_files(tmp_path / "reader") == set()
    assert (tenant_dir / f"{fetched_id:08x}.zdict").exists()
    for _, frame, text in frames[:2]:
        assert reader.decompress(frame, tenant="acme") == text
    assert registry.has(fetched_id, tenant="acme") and registry.has(own.dict_id, tenant="acme")
    reader.close()


def test_a_restart_loads_at_most_the_bound_the_most_recently_fetched(
    dictionaries: list[tuple[Dictionary, bytes]], tmp_path: Path
) -> None:
    store, source = MemoryRSUStore(), SpySource()
    frames = frames_of(dictionaries, tmp_path, store, source)
    reader = codec_of(
        store, DictionaryRegistry(tmp_path / "reader", source=source, fetched_max_bytes=100 * SIZE)
    )
    for _, frame, text in frames:
        assert reader.decompress(frame, tenant="acme") == text
    reader.close()
    folder = tmp_path / "reader" / "t" / b"acme".hex()
    for age, (dict_id, _, _) in enumerate(reversed(frames)):  # fetched one second apart, in frame order
        path = folder / f"{dict_id:08x}.fetched.zdict"
        os.utime(path, ns=(path.stat().st_atime_ns, 1_700_000_000_000_000_000 - age * 1_000_000_000))
    assert len(fetched_files(tmp_path / "reader")) == len(frames)

    restarted = DictionaryRegistry(tmp_path / "reader", source=source, fetched_max_bytes=KEPT * SIZE)
    last = {d for d, _, _ in frames[-KEPT:]}
    assert fetched_files(tmp_path / "reader") == last == set(restarted)
    assert restarted.own_active("acme") is None  # fetched ones are still never activated
    fetches = sum(source.fetched.values())
    again = codec_of(store, restarted)
    for _, frame, text in reversed(frames):  # the kept ones first: no fetch for them
        assert again.decompress(frame, tenant="acme") == text
    assert sum(source.fetched.values()) == fetches + len(frames) - KEPT  # only the evicted ones
    again.close()


def test_concurrent_decodes_under_a_small_bound_all_decode_and_keep_the_bound(
    dictionaries: list[tuple[Dictionary, bytes]], tmp_path: Path
) -> None:
    store, source = MemoryRSUStore(), SpySource()
    frames = frames_of(dictionaries, tmp_path, store, source)
    registry = DictionaryRegistry(tmp_path / "reader", source=source, fetched_max_bytes=2 * SIZE)
    reader = codec_of(store, registry)
    work = [frames[i % len(frames)] for i in range(7 * len(frames))]
    with ThreadPoolExecutor(4) as pool:
        decoded = list(pool.map(lambda item: reader.decompress(item[1], tenant="acme"), work))
    assert decoded == [text for _, _, text in work]
    held = {d for d in registry if d != sigmalang.generic_dictionary().dict_id}
    assert len(held) <= 2 and fetched_files(tmp_path / "reader") == held
    reader.close()


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="fetched_max_bytes"):
        DictionaryRegistry(fetched_max_bytes=-1)

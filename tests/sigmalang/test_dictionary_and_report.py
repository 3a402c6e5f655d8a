from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import sigmalang
from sigmalang import DictionaryRegistry, MissingDictionaryError, SigmaCodec, SigmaConfig


def agent_messages(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    kinds = ["task.request", "task.result", "stream.chunk"]
    words = "agent retry tenant vector result token cache plan step error queue".split()
    return [
        json.dumps(
            {
                "id": f"req-{rng.randrange(16**10):010x}",
                "type": rng.choice(kinds),
                "agent": f"neurectomy.agent.{rng.choice(['storage', 'inference'])}.{rng.choice(words)}",
                "payload": {"text": " ".join(rng.choices(words, k=rng.randint(5, 40))), "n": rng.random()},
            }
        ).encode()
        for _ in range(n)
    ]


def test_too_few_samples_means_no_dictionary_and_codec_still_works() -> None:
    codec = SigmaCodec()
    assert codec.train_dictionary(agent_messages(1, 3)) is None
    assert codec.dictionaries.active is None
    message = agent_messages(2, 1)[0]
    assert codec.decompress(codec.compress(message).frame) == message


def test_trained_dictionary_at_least_doubles_ratio_on_short_messages() -> None:
    codec = SigmaCodec()
    dictionary = codec.train_dictionary(agent_messages(1, 400))
    assert dictionary is not None and len(dictionary) > 0
    held_out = [m for m in agent_messages(99, 200) if len(m) < 1024]
    without = SigmaCodec(config=SigmaConfig(generic_dictionary=False))  # no dictionary at all
    plain = sum(len(without.compress(m).frame) for m in held_out)
    results = [codec.compress(m) for m in held_out]
    with_dict = sum(r.report.bytes_out for r in results)
    assert plain / with_dict >= 2
    assert all(r.report.dict_id == dictionary.dict_id for r in results)
    assert sum(r.report.dictionary_saved for r in results) > sum(r.report.entropy_saved for r in results)
    for message, result in zip(held_out, results, strict=True):
        assert codec.decompress(result.frame) == message


def test_generic_dictionary_is_used_without_a_trained_one_and_ships_with_every_codec() -> None:
    generic = sigmalang.generic_dictionary()
    messages = agent_messages(3, 20)
    codec = SigmaCodec()
    results = [codec.compress(m, tenant="acme", stream="s") for m in messages]
    assert {r.report.dict_id for r in results} == {generic.dict_id}
    assert generic.dict_id in codec.dictionaries and codec.dictionaries.active is None
    elsewhere = SigmaCodec(store=codec.store, secret=b"s" * 32)  # another codec: it has the dictionary
    again = elsewhere.compress(messages[0], tenant="acme")
    fresh = SigmaCodec(store=codec.store, secret=b"s" * 32)
    assert fresh.decompress(again.frame, tenant="acme") == messages[0]
    for message, result in zip(messages, results, strict=True):
        assert codec.decompress(result.frame, tenant="acme") == message


def test_registry_persists_dictionaries_by_id(tmp_path: Path) -> None:
    dictionary = sigmalang.train_dictionary(agent_messages(1, 200))
    assert dictionary is not None
    DictionaryRegistry(tmp_path).add(dictionary)
    reopened = DictionaryRegistry(tmp_path)
    assert dictionary.dict_id in reopened
    assert reopened.get(dictionary.dict_id).data == dictionary.data
    assert reopened.active == dictionary
    message = agent_messages(5, 1)[0]
    frame = sigmalang.compress(message, dictionary=dictionary)
    assert sigmalang.decompress(frame, dictionaries=reopened) == message


def test_a_tenants_dictionary_is_its_own_and_persists_as_its_own(tmp_path: Path) -> None:
    codec = SigmaCodec(dictionaries=DictionaryRegistry(tmp_path))
    dictionary = codec.train_dictionary(agent_messages(1, 300), tenant="acme")
    assert dictionary is not None
    message = agent_messages(6, 1)[0]
    mine = codec.compress(message, tenant="acme", dedup=False)
    theirs = codec.compress(message, tenant="globex", dedup=False)
    assert mine.report.dict_id == dictionary.dict_id and theirs.report.dict_id != dictionary.dict_id
    assert codec.dictionaries.active is None and codec.dictionaries.active_for("globex") is None
    with pytest.raises(MissingDictionaryError, match=f"{dictionary.dict_id:#010x}"):
        codec.decompress(mine.frame, tenant="globex")  # the same bytes, asked for by another tenant
    assert codec.decompress(mine.frame, tenant="acme") == message
    assert (
        tmp_path / "t" / b"acme".hex() / f"{dictionary.dict_id:08x}.zdict"
    ).read_bytes() == dictionary.data
    reopened = DictionaryRegistry(tmp_path)
    assert reopened.active_for("acme") == dictionary and reopened.active_for("globex") is None
    assert not reopened.has(dictionary.dict_id, tenant="globex")


def test_a_forgotten_tenants_dictionaries_are_gone_from_memory_and_disk(tmp_path: Path) -> None:
    codec = SigmaCodec(dictionaries=DictionaryRegistry(tmp_path))
    shared = codec.train_dictionary(agent_messages(2, 300))
    acme = codec.train_dictionary(agent_messages(1, 300), tenant="acme")
    globex = codec.train_dictionary(agent_messages(3, 300), tenant="globex")
    assert shared is not None and acme is not None and globex is not None
    message = agent_messages(6, 1)[0]
    frame = codec.compress(message, tenant="acme", dedup=False).frame
    assert codec.decompress(frame, tenant="acme") == message

    codec.forget_tenant("acme")

    assert not (tmp_path / "t" / b"acme".hex()).exists()  # its training content is not left on disk
    assert not codec.dictionaries.has(acme.dict_id, tenant="acme")
    with pytest.raises(MissingDictionaryError, match=f"{acme.dict_id:#010x}"):
        codec.decompress(frame, tenant="acme")
    assert codec.dictionaries.active_for("acme") == shared  # new frames fall back to the shared one
    assert codec.dictionaries.active_for("globex") == globex  # other tenants keep theirs
    reopened = DictionaryRegistry(tmp_path)
    assert not reopened.has(acme.dict_id, tenant="acme")
    assert reopened.active_for("globex") == globex and reopened.active == shared


def test_attribution_adds_up_exactly() -> None:
    codec = SigmaCodec(config=SigmaConfig(), count_tokens=lambda text: len(text.split()))
    codec.train_dictionary(agent_messages(1, 300))
    inputs = agent_messages(7, 5) + [b"".join(agent_messages(8, 40))] * 2 + [bytes(range(256)) * 3, b""]
    for data in inputs:
        r = codec.compress(data).report
        assert r.bytes_in - r.bytes_out == r.dedup_saved + r.dictionary_saved + r.entropy_saved - r.framing
        assert r.referenced_bytes + r.literal_bytes == r.bytes_in
        assert r.framing > 0
        if r.bytes_in > r.bytes_out:
            shares = r.shares
            assert abs(shares.dedup + shares.dictionary + shares.entropy - 1) < 1e-9


def test_reports_tokens_and_ratio() -> None:
    codec = SigmaCodec(count_tokens=lambda text: len(text.split()))
    rng = random.Random(4)
    words = "the planner retries storage agent after seconds tenant vector cache result".split()
    text = " ".join(rng.choices(words, k=3000)).encode()
    first = codec.compress(text).report
    assert first.tokens_in == first.tokens_out == len(text.decode().split())
    assert first.ratio == first.bytes_in / first.bytes_out
    second = codec.compress(text + b" New turn.").report
    assert second.tokens_in is not None and second.tokens_out is not None
    assert second.tokens_out < second.tokens_in  # glyphs stand in for whole chunks of text
    assert second.token_ratio is not None and second.token_ratio > 2
    assert SigmaCodec().compress(text).report.tokens_in is None

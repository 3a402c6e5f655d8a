"""The held-back check of automatic dictionaries (`sigmalang.autotrain`): what it passes is what is used.

Real zstd, real codec, coding-agent sessions. The trainer's zstd calls are observed (wrapped, not
replaced): each training trains once, and the dictionary the check scored is the one registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

import sigmalang
from benchmarks.sigma_corpus import Session
from benchmarks.sigma_corpus_coding import build_coding_sessions
from sigmalang import Dictionary, SigmaCodec, autotrain
from tests.sigmalang.test_auto_dictionary import AUTO, compress_all, items_of


@dataclass(frozen=True)
class Scored:
    """One `_cost` call of the check: the dictionary, the held-back pieces it coded, their bytes."""

    dictionary: Dictionary | None
    pieces: int
    cost: int


@dataclass
class Observed:
    trained: int = 0
    scored: list[Scored] | None = None


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    return build_coding_sessions(7, tenants=2, sessions_per_tenant=4, turns=(4, 10))


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> Observed:
    seen = Observed(scored=[])
    train, cost = autotrain.train_dictionary, autotrain._cost

    def counted(samples: Sequence[bytes], **kwargs: object) -> Dictionary | None:
        seen.trained += 1
        return train(samples, **kwargs)  # type: ignore[arg-type]

    def scored(dictionary: Dictionary | None, messages: list[tuple[bytes, ...]], level: int) -> int:
        out = cost(dictionary, messages, level)
        assert seen.scored is not None
        seen.scored.append(Scored(dictionary, sum(map(len, messages)), out))
        return out

    monkeypatch.setattr(autotrain, "train_dictionary", counted)
    monkeypatch.setattr(autotrain, "_cost", scored)
    return seen


def checks(observed: Observed) -> list[tuple[Scored, Scored]]:
    """(candidate, dictionary in use) per training, in order: the check scores them in that order."""
    assert observed.scored is not None and len(observed.scored) % 2 == 0
    return list(zip(observed.scored[::2], observed.scored[1::2], strict=True))


def passed(candidate: Scored, in_use: Scored) -> bool:
    """The guard: fewer bytes on the held-back pieces, a trained dictionary's 4-byte id counted."""
    generic = in_use.dictionary is not None and in_use.dictionary == sigmalang.generic_dictionary()
    return candidate.cost + 4 * candidate.pieces < in_use.cost + (0 if generic else 4 * in_use.pieces)


def test_each_training_trains_once_and_registers_the_dictionary_the_check_passed_byte_for_byte(
    sessions: list[Session], observed: Observed
) -> None:
    acme = sessions[0].tenant
    codec = SigmaCodec(config=AUTO)
    compress_all(codec, items_of(sessions, acme))

    status = codec.auto_dictionary_status(acme)
    assert status is not None and status.trainings == 2
    assert observed.trained == 2, "one zstd training per training (the checked one is kept)"
    kept = [candidate for candidate, in_use in checks(observed) if passed(candidate, in_use)]
    assert len(kept) == status.kept >= 1
    for candidate in kept:
        assert candidate.dictionary is not None
        registered = codec.dictionaries.get(candidate.dictionary.dict_id, tenant=acme)
        assert registered.data == candidate.dictionary.data and registered.automatic
    assert kept[-1].dictionary is not None and status.dict_id == kept[-1].dictionary.dict_id
    codec.close()


def test_a_dictionary_that_does_not_beat_the_one_in_use_on_the_held_back_part_is_not_registered(
    sessions: list[Session], observed: Observed
) -> None:
    acme = sessions[0].tenant
    items = items_of(sessions, acme)
    codec = SigmaCodec(config=AUTO)
    shared = sigmalang.train_dictionary([m for _, _, m in items], size_bytes=16 * 1024)
    assert shared is not None
    codec.dictionaries.add(shared)  # shared (no tenant): what the tenant uses, and what the check beats
    frames = compress_all(codec, items)

    status = codec.auto_dictionary_status(acme)
    assert status is not None and status.trainings == 2 and status.kept == 0
    scored = checks(observed)
    assert [in_use.dictionary for _, in_use in scored] == [shared, shared]
    assert not any(passed(candidate, in_use) for candidate, in_use in scored)  # refused: coded worse
    assert codec.dictionaries.own_active(acme) is None
    assert {codec.inspect(f, tenant=acme).dict_id for f in frames} == {shared.dict_id}
    codec.close()

"""RSUs sharing *words* with new chunks join the context (`SigmaConfig.word_context_per_new_chunk`).

New code repeats few whole lines of what the tenant sent before (no anchor), but many identifiers;
the RSUs holding most of them are named in the frame's context, so zstd finds the short matches
there. The frames stay version 3 (the RSUs are context runs) and decode byte for byte.
"""

from __future__ import annotations

import random
import re

from hypothesis import given
from hypothesis import strategies as st

import sigmalang
from benchmarks.sigma_corpus import Session, build_sessions
from benchmarks.sigma_corpus_coding import build_coding_sessions
from sigmalang import _anchors
from sigmalang._anchors import WORD_MIN_BYTES, AnchorIndex, words, words_of

_SECRET = b"word-context-test-secret-32bytes"


def test_words_are_the_distinct_long_identifiers_in_order() -> None:
    got = words(b"self.connection_pool = make_pool(max_connections, timeout_s) # max_connections pool")
    assert list(got) == [b"connection_pool", b"make_pool", b"max_connections", b"timeout_s"]
    assert list(words(memoryview(b"short words only, a b c, self pool"))) == []
    assert list(words(b"9abcdefghij-_underscored \xce\xa3lang_module\x00abcdefgh")) == [
        b"9abcdefghij",
        b"_underscored",
        b"lang_module",  # a non-ASCII byte ends a word
        b"abcdefgh",  # exactly 8 bytes, after a NUL
    ]
    assert list(words(b"abcdefg abcdefg_ " * 3)) == [b"abcdefg_"]  # 7 bytes: no word; 8: one
    assert WORD_MIN_BYTES == 8


_WORD_BYTES = b"abcXYZ019_"
_OTHER_BYTES = b' \n.\x00\xff\x80-\\"{'


@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(1, 12), st.sampled_from(_WORD_BYTES), st.sampled_from(_OTHER_BYTES)),
            max_size=30,
        ).map(lambda runs: b"".join(bytes([w]) * n + bytes([o]) * (n % 3) for n, w, o in runs)),
        max_size=5,
    )
)
def test_words_of_finds_exactly_the_runs_of_8_or_more_word_bytes_of_each_chunk(chunks: list[bytes]) -> None:
    """Runs of 1-12 word bytes (7, 8 and 9 among them), separated or not, each chunk on its own."""
    chunks = [*chunks, *chunks]  # (more chunks than a small batch holds)
    expected = [list(dict.fromkeys(re.findall(rb"[A-Za-z0-9_]{8,}", c))) for c in chunks]
    assert [list(found) for found in words_of(chunks)] == expected
    assert [list(words(memoryview(c))) for c in chunks] == expected
    batch, _anchors._WORDS_BATCH_BYTES = _anchors._WORDS_BATCH_BYTES, 40  # joined a few chunks at a time
    try:
        assert [list(found) for found in words_of(chunks)] == expected
    finally:
        _anchors._WORDS_BATCH_BYTES = batch


def test_a_word_is_not_joined_across_two_chunks() -> None:
    found = words_of([b"x = abcd", b"efgh + 1", b"", b"longer_name"])
    assert [list(w) for w in found] == [[], [], [], [b"longer_name"]]


def test_related_ranks_rsus_by_shared_words_and_keeps_the_latest_holder() -> None:
    index = AnchorIndex()
    a, b, c = (dict.fromkeys(w) for w in ([b"w1", b"w2", b"w3"], [b"w3", b"w4"], [b"w5"]))
    index.add_many([10, 11, 12], [[], [], []], [a, b, c])
    # word 3 now belongs to RSU 11 (the latest holder), so 10 shares 2 and 11 shares 2 (3 and 4)
    assert index.related([{b"w1", b"w2", b"w3", b"w4"}], 5) == [11, 10]  # a tie: the later first
    assert index.related([{b"w1", b"w2", b"w3", b"w4"}], 1) == [11]
    assert index.related([{b"w1"}, {b"w1", b"w5"}], 5) == [10, 12]  # counted once per chunk: 10 twice
    assert index.related([{b"w2", b"w3", b"w4"}], 5) == [11, 10]  # 11 shares 2, 10 shares 1
    assert index.related([{b"w99"}], 5) == []
    assert index.related([], 5) == []
    index.add_many([13], [[]])  # without words: the word index is unchanged
    assert index.related([{b"w5"}], 5) == [12]


def test_the_word_index_stays_within_its_bound_keeping_the_newest_words() -> None:
    limit, _anchors._MAX_ANCHORS = _anchors._MAX_ANCHORS, 16
    try:
        index = AnchorIndex()
        for seq in range(1, 8):  # 7 RSUs of 10 new words each, then one batch of 40 at once
            index.add_many([seq], [[]], [dict.fromkeys(b"word%03d" % (seq * 10 + i) for i in range(10))])
            assert len(index._words) <= 16
        index.add_many(
            [8, 9], [[], []], [dict.fromkeys(b"big%03d" % i for i in range(k, k + 20)) for k in (0, 20)]
        )
        assert len(index._words) <= 16
    finally:
        _anchors._MAX_ANCHORS = limit
    assert index.related([{b"big039", b"big038"}], 2) == [9]  # the newest words are kept
    assert index.related([{b"word010", b"big000"}], 2) == []  # the oldest are forgotten


def _code(rng: random.Random, names: list[str], n: int) -> str:
    lines = []
    for _ in range(n):
        a, b, c = rng.sample(names, 3)
        lines.append(f"    {a} = {b}({c}, {rng.randint(0, 999)})")
    return "\n".join(lines)


def _names(rng: random.Random, n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    prefixes = ["fetch", "store", "parse", "render"]
    return [f"{rng.choice(prefixes)}_{''.join(rng.choices(letters, k=6))}" for _ in range(n)]


def test_a_new_session_finds_its_identifiers_in_another_session() -> None:
    names = _names(random.Random(5), 300)
    earlier = ("def first():\n" + _code(random.Random(5), names, 400)).encode()
    later = ("def second():\n" + _code(random.Random(6), names, 400)).encode()
    sizes = {}
    for limit in (0, 2):
        codec = sigmalang.SigmaCodec(config=sigmalang.SigmaConfig(word_context_per_new_chunk=limit))
        codec.compress(earlier, tenant="t", stream="one")
        other = codec.compress(b'{"unrelated": "' + b"x" * 600 + b'"}', tenant="t", stream="two")
        result = codec.compress(later, tenant="t", stream="three")
        assert codec.decompress(result.frame, tenant="t") == later
        assert codec.decompress(other.frame, tenant="t").startswith(b'{"unrelated"')
        sizes[limit] = len(result.frame)
        if limit:
            context = codec.inspect(result.frame, tenant="t").context
            held = codec.store.get_many("t", list(context))
            assert any(bytes(c) in earlier for c in held), "the earlier code is in the context"
        codec.close()
    assert sizes[2] < sizes[0] * 0.9, sizes


def _replay(sessions: list[Session], limit: int) -> tuple[sigmalang.SigmaCodec, list[bytes]]:
    codec = sigmalang.SigmaCodec(
        secret=_SECRET, config=sigmalang.SigmaConfig(word_context_per_new_chunk=limit)
    )
    frames = []
    for s in sessions:
        for turn in s.turns:
            frames.append(codec.compress(turn, tenant=s.tenant, stream=s.session_id).frame)
            codec.wait_auto_dictionaries()
    return codec, frames


def _round_trips_and_changes_contexts(sessions: list[Session]) -> None:
    turns = [(s.tenant, t) for s in sessions for t in s.turns]
    on, on_frames = _replay(sessions, 2)
    off, off_frames = _replay(sessions, 0)
    try:
        for frame, (tenant, turn) in zip(on_frames, turns, strict=True):
            assert on.decompress(frame, tenant=tenant) == turn
        changed = [
            on.inspect(a, tenant=t).context != off.inspect(b, tenant=t).context
            for a, b, (t, _) in zip(on_frames, off_frames, turns, strict=True)
        ]
        assert any(changed), "the word context named RSUs the frames without it did not"
    finally:
        on.close()
        off.close()


def test_frames_with_the_word_context_round_trip_on_coding_sessions() -> None:
    _round_trips_and_changes_contexts(
        build_coding_sessions(7, tenants=2, sessions_per_tenant=2, turns=(4, 6))
    )


def test_frames_with_the_word_context_round_trip_on_prose_sessions() -> None:
    _round_trips_and_changes_contexts(build_sessions(7, tenants=2, sessions_per_tenant=2, turns=(4, 6)))


def test_a_tenants_words_never_bring_another_tenants_rsus() -> None:
    """Tenant b's frames are the same whether or not tenant a sent b's identifiers first.

    b first sends text without long words (its RSUs 1, 2, ...), then a short message (the next
    stream's base), then code whose identifiers only a's code holds: an index shared between tenants
    would name a's sequence numbers, which in b's store are that unrelated text.
    """
    names = _names(random.Random(8), 300)
    a_turn = ("def of_a():\n" + _code(random.Random(1), names, 400)).encode()
    rng = random.Random(3)
    b_text = " ".join("".join(rng.choices("abcdefgh", k=3)) for _ in range(6000)).encode()
    b_code = ("def of_b():\n" + _code(random.Random(2), names, 300)).encode()
    b_turns = [(b_text, "b1"), (b"{}" * 300, "b2"), (b_code, "b3")]
    frames = {}
    for with_a in (False, True):
        codec = sigmalang.SigmaCodec(
            secret=_SECRET, config=sigmalang.SigmaConfig(word_context_per_new_chunk=2)
        )
        if with_a:
            codec.compress(a_turn, tenant="a", stream="a")
        frames[with_a] = [codec.compress(t, tenant="b", stream=s).frame for t, s in b_turns]
        assert [codec.decompress(f, tenant="b") for f in frames[with_a]] == [t for t, _ in b_turns]
        assert len(codec.inspect(frames[with_a][2], tenant="b").context) <= 4, "b's code: its base only"
        codec.close()
    assert frames[True] == frames[False]

"""RSUs sharing *words* with new chunks join the context (`SigmaConfig.word_context_per_new_chunk`).

New code repeats few whole lines of what the tenant sent before (no anchor), but many identifiers;
the RSUs holding most of them are named in the frame's context, so zstd finds the short matches
there. The frames stay version 3 (the RSUs are context runs) and decode byte for byte.
"""

from __future__ import annotations

import random

import sigmalang
from sigmalang._anchors import WORD_MIN_BYTES, AnchorIndex, words


def test_words_are_the_distinct_long_identifiers() -> None:
    got = words(b"self.connection_pool = make_pool(max_connections, timeout_s) # pool pool")
    long_enough = (b"connection_pool", b"make_pool", b"max_connections", b"timeout_s", b"self", b"pool")
    assert got == {hash(w) for w in long_enough if len(w) >= WORD_MIN_BYTES}
    assert len(got) == 4  # "self" and "pool" are too short; "pool" twice counts once
    assert words(memoryview(b"short words only, a b c")) == set()
    assert words(b"9abcdefghij-_underscored \xce\xa3lang_module") == {
        hash(b"9abcdefghij"),
        hash(b"_underscored"),
        hash(b"lang_module"),  # a non-ASCII byte ends a word
    }


def test_related_ranks_rsus_by_shared_words_and_keeps_the_latest_holder() -> None:
    index = AnchorIndex()
    a, b, c = {1, 2, 3}, {3, 4}, {5}
    index.add_many([10, 11, 12], [[], [], []], [a, b, c])
    # word 3 now belongs to RSU 11 (the latest holder), so 10 shares 2 and 11 shares 2 (3 and 4)
    assert index.related([{1, 2, 3, 4}], 5) == [11, 10]
    assert index.related([{1, 2, 3, 4}], 1) == [11]
    assert index.related([{1}, {1, 5}], 5) == [10, 12]  # counted once per chunk: 10 twice, 12 once
    assert index.related([{99}], 5) == []
    index.add_many([13], [[]])  # without words: the word index is unchanged
    assert index.related([{5}], 5) == [12]


def _code(rng: random.Random, names: list[str], n: int) -> str:
    lines = []
    for _ in range(n):
        a, b, c = rng.sample(names, 3)
        lines.append(f"    {a} = {b}({c}, {rng.randint(0, 999)})")
    return "\n".join(lines)


def test_a_new_session_finds_its_identifiers_in_another_session() -> None:
    rng = random.Random(5)
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = [
        f"{rng.choice(['fetch', 'store', 'parse', 'render'])}_{''.join(rng.choices(letters, k=6))}"
        for _ in range(300)
    ]
    earlier = ("def first():\n" + _code(rng, names, 400)).encode()
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
    assert sizes[2] < sizes[0] * 0.9, sizes

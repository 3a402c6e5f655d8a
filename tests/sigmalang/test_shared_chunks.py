"""A message that opens with its base's bytes reuses the base's leading chunks (`_base.shared_chunks`)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from sigmalang import SigmaCodec, SigmaConfig
from sigmalang._base import Previous, shared_chunks
from sigmalang.chunking import chunk_spans, rsu_id

WORDS = b"tool schema system prompt retrieved document answer the of to and refund 42 {} [] \\n".split()
CONFIG = SigmaConfig()


def _text(seed: int, words: int) -> bytes:
    rng = random.Random(seed)
    return b" ".join(rng.choice(WORDS) for _ in range(words))


def _chunks(data: bytes) -> list[bytes]:
    return [data[o : o + n] for o, n in chunk_spans(data, CONFIG)]


edits = st.tuples(
    st.integers(0, 10_000),  # seed of the base text
    st.integers(50, 6_000),  # base words
    st.floats(0.0, 1.0),  # where the edit starts, as a fraction of the base
    st.integers(0, 3_000),  # bytes of the base the edit removes
    st.binary(max_size=300),  # bytes it inserts
)


@given(edits)
def test_the_shared_chunks_are_the_messages_first_chunks(edit: tuple[int, int, float, int, bytes]) -> None:
    seed, words, where, removed, inserted = edit
    base = _text(seed, words)
    at = int(where * len(base))
    message = base[:at] + inserted + base[at + removed :] + _text(seed + 1, 40)
    parts = _chunks(base)
    k, cut = shared_chunks(message, parts, avg_bytes=CONFIG.chunk_avg_bytes)
    fresh = _chunks(message)
    assert fresh[:k] == parts[:k]
    assert cut == sum(map(len, parts[:k]))
    assert message.startswith(base[:cut])


def test_a_message_that_opens_with_its_base_reuses_its_chunks_and_round_trips() -> None:
    base = _text(3, 4_000)
    message = base + _text(4, 500)
    k, cut = shared_chunks(message, _chunks(base), avg_bytes=CONFIG.chunk_avg_bytes)
    assert k >= len(_chunks(base)) - 2 and cut > len(base) - 3 * CONFIG.chunk_max_bytes

    codec = SigmaCodec()
    stored: list[int] = []
    put_many = codec.store.put_many
    codec.store.put_many = lambda tenant, items: stored.append(len(items)) or put_many(tenant, items)  # type: ignore[method-assign]
    frames = [codec.compress(m, tenant="acme", stream="s").frame for m in (base, message)]
    # the second message stored its manifest and only the chunks after the base's reused ones
    assert stored[1] == 1 + len(_chunks(message)) - k
    assert [codec.decompress(f, tenant="acme") for f in frames] == [base, message]
    # the message's RSUs (the next turn's base) are exactly those of a fresh chunking
    fresh = [rsu_id(c) for c in _chunks(message)]
    seqs = codec.store.seqs("acme", fresh)
    assert codec._streams[("acme", "s")].seqs == tuple(seqs[i] for i in fresh)
    follow_up = message + _text(5, 300)
    frame = codec.compress(follow_up, tenant="acme", stream="s").frame
    assert codec.decompress(frame, tenant="acme") == follow_up


def test_nothing_is_shared_when_the_message_differs_from_the_first_byte() -> None:
    base = _text(6, 2_000)
    assert shared_chunks(b"X" + base, _chunks(base), avg_bytes=CONFIG.chunk_avg_bytes) == (0, 0)
    assert shared_chunks(base[:100], _chunks(base), avg_bytes=CONFIG.chunk_avg_bytes) == (0, 0)


def test_a_stream_reads_its_base_early_only_when_the_next_message_opens_with_its_first_chunk() -> None:
    message = _text(7, 1_000)
    first = chunk_spans(message, CONFIG)[0][1]
    record = Previous.of(message, [1, 2, 3], first)
    assert record.seqs == (1, 2, 3) and record.head[0] == first + 2
    assert record.opens(message) and record.opens(message[: first + 2] + b"new turn")
    assert not record.opens(message[: first + 1] + b"~" + message[first + 2 :])
    assert not record.opens(message[: first + 1])
    assert not Previous((1,)).opens(message)
    assert Previous.of(b"ab", [1], 0).head == (0, 0)

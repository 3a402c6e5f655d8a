"""The per-message fast paths read and choose exactly what the general code does.

The decoder parses a version-3 header with `parse_v3` (a plain tuple) instead of `inspect_frame`
(a `FrameInfo`); `_context._acquire` skips passes when every candidate is held; the encoder takes the
chunker's own views (`chunk_views`) and adds a message's anchors in one call (`AnchorIndex.add_many`).
Each is checked against the general code on random input: the same fields, context, reference counts,
chunks and index.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigmalang import FrameAuthenticationError, MemoryRSUStore, SigmaCodec, SigmaConfig, _anchors
from sigmalang._anchors import AnchorIndex
from sigmalang._base import parse_manifest
from sigmalang._context import _acquire
from sigmalang._frame_v3 import parse_v3
from sigmalang.chunking import chunk_spans, chunk_views, rsu_id, rsu_ids
from sigmalang.errors import MissingRSUError
from sigmalang.frame import inspect_frame
from sigmalang.store import RSUStore

_SECRET = bytes(range(32, 64))
_WORDS = [b"refund", b"parcel", b"courier", b"invoice. ", b"tracking\\n", b"customs", b"label: ", b"policy\n"]


def _session(seed: int, turns: int, edits: int) -> list[bytes]:
    """A conversation: each turn is the previous one with random words inserted, replaced or cut."""
    rng = random.Random(seed)
    text = bytearray(b" ".join(rng.choice(_WORDS) for _ in range(rng.randrange(50, 3000))))
    out = [bytes(text)]
    for _ in range(turns - 1):
        for _ in range(edits):
            at = rng.randrange(len(text) + 1)
            cut = rng.choice([0, 0, rng.randrange(200)])
            text[at : at + cut] = b" ".join(rng.choice(_WORDS) for _ in range(rng.randrange(1, 400)))
        out.append(bytes(text))
    return out


@given(seed=st.integers(0, 2**32 - 1), turns=st.integers(1, 5), edits=st.integers(0, 4))
def test_parse_v3_reads_what_inspect_frame_reads(seed: int, turns: int, edits: int) -> None:
    codec = SigmaCodec(secret=_SECRET)
    key = codec.key("t")
    for message in _session(seed, turns, edits):
        frame = codec.compress(message, tenant="t", stream="s").frame
        info = inspect_frame(frame, key=key)
        header = parse_v3(memoryview(frame), key)
        assert header.version == info.version == 3
        assert header.flags == int(info.flags)
        assert tuple(header.context) == info.context
        for field in ("content_size", "dict_id", "payload_offset", "payload_size", "frame_size", "base"):
            assert getattr(header, field) == getattr(info, field), field
        for field in ("base_prefix", "base_suffix", "content_hash"):
            assert getattr(header, field) == getattr(info, field), field
        assert codec.decompress(frame, tenant="t") == message
        with pytest.raises(FrameAuthenticationError):
            parse_v3(memoryview(frame), codec.key("other"))


def _reference_acquire(
    *,
    store: RSUStore,
    tenant: str,
    extra: Sequence[int],
    base: int | None,
    previous: Sequence[int],
    cap: int,
    have: dict[int, bytes],
) -> tuple[list[int], dict[int, bytes], bool]:
    """`_acquire` as it was before the fast path (every pass made, the base tested one RSU at a time)."""
    order = list(dict.fromkeys([*extra, *([base] if base is not None else []), *previous]))
    held = store.acquire(tenant, order)
    order = [s for s in order if s in held]
    wanted = [s for s in order if s != base and s not in have]
    try:
        contents = dict(zip(wanted, store.get_many(tenant, wanted), strict=True))
    except MissingRSUError:
        store.release(tenant, order)
        return [], {}, False
    contents.update((s, have[s]) for s in order if s in have)
    total = sum(map(len, contents.values()))
    drop = 0
    while total > cap and drop < len(order):
        total -= len(contents.get(order[drop], b""))
        drop += 1
    if drop:
        store.release(tenant, order[:drop])
        order = order[drop:]
    kept = set(order)
    use_base = base is not None and base in kept and all(s in kept for s in previous)
    if base is not None and base in kept and not use_base:
        store.release(tenant, [base])
        order.remove(base)
    return order, contents, use_base


def _store(sizes: list[int], gone: set[int]) -> tuple[MemoryRSUStore, list[int], list[bytes]]:
    """RSUs of these sizes, those at the indexes `gone` collected; their sequence numbers and ids."""
    store = MemoryRSUStore()
    items = [(rsu_id(b"%d:" % i + bytes(n)), b"%d:" % i + bytes(n)) for i, n in enumerate(sizes)]
    seqs = [seq for seq, _ in store.put_many("t", items)]
    kept = [s for i, s in enumerate(seqs) if i not in gone]
    store.acquire("t", kept)
    store.collect_garbage("t")
    store.release("t", kept)
    return store, seqs, [i for i, _ in items]


@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=24),
    data=st.data(),
)
def test_acquire_chooses_what_the_reference_chose(sizes: list[int], data: st.DataObject) -> None:
    n = len(sizes)
    gone = data.draw(st.sets(st.integers(0, n - 1)))
    picks = st.lists(st.integers(0, n - 1), max_size=n)
    extra_at, previous_at = data.draw(picks), data.draw(picks)
    base_at = data.draw(st.none() | st.integers(0, n - 1))
    cap = data.draw(st.integers(0, sum(sizes) + 10 * n))
    early = data.draw(st.booleans())
    ours, seqs, ids = _store(sizes, gone)
    theirs, _, _ = _store(sizes, gone)
    previous = [seqs[i] for i in previous_at]
    have: dict[int, bytes] = {}
    if early and not gone & set(previous_at):  # as `encode`: every base chunk read early, or none
        have = dict(zip(previous, ours.get_many("t", previous), strict=True))
    args = {
        "tenant": "t",
        "extra": sorted({seqs[i] for i in extra_at}),
        "base": seqs[base_at] if base_at is not None else None,
        "previous": previous,
        "cap": cap,
        "have": have,
    }
    assert _acquire(store=ours, **args) == _reference_acquire(store=theirs, **args)  # type: ignore[arg-type]
    held = [rid for i, rid in enumerate(ids) if i not in gone]
    assert [ours.refcount("t", rid) for rid in held] == [theirs.refcount("t", rid) for rid in held]


def test_a_base_that_repeats_an_rsu_decodes() -> None:
    rng = random.Random(5)
    block = bytes(rng.randrange(256) for _ in range(24_000))
    first = block + block  # content-defined chunks: the second copy is cut as the first, same RSUs
    second = first + b"and a new turn after it" * 40
    codec = SigmaCodec(secret=_SECRET)
    frames = [codec.compress(m, tenant="t", stream="s").frame for m in (first, second)]
    info = inspect_frame(frames[1], key=codec.key("t"))
    assert info.base is not None
    listed = parse_manifest(codec.store.get_many("t", [info.base])[0])
    assert len(set(listed)) < len(listed)  # the manifest names an RSU twice
    assert [codec.decompress(f, tenant="t") for f in frames] == [first, second]


@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 40_000))
def test_chunk_views_are_the_chunks_of_chunk_spans(seed: int, size: int) -> None:
    rng = random.Random(seed)
    data = b" ".join(rng.choice(_WORDS) for _ in range(size // 7)) + rng.randbytes(size % 97)
    view = memoryview(data)
    config = SigmaConfig()
    views = chunk_views(view, config)
    assert [v.tobytes() for v in views] == [data[o : o + n] for o, n in chunk_spans(view, config)]
    assert rsu_ids(views) == [rsu_id(v) for v in views]


@given(
    batches=st.lists(
        st.tuples(st.integers(1, 50), st.lists(st.integers(0, 40), max_size=12)), min_size=1, max_size=12
    )
)
def test_anchor_add_many_leaves_the_index_add_leaves(batches: list[tuple[int, list[int]]]) -> None:
    """The same entries in the same recency order, the oldest half forgotten at the same points."""
    limit, _anchors._MAX_ANCHORS = _anchors._MAX_ANCHORS, 16  # small enough that random batches cross it
    try:
        one, many = AnchorIndex(), AnchorIndex()
        for seq, hashes in batches:
            one.add(seq, hashes)
        many.add_many([seq for seq, _ in batches], [hashes for _, hashes in batches])
    finally:
        _anchors._MAX_ANCHORS = limit
    assert list(many._seqs.items()) == list(one._seqs.items())
    everything = [h for _, hashes in batches for h in hashes]
    assert many.lookup(everything) == one.lookup(everything)

"""How hard zstd searches a frame's context, chosen per message (`SigmaConfig.context_search_log`, ...).

Messages whose new bytes are at least `mostly_new_min_share` of them are searched on 4-byte matches,
the others on 5-byte matches (both with up to 2**5 candidates a position). Whatever the choice, every
frame decodes with the decoder as it is (a zstd frame's window is the level's; the search is the
encoder's own business), on both sides of the threshold; and the frames main's encoder wrote (level
8's own search: `data/v3_level8_frames.hex`, the corpus of `test_speed_identity`, generic
dictionary) still decode.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import sigmalang
from sigmalang import _context, _libzstd, _zstd, _zstd_block
from tests.sigmalang.test_speed_identity import _SECRET, _corpus, recoded_and_recorded

_LEVEL8_FRAMES = Path(__file__).parent / "data" / "v3_level8_frames.hex"
_IDENT = "abcdefghijklmnopqrstuvwxyz_"


def _code(rng: random.Random, lines: int) -> bytes:
    """Python-like lines: short identifiers and indentation (what coding agents send)."""
    out = []
    for _ in range(lines):
        name = "".join(rng.choice(_IDENT) for _ in range(rng.randint(3, 9)))
        arg = "".join(rng.choice(_IDENT) for _ in range(rng.randint(2, 7)))
        out.append(f"{' ' * 4 * rng.randint(0, 3)}self.{name} = {arg}({name}, {rng.randint(0, 99)})")
    return "\n".join(out).encode()


def _session(seed: int) -> list[bytes]:
    """A stream whose turns re-send the history and add a file of new code each."""
    rng = random.Random(seed)
    history = b"system: you edit code.\n" + _code(rng, 200)
    turns = [history]
    for _ in range(4):
        history += b"\ntool result:\n" + _code(rng, rng.randint(40, 400))
        turns.append(history)
    return turns


def _coded(
    config: sigmalang.SigmaConfig,
    turns: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    level: int | None = None,
):
    """Compress `turns` as one stream (at `level` if given): the results, the `Search` of each zstd call."""
    searches: list[_libzstd.Search] = []
    compress = _zstd.compress

    def spy(data, level, zdict, key, search=_libzstd.LEVEL_SEARCH):  # type: ignore[no-untyped-def]
        searches.append(search)
        return compress(data, level, zdict, key, search)

    monkeypatch.setattr(_zstd, "compress", spy)
    codec = sigmalang.SigmaCodec(secret=_SECRET, config=config)
    results = [codec.compress(t, tenant="acme", stream="s", level=level) for t in turns]
    monkeypatch.undo()
    assert [codec.decompress(r.frame, tenant="acme") for r in results] == turns
    return results, searches


def test_the_search_follows_the_share_of_new_bytes_on_both_sides_of_the_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turns = _session(3)
    results, _ = _coded(sigmalang.SigmaConfig(), turns, monkeypatch)
    shares = [r.report.literal_bytes / r.report.bytes_in for r in results[1:]]
    assert all(0 < s < 1 for s in shares)
    four_bytes = _libzstd.Search(5, 4)
    five_bytes = _libzstd.Search(5, 5)
    for i, share in enumerate(shares, start=1):
        # a threshold at the message's share exactly: mostly new; just above it: not
        for threshold, expected in ((share, four_bytes), (min(share + 1e-9, 1.0), five_bytes)):
            config = sigmalang.SigmaConfig(mostly_new_min_share=threshold)
            again, searches = _coded(config, turns[: i + 1], monkeypatch)
            assert searches[i] == expected, (i, share, threshold)
            assert again[i].report.literal_bytes == results[i].report.literal_bytes


def test_the_configured_search_reaches_zstd_and_changes_the_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    turns = _session(5)
    level_own = sigmalang.SigmaConfig(
        context_search_log=None, context_min_match=None, mostly_new_search_log=None, mostly_new_min_match=None
    )
    before, searches = _coded(level_own, turns, monkeypatch)
    assert set(searches[1:]) == {_libzstd.LEVEL_SEARCH}
    after, searches = _coded(sigmalang.SigmaConfig(mostly_new_min_share=0.0), turns, monkeypatch)
    assert set(searches[1:]) == {_libzstd.Search(5, 4)}
    assert [a.frame for a in after[1:]] != [b.frame for b in before[1:]]
    assert sum(len(a.frame) for a in after) < sum(len(b.frame) for b in before)  # new code: it pays


def test_an_explicit_level_keeps_its_own_search(monkeypatch: pytest.MonkeyPatch) -> None:
    _, searches = _coded(sigmalang.SigmaConfig(), _session(7), monkeypatch, level=8)
    assert set(searches) == {_libzstd.LEVEL_SEARCH}


def test_context_parameters_add_the_search_only_to_hash_chain_levels() -> None:
    lib = _libzstd.lib
    got = dict(_libzstd.context_parameters(8, 6_000, 50_000, _libzstd.Search(6, 4)))
    assert got[lib.ZSTD_c_searchLog] == 6
    assert got[lib.ZSTD_c_minMatch] == 4
    assert got[lib.ZSTD_c_useRowMatchFinder] == lib.ZSTD_ps_disable
    assert lib.ZSTD_c_searchLog not in dict(_libzstd.context_parameters(8, 6_000, 50_000))  # the level's own
    # a message and context of at most 16 KiB: level 8 searches 2**8 candidates itself, which is kept
    assert lib.ZSTD_getCParams(8, 3_000, 9_000).searchLog == 8
    small = dict(_libzstd.context_parameters(8, 3_000, 9_000, _libzstd.Search(6, 4)))
    assert lib.ZSTD_c_searchLog not in small and small[lib.ZSTD_c_minMatch] == 4
    # level 3 (messages under 4 KiB) is dfast: no chains to search deeper
    dfast = _libzstd.context_parameters(3, 800, 40_000, _libzstd.Search(6, 4))
    assert dfast == ((lib.ZSTD_c_compressionLevel, 3),)


@pytest.mark.parametrize("search", [_libzstd.Search(1, 3), _libzstd.Search(9, 7), _libzstd.Search(6, None)])
def test_any_search_in_range_round_trips(search: _libzstd.Search) -> None:
    rng = random.Random(11)
    parts = [_code(rng, 300), rng.randbytes(2_000), _code(rng, 100)]
    zdict, _ = _zstd.context_dict(parts, None)
    assert zdict is not None
    message = parts[0][1000:5000] + _code(rng, 80) + parts[2][:3000]
    payload = _zstd.compress(message, 8, zdict, None, search)
    assert _zstd.decompress(payload, len(message), zdict, None) == message
    bare = _zstd_block.bare_block(payload)
    assert bare is not None
    assert bytes(_zstd_block.decompress_after(bare, len(message), parts, None)[-len(message) :]) == message


def test_out_of_range_parameters_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="context_search_log"):
        sigmalang.SigmaConfig(context_search_log=0)
    with pytest.raises(ValueError, match="mostly_new_min_match"):
        sigmalang.SigmaConfig(mostly_new_min_match=8)
    with pytest.raises(ValueError, match="mostly_new_min_share"):
        sigmalang.SigmaConfig(mostly_new_min_share=1.5)


def test_frames_of_mains_encoder_still_decode() -> None:
    """Frames coded at level 8's own search decode as before."""
    items = _corpus()
    codec = sigmalang.SigmaCodec(secret=_SECRET)
    frames, old = recoded_and_recorded(codec, items, _LEVEL8_FRAMES)
    # this corpus (24 words in random order) is not what the parameters were chosen on: its frames come
    # out 0.3% larger (the benchmark draws: 0.1-2.0% smaller); held to the 0.5% of the previous change
    assert sum(map(len, frames)) <= sum(map(len, old)) * 1.005
    # the encoder did change (12 of these 45 frames: most are small enough for level 8's own deep search)
    assert sum(a != b for a, b in zip(frames, old, strict=True)) >= 10


def test_the_rule_is_read_from_the_config() -> None:
    config = sigmalang.SigmaConfig(
        context_search_log=3, context_min_match=6, mostly_new_search_log=7, mostly_new_min_match=3
    )
    assert _context._search(config, mostly_new=False) == _libzstd.Search(3, 6)
    assert _context._search(config, mostly_new=True) == _libzstd.Search(7, 3)

"""The report's attribution is measured when first read, with the same numbers as when read at once."""

from __future__ import annotations

import random
import threading

import zstandard

from sigmalang import ATTRIBUTION_LEVEL, CompressionReport, SigmaCodec, SigmaConfig

_SECRET = b"lazy-attribution-test-secret-32b"
_WORDS = "the planner retries storage agent after seconds tenant vector cache result queue".split()


def _session(seed: int, turns: int) -> list[bytes]:
    """A growing conversation: each turn re-sends the previous one and adds new text."""
    rng = random.Random(seed)
    system = (" ".join(rng.choices(_WORDS, k=600)) + ". ").encode()
    out, history = [], system
    for _ in range(turns):
        history += (" ".join(rng.choices(_WORDS, k=rng.randint(200, 900))) + ".\n").encode()
        out.append(history)
    return out


def _savings(report: CompressionReport) -> tuple[int, int, int, float, float, float]:
    shares = report.shares
    return (
        report.dedup_saved,
        report.dictionary_saved,
        report.entropy_saved,
        shares.dedup,
        shares.dictionary,
        shares.entropy,
    )


def test_savings_read_late_equal_savings_read_at_once() -> None:
    turns = [(f"s{s}", m) for s in range(3) for m in _session(s, 5)]
    at_once, late = SigmaCodec(secret=_SECRET), SigmaCodec(secret=_SECRET)
    read_at_once, kept = [], []
    for stream, message in turns:
        one = at_once.compress(message, stream=stream)
        read_at_once.append((one.frame, _savings(one.report)))
        kept.append(late.compress(message, stream=stream))
    late.forget_tenant("default")  # the store the frames were made with is gone: the report kept its bytes
    assert [(r.frame, _savings(r.report)) for r in kept] == read_at_once
    for r in kept:
        assert r.report.bytes_in - r.report.bytes_out == (
            r.report.dedup_saved + r.report.dictionary_saved + r.report.entropy_saved - r.report.framing
        )


def test_new_bytes_are_compressed_alone_at_level_1_once_and_then_dropped() -> None:
    codec = SigmaCodec(secret=_SECRET)
    first, second = _session(4, 2)
    codec.compress(first, stream="s")
    report = codec.compress(second, stream="s").report
    assert report.glyphs > 0  # a frame with a context: its attribution is an estimate, not yet measured
    assert report.alone.known is None and report.alone.parts is not None
    literal = b"".join(report.alone.parts)
    assert len(literal) == report.literal_bytes == report.alone.measured_bytes
    plain = zstandard.ZstdCompressor(
        level=ATTRIBUTION_LEVEL, write_checksum=False, write_content_size=False, write_dict_id=False
    ).compress(literal)
    alone = min(len(plain) - 4, len(literal))  # without zstd's magic, as ΣLANG's payloads

    assert report.attribute() is report
    assert report.alone.known == alone and report.alone.parts is None  # measured once, bytes dropped
    assert report.entropy_saved == len(literal) - alone
    assert report.dictionary_saved == 0  # with a context the dictionary's share is in dedup_saved
    assert report.dedup_saved == report.bytes_in - report.bytes_out - report.entropy_saved + report.framing


def test_a_frame_without_context_or_dictionary_is_its_own_measure() -> None:
    codec = SigmaCodec(secret=_SECRET, config=SigmaConfig(generic_dictionary=False))
    report = codec.compress(_session(5, 1)[0], stream="s").report
    assert report.glyphs == 0 and report.dict_id is None
    assert report.alone.known is not None and report.alone.parts is None  # nothing deferred
    assert report.entropy_saved == report.bytes_in - report.alone.known > 0


def test_concurrent_first_reads_agree() -> None:
    codec = SigmaCodec(secret=_SECRET)
    first, second = _session(6, 2)
    codec.compress(first, stream="s")
    report = codec.compress(second, stream="s").report
    assert report.alone.known is None
    got: list[tuple[int, int, int, float, float, float]] = []
    start = threading.Barrier(8)

    def read() -> None:
        start.wait()
        got.append(_savings(report))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len(set(got)) == 1

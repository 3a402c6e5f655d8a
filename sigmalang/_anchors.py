"""Anchors: sentences and lines an RSU shares with earlier messages of its tenant, and their index.

A document retrieved again in another session is rarely cut into the same content-defined chunks, but
its sentences and lines repeat exactly. `anchors` hashes those of at least `ANCHOR_MIN_BYTES` bytes;
`AnchorIndex` maps each hash to the latest RSU holding it, so that a message's new chunks find the
stored RSUs worth putting in its zstd context (`sigmalang._context`).

New text that repeats no whole line still shares *words* with what the tenant sent before: the
identifiers of a repository's code, the long words of a topic. `words_of` takes those of at least
`WORD_MIN_BYTES` bytes from a message's new chunks in one pass, and the index maps each word to the
latest RSU holding it too, so that a message brings the RSUs sharing most of its words into its
context (`AnchorIndex.related`): where its short matches are (when enabled,
`SigmaConfig.word_context_per_new_chunk`; with automatic per-tenant dictionaries, frames 1-2.5%
smaller on coding-agent sessions, `benchmarks/sigma_corpus_coding.py`).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Collection, Sequence
from itertools import chain
from typing import Final, cast

ANCHOR_MIN_BYTES = 32
"""Shortest sentence or line used as an anchor, bytes."""
# A separator: a newline, an escaped one, or a sentence end then a space. Written to start with one
# character class, so that `re` scans for its candidates in C; 30% faster than six `bytes.replace`
# passes (`.` -> newline, ...) then a split, which a regular expression with an alternation of the
# separators was not (10.2 against 14.5 µs per 1.2 KB chunk). The separators cannot overlap each
# other, so this splits exactly where the replacements did.
_SEPARATOR = re.compile(rb"[\n\\.!?;:](?:(?<=\n)|(?<=\\)n|(?<=[.!?;:]) )")
_MAX_ANCHORS = 1 << 18  # per tenant (lines, and words apart); the oldest half is forgotten beyond this
WORD_MIN_BYTES: Final = 8
"""Shortest word (a run of ASCII letters, digits and underscores) `words` takes, bytes (fixed: the
shifts of `words_of` find runs of 8)."""


def anchors(chunk: bytes | memoryview) -> list[int]:
    r"""Hashes of the sentences and lines of at least `ANCHOR_MIN_BYTES` bytes in `chunk`.

    Lines end at a newline or at an escaped one (``\\n`` inside a JSON string); sentences at
    ``.``, ``!``, ``?``, ``;`` or ``:`` followed by a space. The hashes are Python's `hash` of the
    bytes (SipHash, keyed per process): the index lives in one process's memory only.
    """
    return [hash(piece) for piece in _SEPARATOR.split(bytes(chunk)) if len(piece) >= ANCHOR_MIN_BYTES]


Words = dict[bytes, None]
"""The distinct words of a chunk in the order they first appear (a dict as an ordered set: the word
index's insertion order, hence what trimming forgets, is then the same in every process, which a set
of bytes, ordered by per-process hashes, is not)."""
_WORD_BYTE = bytes(255 if c < 128 and (chr(c).isalnum() or c == 95) else 0 for c in range(256))
"""`bytes.translate` table: ASCII letters, digits and the underscore become 0xFF, every other byte 0."""
_NUL_TO_SPACE = bytes([32, *range(1, 256)])
"""`bytes.translate` table: the NUL byte becomes a space, every other byte stays."""
_WORDS_BATCH_BYTES = 1 << 20
"""`words_of` joins chunks up to this many bytes at a time (its integers are as large as the join)."""


def words_of(chunks: Sequence[bytes | memoryview]) -> list[Words]:
    """The distinct words of at least `WORD_MIN_BYTES` (8) bytes in each of `chunks`, in order.

    A word is a run of ASCII letters, digits and underscores (an identifier, a long word of prose);
    a longer run is one word, never cut into pieces. The chunks are joined (a space between them)
    and every byte is classified at once with big-integer arithmetic, in C: one byte of a mask per
    byte of text, 0xFF for a word byte; three shifts and ANDs mark where 8 word bytes end, three
    shifts and ORs spread the mark over those 8 bytes, and ANDing the mask with the text blanks
    every byte outside a long word, so that `split` makes objects for the long words only: 8-9.3 ns
    per byte on the new chunks of the benchmark draws, where a regular expression
    (`[A-Za-z0-9_]{8,}`, which tries every position of every short word again) took 12.6-15.2 and a
    `translate` then `split` of every token then a Python pass keeping the long ones 12.3-19.1
    (docs/sigmalang.md, "The word context, round 2"). Chunks are joined up to about
    `_WORDS_BATCH_BYTES` at a time, so that a huge message does not make huge integers.
    """
    found: list[Words] = []
    start = size = 0
    for end, chunk in enumerate(chunks):
        size += len(chunk) + 1
        if size >= _WORDS_BATCH_BYTES:
            found += _words_of_batch(chunks[start : end + 1])
            start, size = end + 1, 0
    if start < len(chunks):
        found += _words_of_batch(chunks[start:])
    return found


def _words_of_batch(chunks: Sequence[bytes | memoryview]) -> list[Words]:
    """`words_of` for chunks joined at once."""
    joined = b" ".join(chunks)
    n = len(joined)
    mask = int.from_bytes(joined.translate(_WORD_BYTE), "big")
    mask &= mask >> 8  # (byte i of the big-endian integer moves to i + 1)
    mask &= mask >> 16
    mask &= mask >> 32  # 0xFF where bytes i-7..i are all word bytes
    mask |= mask << 8
    mask |= mask << 16
    mask |= mask << 32  # 0xFF over every byte of a run of at least 8 (bits above n bytes: dropped below)
    kept = (int.from_bytes(joined, "big") & mask).to_bytes(n, "big").translate(_NUL_TO_SPACE)
    found: list[Words] = []
    start = 0
    for chunk in chunks:
        end = start + len(chunk)
        found.append(dict.fromkeys(kept[start:end].split()))
        start = end + 1
    return found


def words(chunk: bytes | memoryview) -> Words:
    """The distinct words of at least `WORD_MIN_BYTES` bytes in `chunk` (`words_of` for one chunk)."""
    return words_of([chunk])[0]


def _trimmed(index: dict[int, int]) -> dict[int, int]:
    """`index` without its oldest half once it holds more than `_MAX_ANCHORS` entries."""
    return dict(list(index.items())[len(index) // 2 :]) if len(index) > _MAX_ANCHORS else index


class AnchorIndex:
    """Anchor hash → the sequence number of the latest RSU holding it, for one tenant (in memory).

    A hint only: a lost or stale entry makes a frame larger, never wrong (the frame names its context).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seqs: dict[int, int] = {}  # insertion order = recency (an entry re-seen moves last)
        self._words: dict[bytes, int] = {}  # word -> latest RSU holding it (first-seen order)

    def add(self, seq: int, hashes: list[int], held_words: Words | None = None) -> None:
        """Remember the anchors (`anchors`) and, if given, the words (`words`) of a newly stored RSU."""
        self.add_many([seq], [hashes], None if held_words is None else [held_words])

    def add_many(
        self, seqs: list[int], hashes: list[list[int]], held_words: list[Words] | None = None
    ) -> None:
        """`add` for several RSUs in order (`seqs[i]` holds `hashes[i]`), under one lock.

        Args:
            seqs: Sequence numbers of newly stored RSUs.
            hashes: Their anchors (`anchors`).
            held_words: Their words (`words`), or None.
        """
        with self._lock:
            if held_words is not None:  # (a word seen again keeps its place: trimming drops the first seen)
                by_word = self._words
                for seq, chunk_words in zip(seqs, held_words, strict=True):
                    by_word.update(dict.fromkeys(chunk_words, seq))
                if len(by_word) > _MAX_ANCHORS:  # the newest half of the bound, however many came at once
                    self._words = dict(list(by_word.items())[-(_MAX_ANCHORS // 2) :])
            index = self._seqs
            forget = index.pop
            for seq, held in zip(seqs, hashes, strict=True):
                for anchor in held:
                    forget(anchor, None)
                    index[anchor] = seq
                if len(index) > _MAX_ANCHORS:  # (after each RSU, as `add` one at a time did)
                    index = self._seqs = _trimmed(index)
                    forget = index.pop

    def related(self, held_words: Sequence[Collection[bytes]], limit: int) -> list[int]:
        """The RSUs holding most of these words (`words` of a message's new chunks), at most `limit`.

        A word counts for the latest RSU holding it (`add_many`), once per chunk that has it. The
        words are looked up and counted in C (`Counter` over `map`), not in a Python loop.

        Returns:
            Sequence numbers, the RSU sharing most words first (ties: the later RSU first).
        """
        with self._lock:
            counts = Counter(map(self._words.get, chain.from_iterable(held_words)))
        counts.pop(None, None)  # (words no stored RSU holds)
        held = cast("Counter[int]", counts)
        return [seq for _, seq in sorted(zip(held.values(), held, strict=True), reverse=True)[:limit]]

    def lookup(self, hashes: list[int]) -> dict[int, int]:
        """RSUs holding these anchors (`anchors`): sequence number → anchors shared."""
        hits: dict[int, int] = {}
        with self._lock:
            get = self._seqs.get
            for anchor in hashes:
                seq = get(anchor)
                if seq is not None:
                    hits[seq] = hits.get(seq, 0) + 1
        return hits

"""Anchors: sentences and lines an RSU shares with earlier messages of its tenant, and their index.

A document retrieved again in another session is rarely cut into the same content-defined chunks, but
its sentences and lines repeat exactly. `anchors` hashes those of at least `ANCHOR_MIN_BYTES` bytes;
`AnchorIndex` maps each hash to the latest RSU holding it, so that a message's new chunks find the
stored RSUs worth putting in its zstd context (`sigmalang._context`).

New text that repeats no whole line still shares *words* with what the tenant sent before: the
identifiers of a repository's code, the long words of a topic. `words` takes those of at least
`WORD_MIN_BYTES` bytes, and the index maps each to the latest RSU holding it too, so that a message
brings the RSUs sharing most of its words into its context (`AnchorIndex.related`): where its short
matches are (when enabled, `SigmaConfig.word_context_per_new_chunk`; on coding-agent sessions,
`benchmarks/sigma_corpus_coding.py`, frames 4-5% smaller).
"""

from __future__ import annotations

import re
import threading

ANCHOR_MIN_BYTES = 32
"""Shortest sentence or line used as an anchor, bytes."""
# A separator: a newline, an escaped one, or a sentence end then a space. Written to start with one
# character class, so that `re` scans for its candidates in C; 30% faster than six `bytes.replace`
# passes (`.` -> newline, ...) then a split, which a regular expression with an alternation of the
# separators was not (10.2 against 14.5 µs per 1.2 KB chunk). The separators cannot overlap each
# other, so this splits exactly where the replacements did.
_SEPARATOR = re.compile(rb"[\n\\.!?;:](?:(?<=\n)|(?<=\\)n|(?<=[.!?;:]) )")
_MAX_ANCHORS = 1 << 18  # per tenant (lines, and words apart); the oldest half is forgotten beyond this
WORD_MIN_BYTES = 8
"""Shortest word (a run of ASCII letters, digits and underscores) `words` takes, bytes."""


def anchors(chunk: bytes | memoryview) -> list[int]:
    r"""Hashes of the sentences and lines of at least `ANCHOR_MIN_BYTES` bytes in `chunk`.

    Lines end at a newline or at an escaped one (``\\n`` inside a JSON string); sentences at
    ``.``, ``!``, ``?``, ``;`` or ``:`` followed by a space. The hashes are Python's `hash` of the
    bytes (SipHash, keyed per process): the index lives in one process's memory only.
    """
    return [hash(piece) for piece in _SEPARATOR.split(bytes(chunk)) if len(piece) >= ANCHOR_MIN_BYTES]


_NOT_WORD = bytes(c if c < 128 and (chr(c).isalnum() or c == 95) else 32 for c in range(256))
"""`bytes.translate` table: every byte but ASCII letters, digits and the underscore becomes a space."""


def words(chunk: bytes | memoryview) -> set[int]:
    """Hashes of the distinct words of at least `WORD_MIN_BYTES` bytes in `chunk` (Python's `hash`).

    A word is a run of ASCII letters, digits and underscores (an identifier, a long word of prose).
    One `translate` and one `split` in C, then a pass over the distinct tokens.
    """
    tokens = set(bytes(chunk).translate(_NOT_WORD).split())
    return {hash(token) for token in tokens if len(token) >= WORD_MIN_BYTES}


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
        self._words: dict[int, int] = {}  # word hash -> latest RSU holding it (first-seen order)

    def add(self, seq: int, hashes: list[int], held_words: set[int] | None = None) -> None:
        """Remember the anchors (`anchors`) and, if given, the words (`words`) of a newly stored RSU."""
        self.add_many([seq], [hashes], None if held_words is None else [held_words])

    def add_many(
        self, seqs: list[int], hashes: list[list[int]], held_words: list[set[int]] | None = None
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
                self._words = _trimmed(by_word)
            index = self._seqs
            forget = index.pop
            for seq, held in zip(seqs, hashes, strict=True):
                for anchor in held:
                    forget(anchor, None)
                    index[anchor] = seq
                if len(index) > _MAX_ANCHORS:  # (after each RSU, as `add` one at a time did)
                    index = self._seqs = _trimmed(index)
                    forget = index.pop

    def related(self, held_words: list[set[int]], limit: int) -> list[int]:
        """The RSUs holding most of these words (`words` of a message's new chunks), at most `limit`.

        A word counts for the latest RSU holding it (`add_many`), once per chunk that has it.

        Returns:
            Sequence numbers, the RSU sharing most words first (ties: the later RSU first).
        """
        counts: dict[int, int] = {}
        with self._lock:
            get = self._words.get
            for held in held_words:
                for word in held:
                    seq = get(word)
                    if seq is not None:
                        counts[seq] = counts.get(seq, 0) + 1
        return sorted(counts, key=lambda seq: (counts[seq], seq), reverse=True)[:limit]

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

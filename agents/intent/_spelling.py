"""Typo repair for instructions: "sumarize" → "summarize", "tranlsate" → "translate", "wirte" → "write".

A misspelt verb defeats both routing channels: its word stem matches no example, and WordPiece cuts it
into pieces whose embeddings mean little. Before routing, each word of five letters or more that is
neither a word of the routing vocabulary (the examples and capabilities) nor a whole WordPiece token (a
common English word) is replaced by the vocabulary word within one *symmetric delete* of it, the
SymSpell method (Garbe 2012) at distance 1: two words match when deleting at most one letter from each
makes them equal. That covers one insertion or deletion and one transposition of
neighbours (``tranlsate``/``translate`` both become ``tranlate``), and a substitution of one letter in a
word of seven letters or more (``summerize``); a substitution in a shorter word and a letter added or
dropped at the end are not repaired (they turn real words into other ones: ``stash``/``stats``). Among
several matches the word more frequent in the vocabulary wins, then the alphabetically first.

Lookup is O(length) dictionary probes per word; the index holds each vocabulary word and its deletes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

__all__ = ("Speller",)

_WORD = re.compile(r"[A-Za-z]{5,}")
_MIN_LEN = 5
_MIN_SUBSTITUTION_LEN = 7


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_typo(word: str, candidate: str) -> bool:
    """Whether ``word`` is ``candidate`` with one letter left out or added inside, or two neighbours swapped.

    Not a substitution, which turns one real word into another ("stash"/"stats"), nor a letter added or
    dropped at the end, more often an inflection than a typo ("refund"/"refunds").
    """
    if word[:-1] == candidate or candidate[:-1] == word:
        return False
    if len(word) == len(candidate):
        diff = [i for i in range(len(word)) if word[i] != candidate[i]]
        if len(diff) == 1:  # a substitution: a typo only in a long word ("summerize"), not "stash"/"stats"
            return len(word) >= _MIN_SUBSTITUTION_LEN
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and word[diff[0]] == candidate[diff[1]]
            and (word[diff[1]] == candidate[diff[0]])
        )
    return True  # one symmetric delete apart with lengths differing by one: an insertion or deletion


class Speller:
    """Repairs single typos against a vocabulary.

    Args:
        texts: The texts whose words are the vocabulary (lower-cased; words of five letters or more).
        known: Whether a lower-case word is a correct word outside the vocabulary (left unchanged), for
            instance "it is one WordPiece token".
    """

    def __init__(self, texts: Iterable[str], known: Callable[[str], bool] = lambda _w: False) -> None:
        self._freq = Counter(w.lower() for t in texts for w in _WORD.findall(t))
        self._known = known
        self._index: dict[str, set[str]] = {}
        for word in self._freq:
            for key in (word, *_deletes(word)):
                self._index.setdefault(key, set()).add(word)
        self._cache: dict[str, str] = {}

    def word(self, word: str) -> str:
        """``word`` repaired (in lower case), or unchanged when it is known or nothing is one edit away."""
        w = word.lower()
        if len(w) < _MIN_LEN or w in self._freq:
            return word
        cached = self._cache.get(w)
        if cached is not None:
            return cached
        fixed = word
        if not self._known(w):
            found: set[str] = set()
            for key in (w, *_deletes(w)):
                found |= self._index.get(key, set())
            found = {c for c in found if _one_typo(w, c)}
            if found:
                fixed = min(found, key=lambda c: (-self._freq[c], c))
        if len(self._cache) < 10_000:
            self._cache[w] = fixed
        return fixed

    def correct(self, text: str) -> str:
        """``text`` with each unknown word of five letters or more repaired (case of the rest kept)."""
        return _WORD.sub(lambda m: self.word(m.group(0)), text)

"""Intent routing: a sub-goal's instruction → the agent (or built-in plan) it asks for, with a confidence.

Each class (an agent, a built-in plan, or ``none`` — :data:`agents.examples.OUT_OF_SCOPE`) has example
requests. An instruction is scored against every example on two channels:

* **meaning** — cosine of static MiniLM embeddings (:class:`vault.static_embedding.StaticEmbedder`,
  tokens weighted by their inverse document frequency over the examples);
* **wording** — TF-IDF cosine over word stems (first five letters, so ``summarise`` meets
  ``summarize``).

An example's score is ``0.65 · meaning + 0.35 · wording``; a class's score is
``0.75 · best example + 0.25 · mean of its best three``, plus a **capability cue** (0.12 when a word of the
instruction names the agent's first capability or its first word — the imperative verb — names any of
its capabilities, 0.06 when another word names another capability — unless the lead verb is one the
examples start with and none of the class's does: "write a release note … to CSV" names its operation
by its verb, and the words after it are its material).

**Confidence** is Platt scaling (Platt 1999) of (best score, margin to the runner-up) fitted at build
time by leave-one-out over the examples themselves: each example is routed with itself removed, and a
logistic regression learns how often the winner is right. ``none`` examples routed to an agent count
as wrong, so vague requests lower the confidence of what they resemble. Before routing, single typos
are repaired against the examples' vocabulary (:class:`agents.intent._spelling.Speller`). Build: ~0.1 s
for ~600 examples.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from agents.intent._spelling import Speller
from vault.static_embedding import StaticEmbedder

__all__ = ("NONE", "IntentRouter", "Route")

NONE = "none"
"""The class of requests no agent serves."""

_WORD = re.compile(r"[a-z0-9]+")
_W_MEANING, _W_WORDING = 0.65, 0.35
_CUE_PRIMARY, _CUE_OTHER = 0.12, 0.06
_TOP = 3
_LEAD_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
"""Candidate weights of the lead-verb prior; leave-one-out over the examples picks one at build time."""


def _stems(text: str) -> list[str]:
    return [w[:5] for w in _WORD.findall(text.lower()) if len(w) > 1]


_FILLER = frozenset(
    "please pls kindly can could would will you u i id like love want need to me us just ok "
    "okay now so quickly quick also go ahead help".split()
)
"""Polite or filler words before an instruction's verb ("could you please write …" leads with "write")."""


def _lead(text: str) -> str:
    """The first word that is not filler (an instruction's verb names its operation)."""
    for m in _WORD.finditer(text.lower()):
        if m.group(0) not in _FILLER:
            return m.group(0)
    return ""


def _cue_key(word: str) -> str:
    """The key a word meets a capability by: singular, first six letters.

    Six letters, not the five of the wording channel: ``summarise`` meets ``summarize`` and ``tokens``
    meets ``token``, but ``short`` does not meet ``shorten`` (a short poem is no summary).
    """
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:6]


def _cue_keys(text: str) -> set[str]:
    return {_cue_key(w) for w in _WORD.findall(text.lower()) if len(w) > 1}


@dataclass(frozen=True, slots=True)
class Route:
    """The classes an instruction may ask for, best first.

    Attributes:
        ranked: ``(class, score)`` pairs, best first (score: combined similarity, about 0-1.2).
        confidence: Calibrated probability that the best class is right (0-1).
    """

    ranked: tuple[tuple[str, float], ...]
    confidence: float

    @property
    def best(self) -> str:
        """The best class (``none`` when the request matches nothing the collective does)."""
        return self.ranked[0][0]


class IntentRouter:
    """Routes instructions to classes by nearest examples.

    Args:
        examples: Example requests per class (at least two per class).
        capabilities: Capability words per class (the first is the primary one).
        embedder: The static embedder (loaded here if not yet).
    """

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        *,
        capabilities: Mapping[str, Sequence[str]] | None = None,
        embedder: StaticEmbedder | None = None,
    ) -> None:
        self.classes = tuple(examples)
        texts = [t for c in self.classes for t in examples[c]]
        self._owner = np.array([i for i, c in enumerate(self.classes) for _ in examples[c]], dtype=np.intp)
        self.embedder = embedder or StaticEmbedder()
        self.embedder.load()
        # inverse document frequency of tokens and stems over the examples
        token_lists = [self.embedder.token_ids(t) for t in texts]
        n = len(texts)
        tdf = Counter(t for ids in token_lists for t in set(ids))
        self._token_idf_default = math.log(1 + n)
        self.embedder.weights = {t: math.log((1 + n) / (1 + c)) + 0.2 for t, c in tdf.items()}
        for tok in self._ids("?") + self._ids(".") + self._ids(","):
            self.embedder.weights[tok] = 0.0
        self._vectors = self.embedder.embed(texts)
        stem_lists = [_stems(t) for t in texts]
        sdf = Counter(s for stems in stem_lists for s in set(stems))
        self._vocab = {s: i for i, s in enumerate(sorted(sdf))}
        self._idf = np.array([math.log((1 + n) / (1 + sdf[s])) + 1.0 for s in sorted(sdf)], dtype=np.float32)
        self._idf_unknown = math.log(1 + n) + 1.0
        lex = np.zeros((n, len(self._vocab)), dtype=np.float32)
        for i, stems in enumerate(stem_lists):
            for s, c in Counter(stems).items():
                lex[i, self._vocab[s]] = c * self._idf[self._vocab[s]]
        lex /= np.linalg.norm(lex, axis=1, keepdims=True) + 1e-9
        self._lex = lex
        width = max(int(np.sum(self._owner == i)) for i in range(len(self.classes)))
        self._slots = np.full((len(self.classes), width), n, dtype=np.intp)  # n: a -inf sentinel
        for i in range(len(self.classes)):
            members = np.flatnonzero(self._owner == i)
            self._slots[i, : len(members)] = members
        caps = capabilities or {}
        self.speller = Speller(
            [*texts, *(c for cs in caps.values() for c in cs)],
            known=lambda w: len(self.embedder.token_ids(w)) == 1,
        )
        self._primary = [_cue_keys(caps[c][0]) if caps.get(c) else set() for c in self.classes]
        self._other = [{k for cap in caps.get(c, ())[1:] for k in _cue_keys(cap)} for c in self.classes]
        leads = [_lead(t) for t in texts]
        self._leads: dict[str, NDArray[np.float32]] = {}
        for lead, owner in zip(leads, self._owner, strict=True):
            self._leads.setdefault(lead[:5], np.zeros(len(self.classes), dtype=np.float32))[owner] += 1.0
        self.lead_weight, self.loo_accuracy = 0.0, 0.0
        self._platt = self._calibrate(texts, leads)

    def _ids(self, text: str) -> list[int]:
        return self.embedder.token_ids(text)

    def _example_scores(
        self, meaning: NDArray[np.float32], wording: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        return (_W_MEANING * meaning + _W_WORDING * wording).astype(np.float32)

    def _lead_prior(self, lead: str, owner: int = -1) -> NDArray[np.float32] | None:
        """P(class | lead verb) over the examples, or None for a verb fewer than two examples start with.

        ``owner`` (leave-one-out) is the class of an example whose own count is left out.
        """
        counts = self._leads.get(lead)
        if counts is None:
            return None
        if owner >= 0:
            counts = counts.copy()
            counts[owner] -= 1.0
        total = float(counts.sum())
        return None if total < 2 else (counts / total).astype(np.float32)

    def _class_scores(
        self,
        per_example: NDArray[np.float32],
        keys: set[str],
        lead: str = "",
        lead_weight: float | None = None,
        owner: int = -1,
    ) -> NDArray[np.float32]:
        padded: NDArray[np.float32] = np.append(per_example, np.float32(-1.0))[self._slots]
        top = -np.partition(-padded, _TOP - 1, axis=1)[:, :_TOP]
        top.sort(axis=1)
        scores = 0.75 * top[:, -1] + 0.25 * np.mean(np.maximum(top, 0.0), axis=1)
        prior = self._lead_prior(lead[:5], owner)
        if keys:
            lead_key = _cue_key(lead)
            cue = np.array(
                [
                    _CUE_PRIMARY
                    if keys & p or lead_key in p or lead_key in o
                    else _CUE_OTHER
                    if keys & o and (prior is None or prior[i] > 0.0)
                    else 0.0
                    for i, (p, o) in enumerate(zip(self._primary, self._other, strict=True))
                ],
                dtype=np.float32,
            )
            scores = scores + cue
        if prior is not None:
            scores = scores + (self.lead_weight if lead_weight is None else lead_weight) * prior
        result: NDArray[np.float32] = scores.astype(np.float32)
        return result

    def _wording(self, text: str) -> tuple[NDArray[np.float32], set[str]]:
        stems = _stems(text)
        counts = Counter(stems)
        cols, weights, norm2 = [], [], 0.0
        for s, c in counts.items():
            j = self._vocab.get(s)
            w = c * (self._idf[j] if j is not None else self._idf_unknown)
            norm2 += float(w) ** 2
            if j is not None:
                cols.append(j)
                weights.append(w)
        if not cols:
            return np.zeros(self._lex.shape[0], dtype=np.float32), set(counts)
        q = np.asarray(weights, dtype=np.float32) / math.sqrt(norm2)
        return (self._lex[:, cols] @ q).astype(np.float32), set(counts)

    def _features(self, scores: NDArray[np.float32]) -> tuple[int, float, float]:
        order = np.argsort(-scores)
        best, second = int(order[0]), int(order[1])
        return best, float(scores[best]), float(scores[best] - scores[second])

    def _calibrate(self, texts: Sequence[str], leads: Sequence[str]) -> tuple[float, float, float]:
        """Choose the lead-verb weight and fit the confidence, both by leave-one-out over the examples.

        Each example is routed with itself removed (from the neighbours and from the lead-verb counts)
        for every weight of :data:`_LEAD_WEIGHTS`; the weight routing most examples to their own class
        wins (ties: the smaller), and Platt scaling is fitted on its (best score, margin) features.
        """
        meaning = self._vectors @ self._vectors.T
        none = self.classes.index(NONE) if NONE in self.classes else -1
        per_rows = []
        for i, text in enumerate(texts):
            wording, _ = self._wording(text)
            per = self._example_scores(meaning[i], wording)
            per[i] = -1.0  # leave this example out
            per_rows.append((per, _cue_keys(text)))
        best_rows: list[tuple[int, float, float]] = []
        for weight in _LEAD_WEIGHTS:
            rows = [
                self._features(self._class_scores(per, stems, leads[i], weight, int(self._owner[i])))
                for i, (per, stems) in enumerate(per_rows)
            ]
            accuracy = sum(b == self._owner[i] for i, (b, _, _) in enumerate(rows)) / len(rows)
            if accuracy > self.loo_accuracy:
                self.lead_weight, self.loo_accuracy, best_rows = weight, accuracy, rows
        rows_x: list[tuple[float, float]] = []
        rows_y: list[float] = []
        for i, (best, top, margin) in enumerate(best_rows):
            if best == none:
                continue  # refused: no agent would run
            rows_x.append((top, margin))
            rows_y.append(1.0 if best == self._owner[i] else 0.0)
        x = np.column_stack([np.ones(len(rows_x)), np.asarray(rows_x)])
        y = np.asarray(rows_y)
        w = np.zeros(3)
        for _ in range(50):  # Newton's method for the logistic regression (L2 0.01)
            p = 1 / (1 + np.exp(-x @ w))
            grad = x.T @ (p - y) + 0.01 * w
            hess = (x.T * (p * (1 - p))) @ x + 0.01 * np.eye(3)
            w -= np.linalg.solve(hess, grad)
        return float(w[0]), float(w[1]), float(w[2])

    def calibrated(self, top: float, margin: float) -> float:
        """The calibrated confidence (0-1) of a best class scoring ``top``, ``margin`` above the runner-up."""
        b0, b1, b2 = self._platt
        return 1 / (1 + math.exp(-(b0 + b1 * top + b2 * margin)))

    def route(self, instruction: str, *, k: int = 5) -> Route:
        """The ``k`` best classes for ``instruction`` (typos repaired first), confidence in the first."""
        instruction = self.speller.correct(instruction)
        meaning = self._vectors @ self.embedder.embed([instruction])[0]
        wording, _ = self._wording(instruction)
        scores = self._class_scores(
            self._example_scores(meaning, wording), _cue_keys(instruction), _lead(instruction)
        )
        best, top, margin = self._features(scores)
        confidence = self.calibrated(top, margin)
        order = np.argsort(-scores)[:k]
        ranked = tuple((self.classes[int(i)], float(scores[int(i)])) for i in order)
        return Route(ranked, 0.0 if self.classes[best] == NONE else confidence)

"""Okapi BM25 relevance of short texts to a query.

Robertson and Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", Foundations and
Trends in Information Retrieval 3(4), 2009, eq. 3.15, with the non-negative IDF
``log(1 + (N - n + 0.5) / (n + 0.5))`` used by Lucene.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_WORD = re.compile(r"\w+", re.UNICODE)


def terms(text: str) -> list[str]:
    """Lower-cased word tokens of `text` (runs of Unicode word characters)."""
    return [t.lower() for t in _WORD.findall(text)]


def bm25_scores(query: str, documents: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> list[float]:
    """BM25 score of each document for the query (0 for a document sharing no term with it)."""
    docs = [Counter(terms(d)) for d in documents]
    q_terms = set(terms(query))
    if not docs or not q_terms:
        return [0.0] * len(documents)
    lengths = [sum(d.values()) for d in docs]
    avg = (sum(lengths) / len(lengths)) or 1.0
    n_docs = len(docs)
    idf = {}
    for term in q_terms:
        df = sum(1 for d in docs if term in d)
        idf[term] = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
    scores = []
    for d, length in zip(docs, lengths, strict=True):
        score = 0.0
        for term in q_terms:
            tf = d.get(term, 0)
            if tf:
                score += idf[term] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
        scores.append(score)
    return scores
